"""Drawing cases from bytes in CPU-only processes, ahead of the workers that run them.

On a GPU one or two workers a GPU run the cases (:func:`moefuzz.engine.campaign.auto_workers`), but
drawing a case through Hypothesis costs more than running it (~2.1 ms against ~0.4 ms of launches
for a three_step_sort case of T <= 1024 on an H200). So the campaign
hands the bytes of the next cases to drawer processes, which
never touch the device: each turns bytes into a case through the target's strategy
(:meth:`moefuzz.engine.generate.CaseSource.from_bytes`), checks it against the contract, runs the
target's oracle on it (plain torch on the CPU, where a worker would run it too) and sends both
back; the parent passes them to a worker, which then only launches the kernel and compares. The
oracle costs about half of a worker's time a case otherwise (0.37 ms of ~0.7 ms for a
three_step_sort case of T <= 1024), and it runs here beside the kernel instead of before it.
The parent keeps every drawn case until its worker's reply, so nothing is lost if the worker dies.

Protocol: the parent sends ``(index, buffer)``; the drawer replies ``(index, error, payload)``:
``payload`` is the pickle of ``(arrays, params, expected, coverage)`` (``coverage``: the points
of the target's domain the case hits, a bit mask the worker passes on in its outcome), which the parent forwards to a
worker as it is (:attr:`moefuzz.runtime.isolation.Request.payload`), and ``None`` when the strategy
rejected the bytes (``error`` empty) or the drawn case broke the contract's preconditions
(``error`` says how); ``expected`` is the oracle's outputs, ``None`` when the oracle raised (the
worker then runs it again and reports the ``oracle-error``). ``None`` ends a drawer.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from moefuzz.errors import WorkerError
from moefuzz.model.case import Case

#: Buffers each drawer holds ahead: enough that it is never idle between two replies.
DRAW_AHEAD = 4


@dataclass(frozen=True)
class Drawn:
    """A drawer's answer for the buffer at ``index`` of the campaign's byte stream.

    Attributes:
        index, buffer: which bytes.
        payload: the pickled case with its oracle outputs (see the module doc), ``None`` when
            rejected or invalid.
        error: why the drawn case broke the contract (empty: fine, or rejected).
    """

    index: int
    buffer: bytes
    payload: bytes | None
    error: str = ""

    @property
    def case(self) -> Case | None:
        """The case the bytes encode (unpickled from the payload), ``None`` when rejected or
        invalid."""
        return None if self.payload is None else prepared_case(self.payload)[0]

    @property
    def expected(self) -> dict[str, np.ndarray] | None:
        """The oracle's outputs on :attr:`case`, ``None`` when the oracle raised or no case."""
        return None if self.payload is None else prepared_case(self.payload)[1]


def prepared_payload(case: Case, expected: Mapping[str, np.ndarray] | None, coverage: int = 0) -> bytes:
    """A drawer's payload: ``case`` with the oracle's outputs on it (``None``: the oracle
    raised) and its domain coverage mask, pickled for the pipes between the campaign's own
    processes (never a corpus file)."""
    return pickle.dumps((dict(case.arrays), dict(case.params), expected, coverage), protocol=pickle.HIGHEST_PROTOCOL)


def prepared_parts(payload: bytes) -> tuple[Case, dict[str, np.ndarray] | None, int]:
    """The case, oracle outputs and domain coverage mask of a drawer's payload."""
    arrays, params, expected, coverage = pickle.loads(payload)
    return Case(arrays, params), expected, int(coverage)


def prepared_case(payload: bytes) -> tuple[Case, dict[str, np.ndarray] | None]:
    """The case and oracle outputs of a drawer's payload (what a worker runs)."""
    case, expected, _ = prepared_parts(payload)
    return case, expected


def drawer_main(
    conn: Connection,
    target_name: str,
    limits: Mapping[str, int] | None,
    environ: dict[str, str],
    kernel_name: str | None = None,
) -> None:
    """Entry point of a drawer process: ``("ready", None)`` once the strategy and the oracle are
    loaded, then one reply per request (see the module doc). Cases are drawn into the domain of
    the target's kernel ``kernel_name`` (:class:`~moefuzz.engine.generate.CaseSource`).
    Without ``limits`` it imports the target and waits for ``("limits", limits)`` first
    (:meth:`DrawerPool.configure`): a campaign starts its drawers beside its first worker,
    before that worker has said which device, and so which size limits, the campaign runs on."""
    for name in set(os.environ) - set(environ):
        del os.environ[name]
    os.environ.update(environ)
    try:
        import torch

        from moefuzz.engine.generate import CaseSource, draw_checked
        from moefuzz.execute.inprocess import oracle_outputs
        from moefuzz.model.registry import get_target
        from moefuzz.model.target import Limits, resolve_entry

        # Drawers run side by side, a core each: with torch's default of a thread per core, 8
        # drawers drew 593 cases/s together on an H200 host, with one thread each 3,123/s.
        torch.set_num_threads(1)
        target = get_target(target_name)
        oracle = resolve_entry(target.oracle)
        if limits is None:
            message = conn.recv()
            if message is None:
                return
            limits = message[1]
        from moefuzz.model.domain import Coverage

        drawn_limits = Limits(**limits)
        source = CaseSource(target.strategy(drawn_limits), seed=0, domain=target.kernel(kernel_name).domain)
        coverage = Coverage(target.domain.points(drawn_limits) if target.domain is not None else [])
        conn.send(("ready", None))
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        request = conn.recv()
        if request is None:
            return
        index, buffer = request
        case, error = draw_checked(source, target.check, buffer)
        if case is None or error:
            conn.send((index, error, None))
            continue
        try:
            expected: dict[str, np.ndarray] | None = oracle_outputs(oracle, case)
        except Exception:  # the worker runs it again and reports the oracle-error with the case
            expected = None
        conn.send((index, "", prepared_payload(case, expected, coverage.mask(case))))


