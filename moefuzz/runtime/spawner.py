"""Starting, readying and retiring the workers of one executor
(:class:`moefuzz.runtime.isolation.Executor`).

A new worker is forked from the fork server (:func:`~moefuzz.runtime.processes.worker_context`)
with the executor's target, kernel, environment and limits, and the warm-up cases it runs before
it reports ready (:mod:`moefuzz.runtime.warmup`). A warm-up case that crashes or hangs a worker
is left out of every later one. A retired worker is asked to end (or killed) without waiting
for it: a process with a CUDA context takes tens of milliseconds to exit, which a campaign
replacing a crashed worker should not wait for; it is reaped at the next retirement, or when
the executor closes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from moefuzz.errors import WorkerError
from moefuzz.model.target import Limits
from moefuzz.runtime.deaths import note_path, oom_kills
from moefuzz.runtime.messages import Avoid
from moefuzz.runtime.processes import (
    STOP_DEADLINE_S,
    WorkerProcess,
    await_ready,
    limits_json,
    readable,
    track,
    worker_context,
)
from moefuzz.runtime.warmup import WARM_UP_DRAWS, crashed_warm_up
from moefuzz.runtime.worker import worker_main

__all__ = ["STARTUP_TIMEOUT_S", "Spawner"]

#: Seconds a new worker may take to import torch and triton, run its warm-up and report ready.
STARTUP_TIMEOUT_S = 180.0


class Spawner:
    """The workers of one target and kernel: :meth:`spawn`, :meth:`ready`, :meth:`retire`.

    Args:
        target: the target's name (workers look it up in the registry).
        kernel: the kernel's name, ``None`` for the target's default.
        env: environment variables set in the workers on top of the parent's.
        limits: size limits of the cases workers draw from bytes (``None``: the device's).
        warm_up: seeds of the warm-up cases (:mod:`moefuzz.runtime.warmup`); ``None`` for
            :data:`~moefuzz.runtime.warmup.WARM_UP_DRAWS` on a GPU and none on the CPU; given,
            they run on any device.

    Attributes:
        warm_up_seeds: the seeds later workers run, less those whose case crashed a worker.
        avoid: the corners of the regions every new worker is told to skip (:class:`Avoid`).
    """

    def __init__(
        self,
        target: str,
        kernel: str | None,
        env: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        warm_up: Sequence[int] | None = None,
    ) -> None:
        self.target, self.kernel = target, kernel
        self.env = dict(env or {})
        self.limits = limits
        self.warm_up_seeds = list(WARM_UP_DRAWS if warm_up is None else warm_up)
        self._warm_up_on_cpu = warm_up is not None
        self.avoid: frozenset[tuple[int, ...]] = frozenset()
        self._context = worker_context()
        self._log_dir = Path(tempfile.mkdtemp(prefix="moefuzz-workers-"))
        self._serial = 0
        self._retiring: list[tuple[WorkerProcess, float]] = []
        self._name = f"worker for target={target!r} kernel={kernel!r}"

    def spawn(self, device: str, first: bool = False) -> WorkerProcess:
        """Start a worker on ``device`` (``auto``, ``cuda`` or ``cpu``) without waiting for it.
        The ``first`` worker of a campaign runs only the first warm-up case: its first cases
        pay for the first launches anyway, and a warm-up case that crashes it would cost the
        campaign a start and hide a finding."""
        self._serial += 1
        log_path = self._log_dir / f"worker-{self._serial}.log"
        parent_conn, child_conn = self._context.Pipe()
        seeds = self.warm_up_seeds[:1] if first else self.warm_up_seeds
        process = self._context.Process(
            target=worker_main,
            args=(
                child_conn,
                self.target,
                self.kernel,
                device,
                str(log_path),
                {**os.environ, **self.env},
                limits_json(self.limits),
                tuple(seeds),  # the worker leaves them out on the CPU unless told otherwise
                self._warm_up_on_cpu,
            ),
            daemon=True,
            name=f"moefuzz-worker-{self._serial}",
        )
        process.start()
        track(process)
        child_conn.close()
        worker = WorkerProcess(process, parent_conn, log_path, oom_kills=oom_kills())
        if self.avoid:
            worker.send(Avoid(self.avoid))
        return worker

    def ready(self, worker: WorkerProcess, device: str, first: bool = False) -> WorkerProcess:
        """``worker`` once it reported ready; if a warm-up case crashed or hung it, a new worker
        on ``device`` (``first``: as :meth:`spawn`'s) without that case, as every later one
        will be, and so on.

        Raises:
            WorkerError: a worker could not start for another reason.
        """
        while (ready := self._await(worker, STARTUP_TIMEOUT_S)) is None:
            worker = self.spawn(device, first)
        return ready

    def settle(self, worker: WorkerProcess, device: str) -> WorkerProcess:
        """Without waiting: ``worker`` made ready if its report is in; a new worker on
        ``device``, still starting, in its place if a warm-up case killed it (that case left
        out); ``worker`` as it is while it is still starting.

        Raises:
            WorkerError: it failed to start for another reason.
        """
        if worker.environment is not None or not readable(worker.conn):
            return worker
        return self._await(worker, 0.0) or self.spawn(device)

    def restart_hung(self, worker: WorkerProcess, device: str) -> WorkerProcess:
        """A new worker on ``device`` in place of ``worker``, which did not report ready within
        :data:`STARTUP_TIMEOUT_S` because a warm-up case hung it (that case is left out from now
        on); ``worker`` is killed.

        Raises:
            WorkerError: it was not running a warm-up case (it did not start at all).
        """
        if not self._warm_up_failed(worker):
            raise WorkerError(f"{self._name} did not start in {STARTUP_TIMEOUT_S:g} s")
        return self.spawn(device)

    def _await(self, worker: WorkerProcess, timeout_s: float) -> WorkerProcess | None:
        """``worker`` once ready within ``timeout_s``; ``None`` if a warm-up case killed it.

        Raises:
            WorkerError: it failed to start for another reason.
        """
        try:
            return await_ready(worker, self._name, timeout_s)
        except WorkerError:
            if not self._warm_up_failed(worker):
                raise
        return None

    def _warm_up_failed(self, worker: WorkerProcess) -> bool:
        """Whether a warm-up case killed or hung ``worker``, which did not start (its note says
        which; that case is then left out of later workers, and may be out already: another
        worker, started with it, failed on it first). ``worker`` is stopped either way."""
        seed = crashed_warm_up(note_path(worker.log_path))
        worker.stop(kill_now=True)
        if seed in self.warm_up_seeds:
            self.warm_up_seeds.remove(seed)
        return seed is not None

    def retire(self, worker: WorkerProcess, kill: bool) -> None:
        """Ask ``worker`` to end (``kill``: SIGKILL it, for a hang or a death) without waiting for
        it; reap those retired before that have ended."""
        if kill:
            worker.process.kill()
        else:
            worker.send(None)
        self._retiring.append((worker, time.perf_counter()))
        self.reap()

    def reap(self, wait: bool = False) -> None:
        """Finish stopping the retired workers that have ended (and those that outlived their
        deadline: terminated, then killed); with ``wait``, every one."""
        now = time.perf_counter()
        left = []
        for worker, since in self._retiring:
            if wait:
                worker.process.join(max(0.0, since + STOP_DEADLINE_S - now))
            if wait or not worker.process.is_alive() or now - since > STOP_DEADLINE_S:
                worker.stop(kill_now=True)
            else:
                left.append((worker, since))
        self._retiring = left
