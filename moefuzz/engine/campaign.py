"""A time-budgeted fuzzing campaign of one target and kernel.

An engine draws cases; :class:`Campaign` does the rest, the same for every engine: check the
contract's preconditions, run the case in the executor's worker. A failing
outcome becomes a :class:`~moefuzz.store.corpus.Finding`, saved to the corpus at once (before any
shrinking, so it cannot be lost), then minimized and saved again. A failure whose finding id the
corpus already holds is counted, not saved twice. The campaign never stops at a finding.

The default engine (:meth:`Campaign.fuzz`) does not draw cases in the parent. It hands the bytes
of the next cases (:func:`moefuzz.engine.generate.byte_stream`) to drawer processes that never touch the
device (:mod:`moefuzz.runtime.generators`) and passes what they draw to the workers, two cases ahead of each
(``workers``, spread over ``devices``); without drawers (the interpreter's default) each worker
draws its own cases from the bytes. The parent holds every request until its reply came (and can
draw the same case from the same bytes), so a crash loses nothing; a failing case comes back
with its outcome.
"""

from __future__ import annotations

import datetime
import os
import selectors
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from moefuzz.engine.generate import CaseSource, byte_stream
from moefuzz.errors import CaseError, MoefuzzError, UsageError
from moefuzz.execute.perturb import Perturbation, plan_perturbations
from moefuzz.model.case import Case
from moefuzz.model.domain import Coverage, coverage_of
from moefuzz.model.outcome import Outcome
from moefuzz.model.registry import get_target
from moefuzz.model.target import Limits, default_limits
from moefuzz.runtime.generators import DRAW_AHEAD, DrawerPool
from moefuzz.runtime.isolation import Executor, Request, worker_context
from moefuzz.shrinking import Shrinker
from moefuzz.shrinking.finding import minimize_finding
from moefuzz.store.corpus import Finding, save_finding

#: A case that hangs is run again with this many times the case timeout before it is saved.
HANG_CONFIRM_FACTOR = 4

#: Engines that choose a campaign's cases.
ENGINES = ("hypothesis", "atheris")

#: Requests each worker holds ahead: with two, the next case is in its pipe when it replies.
PIPELINE_DEPTH = 2
#: ... when drawers feed it: a case then takes a worker a third of a millisecond, less than the
#: parent may take to answer a reply now and then (it also serves the drawers).
PIPELINE_DEPTH_DRAWN = 4

#: Most cases drawn ahead of the workers (waiting in the parent or being drawn): enough that a
#: worker never waits for a drawer, few enough that drawers faster than the workers cost little
#: memory (a three_step_sort case of T = 16384 with its oracle outputs is ~2.5 MB).
MAX_DRAWN_AHEAD = 48

#: Most workers a GPU campaign without drawers starts: each draws its own cases (one CPU core
#: each, plus a warm spare mostly idle).
MAX_AUTO_WORKERS = 8


#: Workers a GPU runs when drawers feed them, on a host with :data:`CORES_FOR_TWO_WORKERS` cores
#: a GPU. A worker fed by drawers is CPU-bound in Python between its launches (one core, 89 %
#: busy); a second one on the same GPU fills the first one's gaps: on one H200 host, 2,089
#: execs/s against 1,258-1,648 for one (three_step_sort, T <= 1024, 8 drawers; benchmarks-notes.md,
#: change 13).
WORKERS_PER_GPU = 2
#: Cores a GPU needs for a second worker: the two workers, the parent and the 8 drawers that
#: draw the ~2,500 cases/s two workers run keep 11 cores busy (the spares idle).
CORES_FOR_TWO_WORKERS = 12