class _Drawer:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process, self.conn = process, conn
        self.pending: dict[int, bytes] = {}
        self.ready = False


class DrawerPool:
    """``count`` drawer processes of one target within ``limits``.

    Args:
        context: the multiprocessing context workers are started from (a fork server with
            torch loaded; drawers never touch the device).
        target: the target's name (drawers look it up in the registry, plugins included through
            ``MOEFUZZ_TARGETS``).
        limits: the size limits of the campaign's cases (as :class:`moefuzz.model.target.Limits`);
            ``None``: the drawers load the target now and wait for :meth:`configure`.
        count: drawer processes (at least one).
        env: the environment drawers run with (the parent's, by default).
        kernel: the kernel the cases are for (drawn into its domain; ``None``: the default).

    Raises:
        WorkerError: from :meth:`collect`, when a drawer could not start or died.
    """

    def __init__(
        self,
        context: Any,
        target: str,
        limits: Any,
        count: int,
        env: Mapping[str, str] | None = None,
        kernel: str | None = None,
    ) -> None:
        from moefuzz.runtime.isolation import limits_json

        self._drawers: list[_Drawer] = []
        self._configured = limits is not None
        environ = dict(env if env is not None else os.environ)
        for number in range(max(1, count)):
            parent_conn, child_conn = context.Pipe()
            process = context.Process(
                target=drawer_main,
                args=(child_conn, target, limits_json(limits), environ, kernel),
                daemon=True,
                name=f"moefuzz-drawer-{number + 1}",
            )
            process.start()
            child_conn.close()
            self._drawers.append(_Drawer(process, parent_conn))

    def configure(self, limits: Any) -> None:
        """Give drawers started without limits the campaign's size limits (once).

        Raises:
            WorkerError: the pool had its limits already.
        """
        from moefuzz.runtime.isolation import limits_json

        if self._configured:
            raise WorkerError("drawers were given their limits already")
        self._configured = True
        for drawer in self._drawers:
            try:
                drawer.conn.send(("limits", limits_json(limits)))
            except (BrokenPipeError, OSError):
                pass  # collect() reads its death

    def __len__(self) -> int:
        return len(self._drawers)

    @property
    def connections(self) -> list[Connection]:
        """Ends of the pipes a reply (or a start) can be read from."""
        return [drawer.conn for drawer in self._drawers]

    @property
    def outstanding(self) -> int:
        """Buffers sent and not yet answered."""
        return sum(len(drawer.pending) for drawer in self._drawers)

    def hungry(self) -> list[Any]:
        """Handles of the started drawers holding fewer than :data:`DRAW_AHEAD` buffers."""
        return [drawer for drawer in self._drawers if drawer.ready and len(drawer.pending) < DRAW_AHEAD]

    def submit(self, drawer: Any, index: int, buffer: bytes) -> None:
        """Send the buffer at ``index`` to ``drawer`` (one of :meth:`hungry`)."""
        drawer.pending[index] = buffer
        drawer.conn.send((index, buffer))

    def collect(self) -> list[Drawn]:
        """The cases drawn since the last call, without waiting.

        Raises:
            WorkerError: a drawer failed to start or died (a bug of the target's strategy, or
                the machine: either way no case can be trusted to it).
        """
        from moefuzz.runtime.isolation import readable

        drawn: list[Drawn] = []
        for drawer in self._drawers:
            try:
                while readable(drawer.conn):
                    message = drawer.conn.recv()
                    if not drawer.ready:
                        status, payload = message
                        if status != "ready":
                            raise WorkerError(f"drawer failed to start: {payload}")
                        drawer.ready = True
                        continue
                    index, error, payload = message
                    drawn.append(Drawn(index, drawer.pending.pop(index), payload, error))
            except (EOFError, OSError):
                raise WorkerError(f"drawer {drawer.process.name} died (exit {drawer.process.exitcode})") from None
        return drawn

    def close(self) -> None:
        """Stop every drawer: ask, then terminate."""
        for drawer in self._drawers:
            try:
                drawer.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for drawer in self._drawers:
            drawer.process.join(timeout=2)
            if drawer.process.is_alive():
                drawer.process.terminate()
                drawer.process.join(timeout=2)
            drawer.conn.close()
        self._drawers = []
