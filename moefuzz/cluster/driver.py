"""The driver of a campaign over a Ray cluster (``moefuzz run --ray ADDRESS``).

It connects to the cluster (``auto``: the one running, as ``ray start`` left it; ``local``: a
cluster of this machine alone, started for the campaign on 127.0.0.1 and shut down after), starts
one :class:`~moefuzz.cluster.actor.FuzzActor` per GPU (``num_gpus=1``; on a cluster without GPUs,
or with ``--device cpu``, a given count of CPU actors running Triton's interpreter), and polls
them a few times a second. Each actor runs a campaign of its own, with its workers and generators,
on a case stream of its own seed (:func:`~moefuzz.cluster.data.actor_seed`).

Findings come back as data and are saved here, to the one corpus, by the corpus code of a
campaign on one host; the ids saved are handed to every actor with its next poll, so that actors
count a failure the corpus holds as known instead of reporting and shrinking it again. A
finding's shrink runs on the actor that found it; its progress and result come back the same way.

An actor that dies (its process killed, its node lost) is started again by Ray (``max_restarts``)
on a new stream; the cases its workers were running at its last report are drawn again here from
their stream and saved as ``crash:actor-died`` findings. The campaign keeps its budget, its
reports and its exit status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moefuzz import errors
from moefuzz.cluster.actor import FuzzActor
from moefuzz.cluster.data import ActorInfo, ClusterStatus, actor_seed, finding_from_data
from moefuzz.cluster.pool import ActorSlot, blamed_findings, fold_counters, start_spec
from moefuzz.cluster.tally import close_status, sum_status
from moefuzz.engine.campaign import CampaignConfig, CampaignStatus
from moefuzz.errors import MoefuzzError, UsageError, WorkerError
from moefuzz.model.registry import get_target
from moefuzz.store.corpus import Finding, save_finding, scan_target

#: Times Ray starts one actor again after it died, before the campaign goes on without it.
MAX_ACTOR_RESTARTS = 4

#: Seconds between two polls of an actor.
POLL_INTERVAL_S = 0.25

#: Seconds between two counts of the cluster's live nodes.
NODES_INTERVAL_S = 5.0


@dataclass(frozen=True)
class RayOptions:
    """Where and how a campaign runs over Ray.

    Attributes:
        address: ``auto`` (the running cluster), ``local`` (start one on this machine, on
            127.0.0.1, for this campaign) or an address ``ray.init`` takes (``HOST:PORT``,
            ``ray://HOST:PORT``).
        actors: actors to start (``None``: one per GPU of the cluster; on a cluster without
            GPUs, or with ``device="cpu"``, one CPU actor).
        max_restarts: times Ray starts an actor again after it died.
        poll_interval_s: seconds between two polls of an actor.
    """

    address: str = "auto"
    actors: int | None = None
    max_restarts: int = MAX_ACTOR_RESTARTS
    poll_interval_s: float = POLL_INTERVAL_S


def run_ray_campaign(config: CampaignConfig, options: RayOptions, on_status: Any = None) -> ClusterStatus:
    """Fuzz ``config.target`` for ``config.duration_s`` seconds over a Ray cluster; return the
    final status (the actors' counters summed, the findings saved here to ``config.corpus``).

    Only the default (``random``) engine runs over Ray. ``config.devices`` must be empty:
    Ray gives each actor its GPU. ``config.workers`` and ``config.generators`` are per actor.

    Raises:
        UsageError: Ray is not installed (``pip install "moefuzz[ray]"``), another engine,
            ``devices`` given, ``device="cuda"`` on a cluster without GPUs, or no cluster at
            ``address``.
        UnknownTargetError: unknown target or kernel.
        WorkerError: no actor could start its workers, or every actor died for good.
        MoefuzzError: the strategy produced a case the contract rejects (a target bug).
    """
    if config.engine != "random":
        raise UsageError(f"engine={config.engine!r} does not run over Ray (only random does)")
    if config.devices:
        raise UsageError("devices and a Ray cluster do not mix: Ray gives each actor its GPU")
    if options.actors is not None and options.actors < 1:
        raise UsageError(f"actors={options.actors!r} must be at least 1")
    target = get_target(config.target)
    target.kernel(config.kernel)
    try:
        import ray
    except ImportError:
        raise UsageError('--ray needs Ray: pip install "moefuzz[ray]"') from None
    started_here = _connect(ray, options, config.device)
    try:
        return _Driver(ray, config, options, on_status).run()
    finally:
        if started_here:
            ray.shutdown()


def ray_runner(
    address: str | None, actors: int | None
) -> Callable[[CampaignConfig, Callable[[CampaignStatus], None] | None], CampaignStatus]:
    """``run_campaign``'s counterpart for the CLI's ``--ray ADDRESS`` and ``--ray-actors N``.

    Raises:
        UsageError: ``actors`` without an ``address``.
    """
    if address is None:
        raise UsageError("--ray-actors needs --ray")
    options = RayOptions(address, actors)

    def run(config: CampaignConfig, on_status: Callable[[CampaignStatus], None] | None) -> CampaignStatus:
        return run_ray_campaign(config, options, on_status)

    return run


def _connect(ray: Any, options: RayOptions, device: str) -> bool:
    """Connect to the cluster of ``options.address`` unless this process already is; return
    whether the cluster was started here (and is to be shut down after)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    if options.address == "local":
        cpus = options.actors if device == "cpu" and options.actors else None
        ray.init(address="local", num_cpus=cpus, _node_ip_address="127.0.0.1", **quiet)
        return True
    try:
        ray.init(address=options.address, log_to_driver=False, logging_level="WARNING")
    except ConnectionError as exc:
        raise UsageError(f"no Ray cluster at address={options.address!r}: {exc}") from None
    return False


class _Driver:
    def __init__(
        self, ray: Any, config: CampaignConfig, options: RayOptions, on_status: Callable[[CampaignStatus], None] | None
    ) -> None:
        self.ray, self.config, self.options = ray, config, options
        self.target = get_target(config.target)
        self.kernel = self.target.kernel(config.kernel)
        self.status = ClusterStatus(self.target.name, self.kernel.name, address=options.address)
        self._notify: Callable[[CampaignStatus], None] = on_status or (lambda _: None)
        scan = scan_target(config.corpus, self.target.name)  # only valid findings are known
        self._known: list[str] = sorted(scan.known)
        self.status.corpus_problems = scan.problems
        self._known_set = set(self._known)
        self.status.corpus_size = len(self._known)
        self._owner: dict[str, tuple[int, int, int]] = {}  # finding id: (slot, incarnation, index in findings)
        self._driver_known = 0
        self._driver_matched: dict[str, int] = {}
        self.deadline = float("inf")
        self._stopping = False
        self._nodes_at = 0.0
        self._slots: list[ActorSlot] = []

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> ClusterStatus:
        ray = self.ray
        count, device, resources = self._plan()
        actor_class = ray.remote(FuzzActor)
        self._count_nodes()
        try:
            for number in range(count):
                handle = actor_class.options(max_restarts=self.options.max_restarts, max_task_retries=0, **resources)
                info = ActorInfo(number)
                self._slots.append(ActorSlot(info, handle.remote()))
                self.status.actors.append(info)
            for slot in self._slots:
                self._start(slot, device)
            self._loop(device)
        finally:
            for slot in self._slots:
                try:
                    ray.kill(slot.handle, no_restart=True)
                except Exception:  # gone already
                    pass
        return close_status(self.status, self._slots)

    def _plan(self) -> tuple[int, str, dict[str, Any]]:
        """How many actors, on which device, each asking Ray for what."""
        resources = self.ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        device = self.config.device
        if device == "cuda" and gpus == 0:
            raise UsageError(f"device='cuda' but the Ray cluster at address={self.options.address!r} has no GPU")
        if device != "cpu" and gpus > 0:
            return self.options.actors or gpus, "cuda", {"num_gpus": 1}
        return self.options.actors or 1, "cpu", {"num_cpus": 1}

    def _loop(self, device: str) -> None:
        ray, options = self.ray, self.options
        while any(s.info.state in ("starting", "fuzzing") for s in self._slots):
            now = time.monotonic()
            if not self._stopping and (now >= self.deadline or self._enough()):
                self._stopping = True
                for slot in self._slots:
                    if slot.info.state == "fuzzing":
                        slot.handle.stop.remote()
            for slot in self._slots:
                due = now - slot.last_poll >= options.poll_interval_s
                if slot.info.state == "fuzzing" and slot.pending is None and due:
                    slot.pending, slot.pending_kind, slot.last_poll = self._poll(slot), "poll", now
            refs = [s.pending for s in self._slots if s.pending is not None]
            polls = [s.last_poll + options.poll_interval_s for s in self._slots if s.info.state == "fuzzing"]
            wake = min([now + options.poll_interval_s, *polls]) - time.monotonic()
            if refs:  # every reply, or the next poll due
                ray.wait(refs, num_returns=len(refs), timeout=max(0.0, wake) if polls else options.poll_interval_s)
            else:
                time.sleep(max(0.0, wake))
            for slot in self._slots:
                if slot.pending is not None:
                    self._answer(slot, device)
            if time.monotonic() - self._nodes_at >= NODES_INTERVAL_S:
                self._count_nodes()
            self._sum()
            self._notify(self.status)

    def _poll(self, slot: ActorSlot) -> Any:
        new = self._known[slot.known_sent :]
        slot.known_sent = len(self._known)
        return slot.handle.poll.remote(new)

    def _start(self, slot: ActorSlot, device: str) -> None:
        config = self.config
        remaining = config.duration_s if self.deadline == float("inf") else self.deadline - time.monotonic()
        slot.info.seed = actor_seed(config.seed, slot.info.slot, slot.incarnation)
        spec = start_spec(config, slot, device, remaining, self._known)
        slot.known_sent = len(self._known)
        slot.info.state = "starting"
        slot.pending, slot.pending_kind = slot.handle.start.remote(spec), "start"

    def _answer(self, slot: ActorSlot, device: str) -> None:
        """Take the reply of ``slot``'s call if it came (or its actor's death)."""
        ray = self.ray
        ready, _ = ray.wait([slot.pending], timeout=0)
        if not ready:
            return
        kind, ref = slot.pending_kind, slot.pending
        slot.pending = None
        try:
            reply = ray.get(ref)
        except ray.exceptions.ActorUnavailableError:
            if kind == "start":  # the call may not have run: ask again
                self._start(slot, device)
            return  # unreachable for now: poll it again
        except ray.exceptions.RayActorError as exc:
            self._died(slot, device, _one_line(exc))
            return
        if kind == "poll" and reply["instance"] != slot.instance:
            self._died(slot, device, "the actor died and Ray started it again")
            return
        if reply.get("error"):
            name, message = reply["error"]
            raise getattr(errors, name, MoefuzzError)(message)
        now = time.monotonic()
        if kind == "start":
            info = slot.info
            info.state, info.pid, info.node, info.gpus = "fuzzing", reply["pid"], reply["node"], reply["gpus"]
            slot.instance = reply["instance"]
            slot.limits, slot.environment = reply["limits"], reply["environment"]
            slot.last_poll = 0.0
            if self.deadline == float("inf"):
                self.deadline = now + self.config.duration_s
            elif self._stopping:  # started again after the budget ran out: it has nothing left
                slot.handle.stop.remote()
            if self.status.device_kind == "":
                self.status.device, self.status.device_kind = reply["device"], reply["device_kind"]
                self.status.environment = dict(reply["environment"])
            return
        for entry in reply["findings"]:
            self._receive(slot, entry["phase"], entry["finding"])
        counters = reply["counters"]
        if counters:
            slot.current = counters
            for name, attribute in (("fuzzing_age", "fuzzing_since"), ("first_case_age", "first_case_at")):
                age = counters.get(name)
                if age is not None and getattr(slot, attribute) is None:
                    setattr(slot, attribute, now - age)
        slot.in_flight, slot.in_flight_at = reply["in_flight"], now
        slot.info.running = len(slot.in_flight)
        if reply["done"]:
            slot.info.state = "done"
            age = counters.get("fuzzing_until_age") if counters else None
            slot.fuzzing_until = now - age if age is not None else now

    # -- findings ---------------------------------------------------------------------------------
    def _receive(self, slot: ActorSlot, phase: str, data: dict[str, Any]) -> None:
        """Save a finding an actor reported: a new one to the corpus, a known one counted; a
        shrink's progress or result over the finding it came from (only from the actor that
        reported it first)."""
        finding = finding_from_data(data)
        finding_id = finding.finding_id
        if phase == "found":
            finding.found.update({"actor": slot.info.slot, "actor_execs": finding.found.get("execs")})
            self._keep(finding, slot)
            return
        owner = self._owner.get(finding_id)
        if owner is None or owner[:2] != (slot.info.slot, slot.incarnation):
            return  # a shrink of a failure another actor reported first: that one's counts
        path, first = self.status.findings[owner[2]]
        finding.found = first.found
        self.status.findings[owner[2]] = (path, finding)
        save_finding(None, finding, path)

    def _keep(self, finding: Finding, slot: ActorSlot) -> None:
        """Save ``finding`` if the corpus does not hold its id yet, else count it as known."""
        status, finding_id = self.status, finding.finding_id
        if finding_id in self._known_set:
            self._driver_known += 1
            self._driver_matched[finding_id] = self._driver_matched.get(finding_id, 0) + 1
            return
        self._known_set.add(finding_id)
        self._known.append(finding_id)
        finding.found.update({"elapsed_s": round(status.elapsed, 3), "execs": status.execs})
        path = save_finding(self.config.corpus, finding)
        self._owner[finding_id] = (slot.info.slot, slot.incarnation, len(status.findings))
        status.findings.append((path, finding))
        status.corpus_size = len(self._known)

    def _died(self, slot: ActorSlot, device: str, reason: str) -> None:
        """``slot``'s actor died: blame the cases it was running, fold its counters into the
        campaign's, start it again while the budget lasts and Ray's restarts do."""
        info = slot.info
        fold_counters(slot)
        if info.state == "fuzzing":
            for finding in blamed_findings(slot, self.target, self.kernel, reason):
                self.status.blamed += 1
                self._keep(finding, slot)
        slot.in_flight, info.running = [], 0
        info.restarts += 1
        self.status.actor_restarts += 1
        if info.restarts > self.options.max_restarts:
            info.state = "dead"
            if all(s.info.state == "dead" for s in self._slots):
                raise WorkerError(f"every Ray actor died more than {self.options.max_restarts} times (last: {reason})")
            return
        if self._stopping or time.monotonic() >= self.deadline:
            info.state = "done"
            return
        slot.incarnation += 1
        self._start(slot, device)

    # -- status ---------------------------------------------------------------------------------
    def _enough(self) -> bool:
        limit = self.config.max_findings
        return limit is not None and len(self.status.findings) >= limit

    def _count_nodes(self) -> None:
        self._nodes_at = time.monotonic()
        try:
            self.status.nodes = sum(1 for node in self.ray.nodes() if node.get("Alive"))
        except Exception:  # the GCS busy: keep the last count
            pass

    def _sum(self) -> None:
        sum_status(self.status, self._slots, self._driver_known, self._driver_matched)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
