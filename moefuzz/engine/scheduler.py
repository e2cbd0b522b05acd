"""The campaign loop: one target and kernel, cases run in workers until the budget is spent.

An engine draws cases; :class:`Campaign` does the rest, the same for every engine: check the
contract's preconditions, run the case in the executor's worker, and hand each failing outcome to
:class:`~moefuzz.engine.triage.Triage` (saved at once, shrunk, saved again; a failure the corpus
already holds is counted, not saved twice). The campaign never stops at a finding.

The default engine (:meth:`Campaign.fuzz`) does not draw cases in the parent. It hands the bytes
of the next cases (:func:`moefuzz.engine.generate.byte_stream`) to generator processes that never
touch the device (:mod:`moefuzz.runtime.generators`) and passes what they draw to the workers, a
few cases ahead of each (``workers``, spread over ``devices``); without generators (the
interpreter's default) each worker draws its own cases from the bytes. The parent holds every
request until its reply came (and can draw the same case from the same bytes), so a crash loses
nothing; a failing case comes back with its outcome.

The scheduling policy is in small pure functions: :func:`worker_count`, :func:`generator_count`,
:func:`pipeline_depth`, :func:`wait_timeout`, :func:`plan_seed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing.connection import wait

from moefuzz.engine.config import CampaignConfig, CampaignStatus
from moefuzz.engine.feed import Feed, Waiter
from moefuzz.engine.generate import CaseSource, byte_stream
from moefuzz.engine.sizing import generator_count, likely_device, worker_count
from moefuzz.engine.storm import CrashRegions, storm_signature
from moefuzz.engine.triage import Triage, check_outcome
from moefuzz.errors import CaseError, HarnessError, MoefuzzError, UsageError
from moefuzz.execute.cuda_build import prebuild_kernel
from moefuzz.execute.perturb import Perturbation, plan_perturbations
from moefuzz.model.case import Case
from moefuzz.model.domain import coverage_of
from moefuzz.model.outcome import Outcome
from moefuzz.model.registry import get_target
from moefuzz.model.target import Limits, default_limits
from moefuzz.runtime import stopping
from moefuzz.runtime.generators import GeneratorPool
from moefuzz.runtime.isolation import Executor, Request, worker_context

#: Requests each worker holds ahead: with two, the next case is in its pipe when it replies.
PIPELINE_DEPTH = 2
#: ... when generators feed it: a case then takes a worker less time than the parent may take
#: to answer a reply now and then (it also serves the generators).
PIPELINE_DEPTH_DRAWN = 4
#: Longest seconds the loop waits before it looks at the clock and the workers again.
MAX_WAIT_S = 1.0
#: Seconds a campaign asked to stop (SIGINT, SIGTERM) waits for the cases in flight.
STOP_DRAIN_S = 2.0


def pipeline_depth(generated: bool) -> int:
    """Requests each worker holds ahead: :data:`PIPELINE_DEPTH_DRAWN` when generators feed the
    workers, else :data:`PIPELINE_DEPTH`."""
    return PIPELINE_DEPTH_DRAWN if generated else PIPELINE_DEPTH


def wait_timeout(now: float, budget_left_s: float, deadlines: list[float]) -> float:
    """Seconds the loop may wait at ``now`` (``time.perf_counter()``): until the budget ends
    (``budget_left_s`` from now), a worker's hang deadline, or :data:`MAX_WAIT_S`, whichever
    comes first; never negative."""
    until = min([now + budget_left_s, now + MAX_WAIT_S, *deadlines])
    return max(0.0, until - now)


def plan_seed(seed: int, index: int) -> int:
    """The seed of the perturbation plan of case ``index`` of a campaign seeded ``seed``."""
    return seed * 1_000_003 + index


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
        if config.generators is not None and config.generators < 0:
            raise UsageError(f"generators={config.generators!r} must not be negative")
        self._generators: GeneratorPool | None = None
        self.executor = self._executor(0)
        self.executors = [self.executor]
        self._starting: list[Executor] = []
        self._source: CaseSource | None = None
        self.limits = config.limits
        self.environment: dict[str, str] = {}
        self.deadline = float("inf")
        self.crashers = CrashRegions()
        self.triage = Triage(config, self.target, self.kernel.name, self.executor, self.status, self._notify)

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
        self.status.build = prebuild_kernel(self.target.name, self.kernel, config.device)  # CUDA source, once
        self.executor.launch()
        # Generators import the target while the first worker starts (the fork server, torch, the
        # CUDA context), on the device the parent expects; they learn the limits once it is ready.
        early = self._generator_count(likely_device(config.device))
        kernel = self.kernel.name
        pool = GeneratorPool(worker_context(), self.target.name, None, early, kernel=kernel) if early else None
        try:
            self.environment = self.executor.wait_ready()
            self.triage.environment = self.environment
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
        generators = self._generator_count(device)
        count = worker_count(config, device, generators)
        for number in range(1, count):
            executor = self._executor(number)
            executor.device = device
            executor.case_timeout_s = self.executor.case_timeout_s
            executor.launch()
            self._starting.append(executor)
        self.status.workers = 1
        if pool is not None and len(pool) != generators:  # the device was not the one expected
            pool.close()
            pool = None
        if pool is not None:
            pool.configure(self.limits)
        elif generators:
            pool = GeneratorPool(worker_context(), self.target.name, self.limits, generators, kernel=self.kernel.name)
        self._generators = pool
        self.status.generators = generators
        self.triage.load_known()
        self.status.fuzzing_since = time.monotonic()
        self.deadline = self.status.fuzzing_since + config.duration_s
        return self.limits

    def _generator_count(self, device: str) -> int:
        return generator_count(self.config, device)

    @property
    def expired(self) -> bool:
        """True once the fuzzing budget is spent, ``max_findings`` new findings are in, or a
        signal asked the campaign to stop (:func:`moefuzz.runtime.stopping.requested`)."""
        limit = self.config.max_findings
        return (
            time.monotonic() >= self.deadline
            or (limit is not None and len(self.status.findings) >= limit)
            or stopping.requested() is not None
        )

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
        self._check(outcome, case)
        self._count(outcome)
        self._settle(case, plan, self._plan_seed(index), outcome, (self.status.elapsed, self.status.execs))
        self._notify(self.status)

    def fuzz(self) -> None:
        """The default engine: until :attr:`expired`, keep every worker :data:`PIPELINE_DEPTH`
        cases ahead (drawn by the generators from :func:`~moefuzz.engine.generate.byte_stream`, or bytes
        the worker draws from itself), count what comes back, and save and shrink each new
        failure (after the cases in flight have come back).

        A SIGINT or SIGTERM (:mod:`moefuzz.runtime.stopping`) ends the loop like a spent budget;
        the cases in flight get :data:`STOP_DRAIN_S` seconds to come back, and the failures among
        them are saved unshrunk.

        Raises:
            HarnessError: the target's own code raised, or its strategy produced a case the
                contract rejects (a target bug).
            WorkerError: a worker could not start, or generators could not start or kept dying.
        """
        with stopping.graceful():
            self._fuzz()

    def _fuzz(self) -> None:
        feed = Feed(byte_stream(self.config.seed), self._generators, self._plan)
        generators = self._generators
        depth = pipeline_depth(generators is not None)
        waiter = Waiter()
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
                timeout = wait_timeout(now, self.deadline - time.monotonic(), [e.deadline for e in self.executors])
                ready = [e.connection for e in self.executors] + (generators.connections if generators else [])
                waiter.wait(ready, timeout=timeout)
                failures = self._collect()
                if failures:
                    failures += self._drain()
                    for request, outcome, when in failures:
                        self._settle_request(request, outcome, when)
                if generators is not None:
                    self.status.generator_restarts = generators.restarts
                self._notify(self.status)
        finally:
            waiter.close()
        stopped = stopping.requested()
        self.status.interrupted = stopping.stopped_by()
        for request, outcome, when in self._drain(STOP_DRAIN_S if stopped is not None else None):
            self._settle_request(request, outcome, when)

    # -- the default engine's bookkeeping ---------------------------------------------------
    def _plan_seed(self, index: int) -> int:
        return plan_seed(self.config.seed, index)

    def _plan(self, index: int) -> list[Perturbation]:
        return plan_perturbations(self.target.launch_knobs, self.config.perturb_runs, self._plan_seed(index))

    def _invalid(self, message: str) -> MoefuzzError:
        return HarnessError(f"target {self.target.name!r} generated a case its contract rejects: {message}")

    def _check(self, outcome: Outcome, case: Case | None) -> None:
        check_outcome(self.target, self.status, outcome, case)

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
                if outcome.kind == "avoided":
                    self.status.skipped_known_crashers += 1
                    continue
                self._check(outcome, outcome.case if outcome.case is not None else request.case)
                self._count(outcome)
                if outcome.size is not None and self.crashers.ran(outcome.size, storm_signature(outcome)):
                    self._broadcast_skipped()
                if outcome.failed:
                    failures.append((request, outcome, (round(self.status.elapsed, 3), self.status.execs)))
        return failures

    def _drain(self, limit_s: float | None = None) -> list[tuple[Request, Outcome, tuple[float, int]]]:
        """Wait for every case in flight (at most ``limit_s`` seconds: those still out then are
        left to :meth:`close`); return the failures among them."""
        failures = []
        give_up = float("inf") if limit_s is None else time.perf_counter() + limit_s
        while any(e.in_flight for e in self.executors) and time.perf_counter() < give_up:
            busy = [e for e in self.executors if e.in_flight]
            until = min([give_up, *(e.deadline for e in busy)])
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
        signature = storm_signature(outcome)
        if signature:  # a crash or hang that cost a worker: score and place its region
            mine = [f.case for _, f in self.status.findings if f.signature == signature]
            shrunk = self.target.size(mine[-1]) if mine else None
            size = outcome.size if outcome.size is not None else self.target.size(case)  # a death sends none
            if self.crashers.crashed(signature, size, shrunk, scored=outcome.size is not None):
                self._broadcast_skipped()

    def _broadcast_skipped(self) -> None:
        """Tell every executor the regions of known crashers whose cases its workers skip now."""
        for executor in self.executors + self._starting:
            executor.avoid(self.crashers.skipped)

    def _settle(
        self,
        case: Case,
        plan: list[Perturbation],
        plan_seed: int,
        outcome: Outcome,
        when: tuple[float, int],
        index: int | None = None,
    ) -> None:
        """Hand a failure to :meth:`Triage.settle <moefuzz.engine.triage.Triage.settle>`, then
        count the workers it replaced."""
        if not outcome.failed:
            return
        self.triage.settle(case, plan, plan_seed, outcome, when, index)
        self._sync_restarts()

    def close(self) -> None:
        """Stop the workers and the generators (the end of :attr:`CampaignStatus.execs_per_s`)."""
        if self.status.fuzzing_since is not None and self.status.fuzzing_until is None:
            self.status.fuzzing_until = time.monotonic()
        for executor in self.executors + self._starting:
            executor.close()
        if self._generators is not None:
            self._generators.close()
            self._generators = None