def auto_workers(device: str, devices: tuple[int, ...] = (), drawers: int = 0, cpus: int | None = None) -> int:
    """Workers of a campaign that does not say. In the interpreter, one (it is CPU-bound). On a
    GPU with drawers, :data:`WORKERS_PER_GPU` a GPU where the host has
    :data:`CORES_FOR_TWO_WORKERS` cores a GPU, else one a GPU: each only launches and compares.
    On a GPU without drawers, half the CPU cores, at most :data:`MAX_AUTO_WORKERS`, at least one
    per GPU: each draws its own cases, and 4 or 8 of them on one GPU ran no faster than one
    (~450-550 cases/s together: time-slicing between CUDA contexts and torch threads
    oversubscribing the cores, not told apart; docs/benchmarks.md)."""
    if device != "cuda":
        return 1
    cpus = cpus or os.cpu_count() or 2
    gpus = max(1, len(devices))
    if drawers:
        return gpus * (WORKERS_PER_GPU if cpus // gpus >= CORES_FOR_TWO_WORKERS else 1)
    return max(gpus, min(MAX_AUTO_WORKERS, cpus // 2))


def likely_device(requested: str) -> str:
    """The device a campaign of ``requested`` (``auto``, ``cuda``, ``cpu``) will run on, guessed
    in the parent without importing torch: ``auto`` is ``cuda`` where the NVIDIA driver's
    control device exists. Only a guess to start drawers early; the first worker says for sure."""
    if requested != "auto":
        return requested
    return "cuda" if os.path.exists("/dev/nvidiactl") else "cpu"


#: Most drawers a GPU campaign starts by default: on an H200 host, 8 drawers (one torch thread
#: each) drew 3,123 three_step_sort cases/s of T <= 1024, more than one worker runs (~2,200/s).
MAX_AUTO_DRAWERS = 8


def auto_drawers(device: str, devices: tuple[int, ...] = (), cpus: int | None = None) -> int:
    """Drawers of a campaign that does not say. In the interpreter none: the worker is the
    bottleneck there (a kernel runs in numpy), and a drawer would take a core from it. On a GPU,
    the cores left over by the parent and a worker and its spare per GPU, at least one, at most
    :data:`MAX_AUTO_DRAWERS`."""
    if device != "cuda":
        return 0
    cpus = cpus or os.cpu_count() or 2
    return max(1, min(MAX_AUTO_DRAWERS, cpus - 1 - 2 * max(1, len(devices))))


@dataclass(frozen=True)
class CampaignConfig:
    """What to fuzz and for how long.

    Attributes:
        target, kernel: names (``kernel=None`` takes the target's default kernel).
        duration_s: fuzzing budget in seconds (shrinking a finding may run past it, up to
            ``shrink_budget_s``).
        corpus: the corpus directory; findings go to ``corpus/<target>/<finding-id>/``.
        seed: seeds the case source; the same seed draws the same cases.
        device: ``auto``, ``cuda`` or ``cpu`` (Triton interpreter).
        case_timeout_s: a case running longer is a hang (default 30 s on a GPU, where the first
            launch of a shape includes Triton's compile; 120 s in the interpreter).
        shrink_budget_s: seconds to shrink each finding (default: a quarter of the duration,
            at least 60 s, at most 600 s).
        limits: size limits (default: full sizes on a GPU, smaller in the interpreter).
        perturb_runs: launches per case under schedule perturbation (1: one plain launch; more:
            the plain launch, then the target's launch knobs and poison patterns varied, see
            :mod:`moefuzz.execute.perturb`).
        caching_allocator: False sets ``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` in the workers, so
            every buffer is a fresh allocation (stale reads see what the driver leaves).
        engine: what chooses the cases: ``hypothesis`` (seeded random bytes through the target's
            strategy) or ``atheris`` (libFuzzer's coverage-guided mutations of those bytes).
        workers: worker processes running cases at once (``None``: :func:`auto_workers`); the
            atheris engine uses one.
        devices: CUDA device indices to spread the workers over, round robin (each worker sees
            its one as ``cuda:0`` through ``CUDA_VISIBLE_DEVICES``); empty: the default device.
        max_findings: end the campaign once this many new findings are saved and shrunk
            (``None``: run the whole budget; benchmarks of time to bug take 1).
        drawers: CPU-only processes drawing cases and running the oracle for the workers
            (``0``: each worker draws its own; ``None``: :func:`auto_drawers`, none in the
            interpreter); the atheris engine draws in its own process.
    """

    target: str
    kernel: str | None
    duration_s: float
    corpus: Path
    seed: int = 0
    device: str = "auto"
    case_timeout_s: float | None = None
    shrink_budget_s: float | None = None
    limits: Limits | None = None
    perturb_runs: int = 1
    caching_allocator: bool = True
    engine: str = "hypothesis"
    workers: int | None = None
    devices: tuple[int, ...] = ()
    max_findings: int | None = None
    drawers: int | None = None


@dataclass
class CampaignStatus:
    """Live counters, handed to the status callback (what :mod:`moefuzz.ui.status` shows).

    Attributes:
        target, kernel: what runs.
        device: the worker's device name (``cpu (Triton interpreter...)`` without a GPU).
        device_kind: ``cuda`` or ``cpu`` once a worker started, else ``""``.
        environment: the worker's versions and device (what findings record).
        started, fuzzing_since: ``time.monotonic()`` at start and once workers were ready.
        fuzzing_until: ``time.monotonic()`` when the campaign began to close (its workers and
            drawers stopping), else ``None``: the end of what :attr:`execs_per_s` counts.
        first_case_at: ``time.monotonic()`` when the first case's outcome came in (drawers
            started and the kernel compiled by then), else ``None``.
        execs, exec_seconds: cases run while fuzzing, and their summed worker time.
        findings: new findings, each with the directory it was saved to.
        known: failures whose finding the corpus already held; ``matched`` counts them by id.
        corpus_size: reproducers of this target in the corpus, new ones included.
        shrinking: id of the finding being shrunk, else ``None``; ``shrink_pass``,
            ``shrink_candidates`` and ``shrink_accepted`` say where that shrink stands.
        worker_restarts: workers replaced after a crash or a hang.
        recovery_seconds: for each replacement, seconds from the failure's report to the end of
            the next case the new worker ran.
        workers: workers running cases (``0`` until the first is ready).
        drawers: processes drawing cases for them (``0``: the workers draw their own).
        unconfirmed_hangs: cases that hung once but finished when run again with a longer timeout
            (counted, not saved: a slow first compile, not a hang).
        engine_stats: the engine's own closing figures, such as libFuzzer's coverage counts;
            empty for the default engine.
        skipped_outside_domain: drawn cases outside the kernel's domain, never launched.
        coverage: the target's domain points hit by the cases drawn (a
            :class:`~moefuzz.model.domain.Coverage`; ``None`` before the first or without a domain).
    """

    target: str
    kernel: str
    device: str = "starting"
    device_kind: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    fuzzing_since: float | None = None
    fuzzing_until: float | None = None
    first_case_at: float | None = None
    execs: int = 0
    launches: int = 0
    exec_seconds: float = 0.0
    findings: list[tuple[Path, Finding]] = field(default_factory=list)
    known: int = 0
    matched: dict[str, int] = field(default_factory=dict)
    corpus_size: int = 0
    shrinking: str | None = None
    shrink_pass: str = ""
    shrink_candidates: int = 0
    shrink_accepted: int = 0
    worker_restarts: int = 0
    recovery_seconds: list[float] = field(default_factory=list)
    workers: int = 0
    drawers: int = 0
    engine_stats: str = ""
    unconfirmed_hangs: int = 0
    skipped_outside_domain: int = 0
    coverage: Coverage | None = None

    @property
    def findings_by_kind(self) -> dict[str, int]:
        """New findings per outcome kind: always ``divergence``, ``crash`` and ``hang``, plus
        any other kind met (``error``, ``oracle-error``)."""
        counts = dict.fromkeys(("divergence", "crash", "hang"), 0)
        for _, finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def execs_per_s(self) -> float:
        """Executions per second of fuzzing: from the first worker ready to the campaign's close
        (or now, while it runs). Start-up and the stopping of workers and drawers are excluded."""
        if self.fuzzing_since is None:
            return 0.0
        seconds = (self.fuzzing_until or time.monotonic()) - self.fuzzing_since
        return self.execs / seconds if seconds > 0 else 0.0

    @property
    def steady_execs_per_s(self) -> float | None:
        """Executions per second from the first case's outcome to the campaign's close (or now):
        :attr:`execs_per_s` without the drawers' start-up and the first kernel load, the rate a
        long campaign converges to; ``None`` before any case came back."""
        if self.first_case_at is None:
            return None
        seconds = (self.fuzzing_until or time.monotonic()) - self.first_case_at
        return (self.execs - 1) / seconds if seconds > 0 else 0.0


class Campaign:
    """One campaign, driven case by case by an engine.

    An engine calls :meth:`start` (starts the workers; returns the size limits its strategy
    takes), then :meth:`run_case` for each case it draws until :attr:`expired`, then
    :meth:`close`. Everything a case leads to (running it in a worker, saving a failure at once,
    shrinking it, saving it again) happens in :meth:`run_case`, the same for every engine.

    Args:
        config: what to fuzz and for how long.
        on_status: called with the live status after each case and during shrinking.
        started: ``time.monotonic()`` the status counts elapsed time from (default: now); an
            engine that starts in another process passes its caller's start.

    Raises:
        UnknownTargetError: unknown target or kernel (from the constructor).
    """

    def __init__(
        self,
        config: CampaignConfig,
        on_status: Callable[[CampaignStatus], None] | None = None,
        started: float | None = None,
    ) -> None:
        self.config = config
        self.target = get_target(config.target)
        self.kernel = self.target.kernel(config.kernel)
        self.status = CampaignStatus(self.target.name, self.kernel.name)
        if started is not None:
            self.status.started = started
        self._notify = on_status or (lambda _: None)
        if config.workers is not None and config.workers < 1:
            raise UsageError(f"workers={config.workers!r} must be at least 1")
        if config.drawers is not None and config.drawers < 0:
            raise UsageError(f"drawers={config.drawers!r} must not be negative")
        self._drawers: DrawerPool | None = None
        self.executor = self._executor(0)
        self.executors = [self.executor]
        self._starting: list[Executor] = []
        self._source: CaseSource | None = None
        self.limits = config.limits
        self.environment: dict[str, str] = {}
        self.deadline = float("inf")
        self._shrink_budget = config.shrink_budget_s or min(600.0, max(60.0, config.duration_s / 4))
        self._known_ids: set[str] = set()

    def _executor(self, number: int) -> Executor:
        """The executor of worker ``number``: its environment pins it to its device."""
        config = self.config
        env = {} if config.caching_allocator else {"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}
        if config.devices:
            env["CUDA_VISIBLE_DEVICES"] = str(config.devices[number % len(config.devices)])
        return Executor(
            self.target.name,
            self.kernel.name,
            config.device,
            case_timeout_s=config.case_timeout_s or 120.0,
            env=env,
            limits=config.limits,
        )

    def start(self) -> Limits:
        """Start the first worker and the clock; return the size limits for the device. The
        other workers start in the background and join :meth:`fuzz` once ready.

        Raises:
            WorkerError: no worker could start.
        """
        config = self.config
        self.executor.launch()
        # Drawers import the target while the first worker starts (the fork server, torch, the
        # CUDA context), on the device the parent expects; they learn the limits once it is ready.
        early = self._drawer_count(likely_device(config.device))
        pool = DrawerPool(worker_context(), self.target.name, None, early, kernel=self.kernel.name) if early else None
        try:
            self.environment = self.executor.wait_ready()
        except BaseException:
            if pool is not None:
                pool.close()
            raise
        device = self.executor.device
        self.status.device = self.environment.get("device_name", self.environment.get("device", "?"))
        self.status.device_kind = device
        self.status.environment = dict(self.environment)
        if config.case_timeout_s is None:
            self.executor.case_timeout_s = 30.0 if device == "cuda" else 120.0
        self.limits = config.limits or default_limits(device)
        drawers = self._drawer_count(device)
        count = 1 if config.engine != "hypothesis" else config.workers or auto_workers(device, config.devices, drawers)
        for number in range(1, count):
            executor = self._executor(number)
            executor.device = device
            executor.case_timeout_s = self.executor.case_timeout_s
            executor.launch()
            self._starting.append(executor)
        self.status.workers = 1
        if pool is not None and len(pool) != drawers:  # the device was not the one expected
            pool.close()
            pool = None
        if pool is not None:
            pool.configure(self.limits)
        elif drawers:
            pool = DrawerPool(worker_context(), self.target.name, self.limits, drawers, kernel=self.kernel.name)
        self._drawers = pool
        self.status.drawers = drawers
        self._known_ids = {p.name for p in (config.corpus / self.target.name).glob("*") if p.is_dir()}
        self.status.corpus_size = len(self._known_ids)
        self.status.fuzzing_since = time.monotonic()
        self.deadline = self.status.fuzzing_since + config.duration_s
        return self.limits

    def _drawer_count(self, device: str) -> int:
        """Drawers of this campaign on ``device``: the configured count, else :func:`auto_drawers`;
        none for an engine that draws in its own process."""
        if self.config.engine != "hypothesis":
            return 0
        config = self.config
        return config.drawers if config.drawers is not None else auto_drawers(device, config.devices)

    @property
    def expired(self) -> bool:
        """True once the fuzzing budget is spent, or ``max_findings`` new findings are in."""
        limit = self.config.max_findings
        return time.monotonic() >= self.deadline or (limit is not None and len(self.status.findings) >= limit)

    def run_case(self, case: Case) -> None:
        """Check ``case``, run it in a worker; save, shrink and save again a new failure.

        Raises:
            MoefuzzError: the strategy produced a case the contract rejects (a target bug).
        """
        try:
            self.target.check(case)
        except CaseError as exc:
            raise self._invalid(str(exc)) from None
        index = self.status.execs
        plan = self._plan(index)
        outcome = self.executor.run(case, plan=plan)
        self._count(outcome)
        self._settle(case, plan, self._plan_seed(index), outcome, (self.status.elapsed, self.status.execs))
        self._notify(self.status)

    def fuzz(self) -> None:
        """The default engine: until :attr:`expired`, keep every worker :data:`PIPELINE_DEPTH`
        cases ahead (drawn by the drawers from :func:`~moefuzz.engine.generate.byte_stream`, or bytes
        the worker draws from itself), count what comes back, and save and shrink each new
        failure (after the cases in flight have come back).

        Raises:
            MoefuzzError: the strategy produced a case the contract rejects (a target bug).
            WorkerError: a worker or a drawer could not start, or a drawer died.
        """
        feed = _Feed(byte_stream(self.config.seed), self._drawers, self._plan)
        drawers = self._drawers
        depth = PIPELINE_DEPTH_DRAWN if drawers else PIPELINE_DEPTH
        waiter = _Waiter()
        try:
            while not self.expired:
                self._join_started()
                invalid = feed.draw()
                if invalid:
                    raise self._invalid(invalid)
                for executor in self.executors:
                    while executor.in_flight < depth and (request := feed.next_request()) is not None:
                        executor.submit(request)
                now = time.perf_counter()
                until = min([now + self.deadline - time.monotonic(), now + 1.0] + [e.deadline for e in self.executors])
                ready = [e.connection for e in self.executors] + (drawers.connections if drawers else [])
                waiter.wait(ready, timeout=max(0.0, until - now))
                failures = self._collect()
                if failures:
                    failures += self._drain()
                    for request, outcome, when in failures:
                        self._settle_request(request, outcome, when)
                self._notify(self.status)
        finally:
            waiter.close()
        for request, outcome, when in self._drain():
            self._settle_request(request, outcome, when)

    # -- the default engine's bookkeeping ---------------------------------------------------
    def _plan_seed(self, index: int) -> int:
        return self.config.seed * 1_000_003 + index

    def _plan(self, index: int) -> list[Perturbation]:
        return plan_perturbations(self.target.launch_knobs, self.config.perturb_runs, self._plan_seed(index))

    def _invalid(self, message: str) -> MoefuzzError:
        return MoefuzzError(f"target {self.target.name!r} generated a case its contract rejects: {message}")

    def _join_started(self) -> None:
        """Move the workers that became ready since into the fuzzing set."""
        for executor in list(self._starting):
            if executor.poll_ready():
                self._starting.remove(executor)
                self.executors.append(executor)
                self.status.workers = len(self.executors)

    def _collect(self) -> list[tuple[Request, Outcome, tuple[float, int]]]:
        """Count the outcomes that have arrived (and hangs past their deadline); return the
        failures among them, each with when it came: the campaign's elapsed seconds and the
        executions counted by then (itself included)."""
        failures = []
        for executor in self.executors:
            for request, outcome in executor.collect() + executor.expire():
                if outcome.kind == "rejected":
                    continue
                if outcome.kind == "invalid":
                    raise self._invalid(outcome.message)
                self._count(outcome)
                if outcome.failed:
                    failures.append((request, outcome, (round(self.status.elapsed, 3), self.status.execs)))
        return failures

    def _drain(self) -> list[tuple[Request, Outcome, tuple[float, int]]]:
        """Wait for every case in flight; return the failures among them."""
        failures = []
        while any(e.in_flight for e in self.executors):
            busy = [e for e in self.executors if e.in_flight]
            until = min(e.deadline for e in busy)
            wait([e.connection for e in busy], timeout=max(0.0, until - time.perf_counter()))
            failures += self._collect()
        return failures

    def _count(self, outcome: Outcome) -> None:
        status = self.status
        if self.target.domain is not None:
            if status.coverage is None:
                status.coverage = coverage_of(self.target.domain, self.limits or default_limits(self.executor.device))
            status.coverage.add_mask(outcome.coverage)  # type: ignore[union-attr]
        if outcome.kind == "skipped":  # outside the kernel's domain: drawn, never launched
            status.skipped_outside_domain += 1
            return
        if status.first_case_at is None:
            status.first_case_at = time.monotonic()
        status.execs += 1
        status.launches += outcome.runs
        status.exec_seconds += outcome.seconds
        if outcome.ends_worker or outcome.kind == "hang" or len(status.recovery_seconds) < status.worker_restarts:
            self._sync_restarts()  # until the replacement's recovery is in

    def _sync_restarts(self) -> None:
        self.status.worker_restarts = sum(e.replacements for e in self.executors)
        self.status.recovery_seconds = [s for e in self.executors for s in e.recovery_seconds]

    def _case_of(self, request: Request) -> Case:
        """The case a request's bytes encode, drawn here as the worker drew it."""
        if request.case is not None:
            return request.case
        if self._source is None:
            limits = self.limits or default_limits(self.executor.device)
            self._source = CaseSource(self.target.strategy(limits), 0, domain=self.kernel.domain)
        case = self._source.from_bytes(request.buffer or b"")
        if case is None:  # the worker drew a case from these bytes: the strategy is not deterministic
            raise MoefuzzError(f"target {self.target.name!r}: the strategy rejects bytes a worker drew a case from")
        return case

    def _settle_request(self, request: Request, outcome: Outcome, when: tuple[float, int]) -> None:
        case = outcome.case if outcome.case is not None else self._case_of(request)
        self._settle(case, request.plan, self._plan_seed(request.index), outcome, when, request.index)

    def _settle(
        self,
        case: Case,
        plan: list[Perturbation],
        plan_seed: int,
        outcome: Outcome,
        when: tuple[float, int],
        index: int | None = None,
    ) -> None:
        """Save, shrink and save again a new failure of ``case``; count a known one. A hang is
        confirmed first (:meth:`_confirm_hang`). ``when``: the campaign's elapsed seconds and
        executions when the failure came back; ``index``: the case's buffer in the campaign's
        :func:`~moefuzz.engine.generate.byte_stream`, when it was drawn from one."""
        if outcome.kind == "hang":
            outcome = self._confirm_hang(case, plan, outcome)
        if not outcome.failed:
            return
        target, status = self.target, self.status
        finding = Finding(
            target=target.name,
            kernel=self.kernel.name,
            kind=outcome.kind,
            detail=outcome.detail,
            message=outcome.message,
            case=case,
            original_case=case,
            mismatch=outcome.mismatch,
            environment=self.environment,
            found={
                "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "seed": self.config.seed,
                "elapsed_s": when[0],
                "execs": when[1],
                "runs": outcome.runs,
                "failures": outcome.rate.failures,
                "plan_seed": plan_seed,
                "perturbation": outcome.perturbation,
                "nondeterministic": outcome.nondeterministic,
                **({"stream_index": index} if index is not None else {}),
            },
            shrink={"original_size": list(target.size(case))},
        )
        if finding.finding_id in self._known_ids:
            status.known += 1
            status.matched[finding.finding_id] = status.matched.get(finding.finding_id, 0) + 1
            return
        self._known_ids.add(finding.finding_id)
        path = save_finding(self.config.corpus, finding)
        status.findings.append((path, finding))
        status.corpus_size = len(self._known_ids)
        status.shrinking = finding.finding_id
        self._notify(status)

        def on_shrink_progress(shrinker: Shrinker) -> None:
            status.shrink_pass = shrinker.current_pass
            status.shrink_candidates = shrinker.candidates
            status.shrink_accepted = shrinker.accepted
            self._notify(status)

        budget, corpus = self._shrink_budget, self.config.corpus
        minimize_finding(finding, target, self.executor, budget, corpus=corpus, on_progress=on_shrink_progress)
        status.shrinking, status.shrink_pass = None, ""
        status.shrink_candidates = status.shrink_accepted = 0
        self._sync_restarts()

    def _confirm_hang(self, case: Case, plan: list[Perturbation], first: Outcome) -> Outcome:
        """Run a case that hung once more with :data:`HANG_CONFIRM_FACTOR` times the timeout
        (a fresh worker, the compile cache now warmer). A first launch can spend the whole case
        timeout in Triton's compiler when many campaigns compile at once; only a case that hangs
        again is a hang. Returns the second outcome (a pass, a failure, or the confirmed hang)."""
        timeout = self.executor.case_timeout_s
        self.executor.case_timeout_s = timeout * HANG_CONFIRM_FACTOR
        try:
            second = self.executor.run(case, plan=plan)
        finally:
            self.executor.case_timeout_s = timeout
        self.status.unconfirmed_hangs += second.kind != "hang"
        return second if second.kind != "hang" else first

    def close(self) -> None:
        """Stop the workers and the drawers (the end of :attr:`CampaignStatus.execs_per_s`)."""
        if self.status.fuzzing_since is not None and self.status.fuzzing_until is None:
            self.status.fuzzing_until = time.monotonic()
        for executor in self.executors + self._starting:
            executor.close()
        if self._drawers is not None:
            self._drawers.close()
            self._drawers = None


class _Waiter:
    """``multiprocessing.connection.wait`` with one selector kept across calls: ``wait`` builds
    and registers a new one each call, ~40 us for ten pipes, several times a case. The selector
    is built again whenever the set of connections changes (a worker replaced, one joined)."""

    def __init__(self) -> None:
        self._selector: selectors.BaseSelector | None = None
        self._connections: tuple[Connection, ...] = ()

    def wait(self, connections: list[Connection], timeout: float) -> None:
        """Return once one of ``connections`` is readable (a message, or the end of the pipe)
        or ``timeout`` seconds passed."""
        if self._selector is None or tuple(connections) != self._connections:
            self.close()
            self._selector = selectors.DefaultSelector()
            for connection in connections:
                self._selector.register(connection, selectors.EVENT_READ)
            self._connections = tuple(connections)
        self._selector.select(timeout)

    def close(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None


class _Feed:
    """Where the default engine's next request comes from: the drawers' cases, in the order
    they were drawn, or (without drawers) the next bytes of the stream for a worker to draw."""

    def __init__(
        self,
        buffers: Iterator[bytes],
        drawers: DrawerPool | None,
        plan: Callable[[int], list[Perturbation]],
    ) -> None:
        self._buffers, self._drawers, self._plan = buffers, drawers, plan
        self._index = 0
        self._drawn: deque[Request] = deque()

    def draw(self) -> str:
        """Keep every drawer :data:`~moefuzz.runtime.generators.DRAW_AHEAD` buffers ahead, while fewer than
        :data:`MAX_DRAWN_AHEAD` cases are drawn or being drawn and not yet sent (drawers faster
        than the workers would otherwise fill the parent's memory), and take what they drew;
        return the first invalid case's error (a target bug), else ``""``."""
        drawers = self._drawers
        if drawers is None:
            return ""
        self._fill(drawers)
        for result in drawers.collect():
            if result.error:
                return result.error
            if result.payload is not None:
                plan = self._plan(result.index)
                self._drawn.append(Request(plan, buffer=result.buffer, index=result.index, payload=result.payload))
        # Again, for the drawers that just said they are ready or answered: otherwise they sit
        # idle until the campaign's next wait returns (up to a second at the start, when
        # nothing else is in flight to wake it).
        self._fill(drawers)
        return ""

    def _fill(self, drawers: DrawerPool) -> None:
        for drawer in drawers.hungry():
            while len(drawer.pending) < DRAW_AHEAD and len(self._drawn) + drawers.outstanding < MAX_DRAWN_AHEAD:
                drawers.submit(drawer, self._index, next(self._buffers))
                self._index += 1

    def next_request(self) -> Request | None:
        """The next request for a worker, or ``None`` while the drawers are behind."""
        if self._drawers is not None:
            return self._drawn.popleft() if self._drawn else None
        request = Request(self._plan(self._index), buffer=next(self._buffers), index=self._index)
        self._index += 1
        return request


def run_campaign(config: CampaignConfig, on_status: Callable[[CampaignStatus], None] | None = None) -> CampaignStatus:
    """Fuzz ``config.target`` for ``config.duration_s`` seconds with ``config.engine``; return
    the final status.

    The ``hypothesis`` engine draws cases from the target's strategy with seeded random bytes,
    here; ``atheris`` (see :mod:`moefuzz.engine.atheris`) lets libFuzzer choose the bytes, in a
    process of its own.

    Raises:
        UsageError: an unknown engine, or ``atheris`` without the atheris package.
        UnknownTargetError: unknown target or kernel.
        WorkerError: no worker could start.
        MoefuzzError: the strategy produced a case the contract rejects (a target bug).
    """
    if config.engine not in ENGINES:
        raise UsageError(f"unknown engine={config.engine!r} (known: {', '.join(ENGINES)})")
    if config.engine == "atheris":
        from moefuzz.engine.atheris import run_atheris_campaign

        return run_atheris_campaign(config, on_status)
    campaign = Campaign(config, on_status)
    try:
        campaign.start()
        campaign.fuzz()
    finally:
        campaign.close()
    return campaign.status
