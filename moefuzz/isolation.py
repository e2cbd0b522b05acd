"""Running cases in disposable worker processes, so that no kernel can take the campaign down.

:class:`Executor` owns one active worker and one warm spare (a new worker pays for importing
torch and triton, seconds; the spare has paid already). When a case crashes the worker or hangs
past its timeout, the executor kills what is left of it, promotes the spare, starts a new spare
in the background and reports the outcome; the caller, which still holds the case, saves it.
An out-of-bounds access that the interpreter's checker (:mod:`moefuzz.oob`) refused before it
happened is a crash too, but it left the worker intact: that worker is kept.

Shutdown escalates: ask (``None`` on the pipe), then terminate, then kill, each with a deadline.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from moefuzz.case import Case
from moefuzz.errors import WorkerError
from moefuzz.outcome import Outcome, classify_crash_text
from moefuzz.perturb import Perturbation
from moefuzz.worker import worker_main

#: Seconds a new worker may take to import torch and triton and report ready.
STARTUP_TIMEOUT_S = 180.0


#: Modules the fork server imports once, so that each worker forks with them loaded instead of
#: importing them (seconds for torch). Triton is not among them: a worker must set
#: ``TRITON_INTERPRET`` before triton is imported. Nothing here initialises CUDA, so forking
#: from the server is safe.
PRELOAD = ("torch", "numpy", "moefuzz.worker", "moefuzz.launch")


def _worker_context() -> Any:
    """A ``forkserver`` context with :data:`PRELOAD` where the platform has one, else ``spawn``.

    Never plain ``fork``: a parent that has touched CUDA cannot fork, and the fork server is a
    clean process that never has.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(PRELOAD))
        return context
    return multiprocessing.get_context("spawn")


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    log_path: Path
    environment: dict[str, str] | None = None

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


class Executor:
    """Runs cases of one target and kernel in isolated worker processes.

    Args:
        target: the target's name (workers look it up in the registry).
        kernel: the kernel's name, ``None`` for the target's default.
        device: ``auto``, ``cuda`` or ``cpu`` (the Triton interpreter).
        case_timeout_s: seconds one case may run before it is called a hang.
        spare: keep a warm spare worker (off for one-shot replays, to save a process).
        env: environment variables set in the workers on top of the parent's (for example
            ``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` to turn PyTorch's caching allocator off).

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
    ) -> None:
        self.target = target
        self.kernel = kernel
        self.device = device
        self.case_timeout_s = case_timeout_s
        self.use_spare = spare
        self.env = dict(env or {})
        self._context = _worker_context()
        self._log_dir = Path(tempfile.mkdtemp(prefix="moefuzz-workers-"))
        self._serial = 0
        self._active: _Worker | None = None
        self._spare: _Worker | None = None
        self.environment: dict[str, str] = {}
        self.replacements = 0
        self.replacement_seconds: list[float] = []

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> dict[str, str]:
        """Start the first worker (resolving ``auto`` to a device) and a spare; return the
        worker's environment (versions, device)."""
        self._active = self._ready(self._spawn())
        self.environment = dict(self._active.environment or {})
        self.device = self.environment.get("device", self.device)
        if self.use_spare:
            self._spare = self._spawn()
        return self.environment

    def close(self) -> None:
        """Stop every worker: ask, then terminate, then kill."""
        for worker in (self._active, self._spare):
            if worker is not None:
                _stop(worker)
        self._active = self._spare = None

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
            plan: perturbations to run the case under (see :mod:`moefuzz.perturb`); the hang
                timeout grows with the number of runs.
        """
        worker = self._active
        if worker is None:
            raise WorkerError("executor is not started")
        plan = list(plan) if plan else [Perturbation(dict(config or {}))]
        started = time.perf_counter()
        try:
            worker.conn.send((dict(case.arrays), dict(case.params), [p.to_json() for p in plan]))
            if worker.conn.poll(self.case_timeout_s * len(plan)):
                outcome: Outcome = worker.conn.recv()
                if outcome.ends_worker:
                    self._replace(kill=False)
                return outcome
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            return self._died(worker, time.perf_counter() - started)
        self._replace(kill=True)
        return Outcome(
            "hang",
            message=f"no answer within {self.case_timeout_s * len(plan):g} s; worker killed",
            seconds=time.perf_counter() - started,
        )

    # -- internals --------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        self._serial += 1
        log_path = self._log_dir / f"worker-{self._serial}.log"
        parent_conn, child_conn = self._context.Pipe()
        device = self.environment.get("device", self.device)
        process = self._context.Process(
            target=worker_main,
            args=(child_conn, self.target, self.kernel, device, str(log_path), {**os.environ, **self.env}),
            daemon=True,
            name=f"moefuzz-worker-{self._serial}",
        )
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn, log_path)

    def _ready(self, worker: _Worker) -> _Worker:
        if worker.environment is not None:
            return worker
        if not worker.conn.poll(STARTUP_TIMEOUT_S):
            _stop(worker)
            raise WorkerError(f"worker for target={self.target!r} did not start in {STARTUP_TIMEOUT_S:g} s")
        try:
            status, payload = worker.conn.recv()
        except EOFError:
            tail = worker.log_tail().strip().splitlines()
            last = tail[-1] if tail else "?"
            raise WorkerError(f"worker for target={self.target!r} died while starting: {last}") from None
        if status != "ready":
            _stop(worker)
            raise WorkerError(f"worker for target={self.target!r} kernel={self.kernel!r} failed to start: {payload}")
        worker.environment = payload
        return worker

    def _replace(self, kill: bool) -> None:
        """Retire the active worker and promote the spare (or a new one)."""
        started = time.perf_counter()
        old = self._active
        if old is not None:
            _stop(old, kill_now=kill)
        self._active = self._ready(self._spare if self._spare is not None else self._spawn())
        self._spare = self._spawn() if self.use_spare else None
        self.replacements += 1
        self.replacement_seconds.append(time.perf_counter() - started)

    def _died(self, worker: _Worker, seconds: float) -> Outcome:
        worker.process.join(timeout=10)
        code = worker.process.exitcode
        tail = worker.log_tail()
        if code is not None and code < 0:
            detail = signal.Signals(-code).name
            message = f"worker killed by {detail}"
        else:
            detail = classify_crash_text(tail) if tail.strip() else f"exit-{code}"
            message = f"worker exited with status {code}"
        last = [line for line in tail.strip().splitlines() if line.strip()]
        if last:
            message += f": {last[-1][:300]}"
        self._replace(kill=True)
        return Outcome("crash", detail, message, seconds=seconds, log_tail=tail)


def _stop(worker: _Worker, kill_now: bool = False) -> None:
    process = worker.process
    if not kill_now and process.is_alive():
        try:
            worker.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        process.join(timeout=2)
    if process.is_alive():
        process.terminate()
        process.join(timeout=2)
    if process.is_alive():
        process.kill()
        process.join(timeout=2)
    worker.conn.close()
    try:
        os.unlink(worker.log_path)
    except OSError:
        pass
