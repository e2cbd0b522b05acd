"""Starting and stopping the campaign's child processes, in one place.

Workers (:mod:`moefuzz.runtime.worker`) and generators (:mod:`moefuzz.runtime.generators`) are
forked from a fork server (:func:`worker_context`) and begin by taking the parent's environment
(:func:`reset_environment`). Every child is stopped the same way (:func:`stop_process`): ask it
(``None`` on its pipe), then terminate, then kill, each with a deadline.

No child outlives the campaign: each begins with :func:`child_setup` (a process group of its
own, which :func:`kill_children` kills with whatever the child started; on Linux the kernel
sends it SIGKILL when its parent dies, ``PR_SET_PDEATHSIG``: the fork server it was forked from
ends when the campaign's process does; and it ignores SIGINT, so that a Ctrl-C in the terminal
reaches the campaign, which stops its children itself, and never a worker mid-case).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import multiprocessing
import os
import queue
import select
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from moefuzz.model.target import Limits

#: Modules the fork server imports once, so that each worker forks with them loaded instead of
#: importing them (seconds for torch). Triton is not among them: a worker must set
#: ``TRITON_INTERPRET`` before triton is imported. Nothing here initialises CUDA, so forking
#: from the server is safe.
PRELOAD = ("torch", "numpy", "moefuzz.runtime.worker", "moefuzz.execute.launch")

#: Seconds each step of :func:`stop_process` waits for the process to end.
STOP_DEADLINE_S = 2.0


def worker_context() -> Any:
    """A ``forkserver`` context with :data:`PRELOAD` where the platform has one, else ``spawn``.

    Never plain ``fork``: a parent that has touched CUDA cannot fork, and the fork server is a
    clean process that never has.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(PRELOAD))
        return context
    return multiprocessing.get_context("spawn")


def reset_environment(environ: Mapping[str, str]) -> None:
    """Make this process's ``os.environ`` exactly ``environ`` (the parent's when it asked for the
    process): a fork server's own environment is a snapshot from when it started, which would
    miss a ``MOEFUZZ_TARGETS`` set since."""
    for name in set(os.environ) - set(environ):
        del os.environ[name]
    os.environ.update(environ)


#: ``prctl`` option that asks the kernel for a signal when the parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1

#: Pids of the children started by this process and not yet stopped: each leads a process group.
_CHILDREN: set[int] = set()


