"""Running cases in disposable worker processes, so that no kernel can take the campaign down.

:class:`Executor` owns one active worker and one warm spare (a new worker pays for importing
torch and triton, seconds; the spare has paid already). When a case crashes the worker or hangs
past its timeout, the executor retires what is left of it (without waiting for it to exit),
promotes the spare, starts a new spare in the background and reports the outcome; the caller,
which still holds the case, saves it. Workers are started, warmed up and retired by a
:class:`~moefuzz.runtime.spawner.Spawner`. An out-of-bounds access that the interpreter's checker
(:mod:`moefuzz.execute.oob`) refused before it happened is a crash too, but it left the worker
intact: that worker is kept, as is one whose launch the driver refused for its configuration.

Cases can be fed ahead (:meth:`Executor.submit`, :meth:`Executor.collect`): the worker finds the
next request in its pipe the moment it replies, so it never waits for the parent. A request is
either a case or the bytes a worker draws its case from (:class:`Request`); the parent keeps every
request until its reply came, so a crash or a hang never loses the input: the request at the head
of the queue is the one that ran, and those behind it go to the next worker.

Shutdown escalates: ask (``None`` on the pipe), then terminate, then kill, each with a deadline
(:mod:`moefuzz.runtime.processes`). The messages on the pipes are in :mod:`moefuzz.runtime.messages`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection, wait

from moefuzz.engine.storm import spares_wanted
from moefuzz.errors import WorkerError
from moefuzz.execute.perturb import Perturbation
from moefuzz.model.case import Case
from moefuzz.model.outcome import Outcome
from moefuzz.model.target import Limits
from moefuzz.runtime import spawner
from moefuzz.runtime.deaths import LOG_READ_LIMIT, classify_death, note_path, oom_kills, read_note
from moefuzz.runtime.messages import Avoid, Request
from moefuzz.runtime.processes import WorkerProcess, readable, worker_context
from moefuzz.runtime.spawner import STARTUP_TIMEOUT_S, Spawner

__all__ = ["STARTUP_TIMEOUT_S", "Executor", "Request", "readable", "worker_context"]


class Executor:
    """Runs cases of one target and kernel in isolated worker processes.

    Args:
        target: the target's name (workers look it up in the registry).
        kernel: the kernel's name, ``None`` for the target's default.
        device: ``auto``, ``cuda`` or ``cpu`` (the Triton interpreter).
        case_timeout_s: seconds one case may run before it is called a hang.
        spare: keep a warm spare worker (off for one-shot replays, to save a process).
        env: environment variables set in the workers on top of the parent's (for example
            ``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` to turn PyTorch's caching allocator off, or
            ``CUDA_VISIBLE_DEVICES`` to pin them to one GPU).
        limits: size limits of the cases workers draw from bytes (default: the device's).
        warm_up: seeds of the cases each worker runs before it reports ready
            (:mod:`moefuzz.runtime.warmup`); default :data:`~moefuzz.runtime.warmup.WARM_UP_DRAWS`
            on a GPU and none on the CPU (the interpreter compiles nothing); given, on any device.

    Attributes:
        replacements: workers replaced after a crash or a hang.
        recovery_seconds: for each replacement, seconds from the failure's report to the end of
            the next case the new worker ran (what a crash costs the campaign).

    Raises:
        WorkerError: from :meth:`start` when a worker cannot start at all (not a finding).
    """

    def __init__(
        self,
        target: str,
        kernel: str | None,
        device: str = "auto",
        case_timeout_s: float = 60.0,
        spare: bool = True,
        env: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        warm_up: Sequence[int] | None = None,
    ) -> None:
        self.target = target
        self.kernel = kernel
        self.device = device
        self.case_timeout_s = case_timeout_s
        self.use_spare = spare
        self._spawner = Spawner(target, kernel, env, limits, warm_up)
        self._active: WorkerProcess | None = None
        self._spares: list[WorkerProcess] = []
        self._replaced_at: deque[float] = deque(maxlen=16)
        self.environment: dict[str, str] = {}
        self.replacements = 0
        self.recovery_seconds: list[float] = []
        self._in_flight: deque[Request] = deque()
        self._head_since = 0.0  # when the request at the head of the queue started running
        self._failed_at: float | None = None  # when the last replacement's failure was reported
        self._promoted_at = 0.0  # when the active worker was promoted (or started) still starting

    @property
    def limits(self) -> Limits | None:
        """Size limits of the cases workers draw from bytes (``None``: the device's)."""
        return self._spawner.limits

    @limits.setter
    def limits(self, limits: Limits | None) -> None:
        self._spawner.limits = limits

    @property
    def warm_up_seeds(self) -> list[int]:
        """The warm-up cases new workers run (:mod:`moefuzz.runtime.warmup`), less those that
        crashed or hung one."""
        return list(self._spawner.warm_up_seeds)

    @property
    def env(self) -> dict[str, str]:
        """Environment variables set in the workers on top of the parent's."""
        return self._spawner.env

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> dict[str, str]:
        """Start the first worker (resolving ``auto`` to a device) and a spare; return the
        worker's environment (versions, device).

        Raises:
            WorkerError: the worker could not start.
        """
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Spawn the first worker without waiting for it (several executors start at once)."""
        if self._active is None:
            self._active = self._spawner.spawn(self.device, first=True)

    def wait_ready(self) -> dict[str, str]:
        """Wait for the worker :meth:`launch` spawned, then spawn the spare; return the
        worker's environment.

        Raises:
            WorkerError: the worker could not start.
        """
        if self._active is None:
            self.launch()
        assert self._active is not None
        self._active = self._spawner.ready(self._active, self.device, first=True)
        self.environment = dict(self._active.environment or {})
        self.device = self.environment.get("device", self.device)  # auto resolved: later workers start on it
        if self.use_spare and not self._spares:
            self._spares.append(self._spawn())
        return self.environment

    def poll_ready(self) -> bool:
        """Whether the worker :meth:`launch` spawned is ready, without waiting (it finishes the
        start, spare and all, the moment the worker has reported).

        Raises:
            WorkerError: the worker could not start.
        """
        worker = self._active
        if worker is None:
            return False
        if worker.environment is None:
            if not readable(worker.conn):
                return False
            self.wait_ready()
        return True

    def close(self) -> None:
        """Stop every worker: ask, then terminate, then kill."""
        for worker in (self._active, *self._spares):
            if worker is not None:
                worker.stop()
        self._spawner.reap(wait=True)
        self._active, self._spares = None, []
        self._in_flight.clear()

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- running ----------------------------------------------------------------------------
    def run(
        self, case: Case, config: Mapping[str, int] | None = None, plan: Sequence[Perturbation] | None = None
    ) -> Outcome:
        """Run one case in the active worker and return its outcome; never raises for what the
        kernel does (crash and hang are outcomes), and leaves a live worker behind.

        Args:
            case: the input.
            config: launch knobs of a single plain run (ignored when ``plan`` is given).
            plan: perturbations to run the case under (see :mod:`moefuzz.execute.perturb`); the hang
                timeout grows with the number of runs.

        Raises:
            WorkerError: cases submitted ahead are still in flight, or no worker could start.
        """
        plan = list(plan) if plan else [Perturbation(dict(config or {}))]
        return self.run_request(Request(plan, case=case))

    def run_request(self, request: Request) -> Outcome:
        """Run one request and wait for its outcome (see :meth:`run`)."""
        if self._in_flight:
            raise WorkerError(f"run() with {len(self._in_flight)} cases in flight: collect them first")
        self.submit(request)
        while True:
            done = self.collect() or self.expire()
            if done:
                return done[0][1]
            wait([self.connection], timeout=max(0.0, self.deadline - time.perf_counter()))

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._in_flight)

    @property
    def connection(self) -> Connection:
        """The active worker's end of the pipe: readable when a reply (or its death) is there."""
        if self._active is None:
            raise WorkerError("executor is not started")
        return self._active.conn

    @property
    def deadline(self) -> float:
        """``time.perf_counter()`` past which the request at the head of the queue is a hang
        (infinity when none is in flight)."""
        if not self._in_flight:
            return float("inf")
        if self._active is not None and self._active.environment is None:  # waiting for a promoted spare
            return self._promoted_at + spawner.STARTUP_TIMEOUT_S
        return self._head_since + self.case_timeout_s * len(self._in_flight[0].plan)

    def submit(self, request: Request) -> None:
        """Send ``request`` to the active worker without waiting; its outcome comes from
        :meth:`collect` (or :meth:`expire`), in the order of submission."""
        worker = self._active
        if worker is None:
            raise WorkerError("executor is not started")
        if not self._in_flight:
            self._head_since = time.perf_counter()
        self._in_flight.append(request)
        worker.send(request.message())  # a worker that is gone: collect() reads its death off the pipe

    def collect(self) -> list[tuple[Request, Outcome]]:
        """The outcomes that have arrived, without waiting, each with its request. A worker that
        died is a ``crash`` of the request at the head of its queue; a crash ends the worker,
        and the requests queued behind it go to the one that replaces it."""
        done: list[tuple[Request, Outcome]] = []
        while self._in_flight and self._finish_promotion():
            worker = self._active
            assert worker is not None
            try:
                if not readable(worker.conn):
                    break
                outcome: Outcome = worker.conn.recv()
            except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
                request = self._in_flight.popleft()
                done.append((request, self._died(worker, time.perf_counter() - self._head_since)))
                self._resend()
                break
            now = time.perf_counter()
            request = self._in_flight.popleft()
            self._head_since = now
            done.append((request, outcome))
            if self._failed_at is not None:
                self.recovery_seconds.append(now - self._failed_at)
                self._failed_at = None
            if outcome.ends_worker:
                self._replace(kill=False)
                self._resend()
                break
        return done

    def expire(self) -> list[tuple[Request, Outcome]]:
        """A ``hang`` outcome for the request at the head of the queue if it ran past
        :attr:`deadline` (its worker is killed; those behind it go to the next worker); else
        nothing."""
        now = time.perf_counter()
        if not self._in_flight or now < self.deadline:
            return []
        if self._active is not None and self._starting(self._active):  # a promoted spare never started
            self._active = self._spawner.restart_hung(self._active, self.device)
            self._promoted_at = now
            self._resend()
            return []
        request = self._in_flight.popleft()
        timeout = self.case_timeout_s * len(request.plan)
        message = f"no answer within {timeout:g} s; worker killed"
        outcome = Outcome("hang", message=message, seconds=now - self._head_since)
        self._replace(kill=True)
        self._resend()
        return [(request, outcome)]

    def _resend(self) -> None:
        """Send the requests still queued (lost with a retired worker) to the active one."""
        pending = list(self._in_flight)
        self._in_flight.clear()
        for request in pending:
            self.submit(request)

    # -- internals --------------------------------------------------------------------------
    def _spawn(self) -> WorkerProcess:
        return self._spawner.spawn(self.device)

    def _replace(self, kill: bool) -> None:
        """Retire the active worker and promote the spare (or a new one)."""
        self._failed_at = time.perf_counter()
        if self._active is not None:
            self._spawner.retire(self._active, kill)  # not waited for: it ends while the next case runs
        # A spare still starting is promoted as it is: its requests wait in its pipe, and the
        # campaign serves its other executors until it reports ready (_finish_promotion).
        self._active = self._next_spare()
        self._promoted_at = self._failed_at
        self.replacements += 1
        self._replaced_at.append(self._failed_at)
        if self.use_spare:  # more warm spares while crashes come fast (a storm)
            wanted = spares_wanted(self._replaced_at, self._failed_at)
            while len(self._spares) < wanted:
                self._spares.append(self._spawn())

    @staticmethod
    def _starting(worker: WorkerProcess) -> bool:
        """Whether ``worker`` has not reported ready (nor failed) yet."""
        return worker.environment is None and not readable(worker.conn)

    def _finish_promotion(self) -> bool:
        """Finish promoting a spare that was still starting when promoted (see :meth:`_replace`),
        without waiting: whether the active worker is ready now. If a warm-up case killed it,
        its requests go to a new worker, which starts in its place.

        Raises:
            WorkerError: it failed to start for another reason.
        """
        worker = self._active
        if worker is None or worker.environment is not None:
            return True
        settled = self._spawner.settle(worker, self.device)
        self._active = settled
        if settled is not worker:
            self._promoted_at = time.perf_counter()
            self._resend()
        if settled.environment is None:
            return False
        self._head_since = time.perf_counter()
        return True

    def avoid(self, corners: frozenset[tuple[int, ...]]) -> None:
        """Have every worker, now and later, skip drawn cases in the regions of these corners
        (answered ``avoided``, see :mod:`moefuzz.engine.storm`)."""
        self._spawner.avoid = frozenset(corners)
        for worker in (self._active, *self._spares):
            if worker is not None:
                worker.send(Avoid(self._spawner.avoid))

    @property
    def spares(self) -> int:
        """Warm (or warming) spare workers now."""
        return len(self._spares)

    def _next_spare(self) -> WorkerProcess:
        """The spare to promote, without waiting: the first ready one (a spare a warm-up case
        killed is replaced by a new one meanwhile), else the oldest still starting, else a new
        one."""
        self._spares = [self._spawner.settle(spare, self.device) for spare in self._spares]
        for spare in self._spares:
            if spare.environment is not None:
                self._spares.remove(spare)
                return spare
        return self._spares.pop(0) if self._spares else self._spawn()

    def _died(self, worker: WorkerProcess, seconds: float) -> Outcome:
        """The outcome of the request a worker died on: labelled by
        :func:`~moefuzz.runtime.deaths.classify_death` (its first CUDA error, an escaping
        exception, a host OOM, else its signal)."""
        worker.process.join(timeout=10)
        log = worker.log_tail(LOG_READ_LIMIT)
        note = read_note(note_path(worker.log_path))
        kind, detail, message = classify_death(worker.process.exitcode, log, note, worker.oom_kills, oom_kills())
        self._replace(kill=True)
        return Outcome(kind, detail, message, seconds=seconds, log_tail=log[-4000:])