def child_setup() -> None:
    """First thing a worker or generator does: lead a process group of its own, die with its
    parent (``PR_SET_PDEATHSIG`` with SIGKILL, on Linux), ignore SIGINT. Never raises."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() == 1:  # the parent died before the request: nobody will stop this one
            os._exit(1)


def track(process: BaseProcess) -> None:
    """Remember a started child, for :func:`kill_children`."""
    if process.pid is not None:
        _CHILDREN.add(process.pid)


def kill_children() -> None:
    """SIGKILL the process group of every child started here and not yet stopped (what a
    campaign interrupted on its way out leaves); never raises."""
    for pid in list(_CHILDREN):
        _kill_group(pid)
    _CHILDREN.clear()


def _kill_group(pid: int) -> None:
    try:
        if os.getpgid(pid) == pid:  # it leads its group: the group goes, grandchildren included
            os.killpg(pid, signal.SIGKILL)
            return
        os.kill(pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass


def stop_process(
    process: BaseProcess,
    ask: Connection | None = None,
    deadline_s: float = STOP_DEADLINE_S,
    kill_now: bool = False,
) -> None:
    """Stop ``process``: ask it through ``ask`` (``None`` on the pipe; skipped without a pipe or
    with ``kill_now``), then terminate, then kill, each step waiting up to ``deadline_s``
    seconds for it to end. Never raises for a process that is gone already."""
    if ask is not None and not kill_now and process.is_alive():
        try:
            ask.send(None)
        except (BrokenPipeError, ConnectionResetError, OSError, ValueError):
            pass
        process.join(timeout=deadline_s)
    if process.is_alive():
        process.terminate()
        process.join(timeout=deadline_s)
    if process.is_alive():
        process.kill()
        process.join(timeout=deadline_s)
    if process.pid is not None and process.pid in _CHILDREN:
        _CHILDREN.discard(process.pid)
        if process.exitcode is not None:  # reaped: what is left of its group (a compiler, a tool) goes too
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)


def readable(conn: Connection) -> bool:
    """Whether a message (or the end of the pipe) waits on ``conn``, without waiting:
    ``conn.poll()`` with one ``select`` call instead of a new selector each time (several times
    a case in a campaign's loop)."""
    try:
        return bool(select.select([conn.fileno()], [], [], 0)[0])
    except (OSError, ValueError):  # closed: recv() says how
        return True


def limits_json(limits: Limits | None) -> dict[str, int] | None:
    """``limits`` as the plain dict a worker or generator process is started with (``None`` stays
    ``None``: the process learns them later)."""
    return None if limits is None else dataclasses.asdict(limits)


#: What ends a worker's sender thread (see :meth:`WorkerProcess.send`).
_END_OF_SENDS = object()


@dataclass
class WorkerProcess:
    """The parent's handle of one worker process: the process, its pipe, its log file, the
    environment it reported once ready (``None`` until then), and the host's OOM kills when it
    started (:func:`moefuzz.runtime.deaths.oom_kills`)."""

    process: BaseProcess
    conn: Connection
    log_path: Path
    environment: dict[str, str] | None = None
    oom_kills: int | None = None
    _outbox: queue.SimpleQueue[Any] | None = None
    _sender: threading.Thread | None = None

    def send(self, message: Any) -> None:
        """Queue ``message`` for the worker without waiting. A thread of the parent pickles and
        writes it: a write larger than the pipe holds waits until the worker reads it, and the
        parent's loop must go on serving generators and other workers meanwhile. A worker that is
        gone ends the thread (the parent reads its death off the pipe)."""
        if self._outbox is None:
            self._outbox = queue.SimpleQueue()
            self._sender = threading.Thread(target=self._send_all, name="moefuzz-sender", daemon=True)
            self._sender.start()
        self._outbox.put(message)

    def _send_all(self) -> None:
        assert self._outbox is not None
        while (message := self._outbox.get()) is not _END_OF_SENDS:
            try:
                self.conn.send(message)
            except (BrokenPipeError, ConnectionResetError, OSError, ValueError):
                return

    def end_sends(self, timeout: float) -> bool:
        """End the sender thread once its queue is written (or the worker gone); whether it
        ended within ``timeout`` seconds (only then may the pipe be closed: a thread still
        writing to a closed descriptor could write to whatever reuses its number)."""
        if self._sender is None or self._outbox is None:
            return True
        self._outbox.put(_END_OF_SENDS)
        self._sender.join(timeout)
        return not self._sender.is_alive()

    def log_tail(self, limit: int = 4000) -> str:
        """The last ``limit`` bytes of the worker's stderr log, as text (empty when unreadable)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, os.fstat(log.fileno()).st_size - limit))
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, kill_now: bool = False) -> None:
        """Stop the worker (:func:`stop_process`; the request to end goes through the sender
        queue, behind what is queued), close the pipe and remove the log."""
        process = self.process
        if not kill_now and process.is_alive():
            self.send(None)
            process.join(timeout=STOP_DEADLINE_S)
        stop_process(process)
        if self.end_sends(timeout=STOP_DEADLINE_S):  # the worker is dead: a write still under way fails now
            self.conn.close()
        for path in (self.log_path, Path(f"{self.log_path}.note")):
            with contextlib.suppress(OSError):
                os.unlink(path)


def await_ready(worker: WorkerProcess, name: str, timeout_s: float) -> WorkerProcess:
    """``worker`` once it has reported :class:`~moefuzz.runtime.messages.Ready` (its
    environment recorded), waiting at most ``timeout_s`` seconds; ``name`` names it in errors.
    A worker that did not start is left to the caller to stop (its note still there to read).

    Raises:
        WorkerError: it did not start in time, died while starting, or reported
            :class:`~moefuzz.runtime.messages.Failed` (its reason quoted).
    """
    from moefuzz.errors import WorkerError
    from moefuzz.runtime.messages import Ready

    if worker.environment is not None:
        return worker
    if not worker.conn.poll(timeout_s):
        raise WorkerError(f"{name} did not start in {timeout_s:g} s")
    try:
        message = worker.conn.recv()
    except (EOFError, OSError):  # OSError: a reset pipe, the worker gone mid-write
        tail = worker.log_tail().strip().splitlines()
        raise WorkerError(f"{name} died while starting: {tail[-1] if tail else '?'}") from None
    if not isinstance(message, Ready):
        raise WorkerError(f"{name} failed to start: {message.reason}")
    worker.environment = dict(message.environment or {})
    return worker
