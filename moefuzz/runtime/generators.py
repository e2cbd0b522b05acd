"""Generating cases from bytes in CPU-only processes, ahead of the workers that run them.

On a GPU one or two workers a GPU run the cases (:func:`moefuzz.engine.sizing.auto_workers`), but
drawing a case through the strategy costs more than running it. So the campaign hands the bytes of
the next cases to generator processes, which never touch the device: each turns bytes into a case
through the target's strategy (:meth:`moefuzz.engine.generate.CaseSource.from_bytes`), checks it
against the contract, runs the target's oracle on it (plain torch on the CPU, where a worker would
run it too) and sends both back; the parent passes them to a worker, which then only launches the
kernel and compares, and the oracle runs here beside the kernel instead of before it. The parent
keeps every generated case until its worker's reply, so nothing is lost if the worker dies.

Protocol (:mod:`moefuzz.runtime.messages`): the parent sends :class:`Draw`; the generator replies
:class:`DrawReply`, whose ``payload`` (:func:`~moefuzz.runtime.messages.prepared_payload`) the
parent forwards to a worker as it is (:attr:`moefuzz.runtime.messages.Request.payload`); the
oracle's outputs in it are ``None`` when the oracle raised (the worker then runs it again and
reports the ``oracle-error``). ``None`` ends a generator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from moefuzz.errors import WorkerError
from moefuzz.model.case import Case
from moefuzz.runtime.messages import Draw, DrawReply, Failed, Ready, SetLimits, prepared_case, prepared_payload
from moefuzz.runtime.processes import child_setup, limits_json, readable, reset_environment, stop_process, track

__all__ = ["DRAW_AHEAD", "Generated", "GeneratorPool", "generator_main", "prepared_case", "prepared_payload"]

#: Buffers each generator holds ahead: enough that it is never idle between two replies.
DRAW_AHEAD = 4
#: Generators a pool replaces after they died before it gives up (the strategy or the machine
#: kills every one: no case can be trusted to them).
MAX_GENERATOR_RESTARTS = 8


@dataclass(frozen=True)
class Generated:
    """A generator's answer for the buffer at ``index`` of the campaign's byte stream.

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


def generator_main(
    conn: Connection,
    target_name: str,
    limits: Mapping[str, int] | None,
    environ: dict[str, str],
    kernel_name: str | None = None,
) -> None:
    """Entry point of a generator process: ``("ready", None)`` once the strategy and the oracle are
    loaded, then one reply per request (see the module doc). Cases are drawn into the domain of
    the target's kernel ``kernel_name`` and carry their coverage of the target's domain.
    Without ``limits`` it imports the target and waits for ``("limits", limits)`` first
    (:meth:`GeneratorPool.configure`): a campaign starts its generators beside its first worker,
    before that worker has said which device, and so which size limits, the campaign runs on."""
    child_setup()
    reset_environment(environ)
    try:
        import torch

        from moefuzz.engine.generate import CaseSource, draw_checked
        from moefuzz.execute.inprocess import oracle_outputs
        from moefuzz.model.registry import get_target
        from moefuzz.model.target import Limits, resolve_entry

        # Generators run side by side, a core each: torch's default of a thread per core would
        # oversubscribe the host.
        torch.set_num_threads(1)
        target = get_target(target_name)
        oracle = resolve_entry(target.oracle)
        if limits is None:
            message = conn.recv()
            if message is None:
                return
            limits = message.limits
        from moefuzz.model.domain import Coverage

        drawn_limits = Limits(**(limits or {}))
        source = CaseSource(target.strategy(drawn_limits), seed=0, domain=target.kernel(kernel_name).domain)
        coverage = Coverage(target.domain.points(drawn_limits) if target.domain is not None else [])
        conn.send(Ready(None))
    except Exception as exc:
        conn.send(Failed(f"{type(exc).__name__}: {exc}"))
        return
    while True:
        request: Draw | None = conn.recv()
        if request is None:
            return
        index, buffer = request
        try:
            case, error = draw_checked(source, target.check, buffer)
        except Exception as exc:  # the strategy's own bug: the campaign stops with it (exit 3)
            conn.send(DrawReply(index, f"the strategy raised {type(exc).__name__}: {exc}", None))
            continue
        if case is None or error:
            conn.send(DrawReply(index, error, None))
            continue
        try:
            expected: dict[str, np.ndarray] | None = oracle_outputs(oracle, case)
        except Exception:  # the worker runs it again and reports the oracle-error with the case
            expected = None
        conn.send(DrawReply(index, "", prepared_payload(case, expected, coverage.mask(case))))


class _Generator:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process, self.conn = process, conn
        self.pending: dict[int, bytes] = {}
        self.ready = False


class GeneratorPool:
    """``count`` generator processes of one target within ``limits``.

    Args:
        context: the multiprocessing context workers are started from (a fork server with
            torch loaded; generators never touch the device).
        target: the target's name (generators look it up in the registry, plugins included through
            ``MOEFUZZ_TARGETS``).
        limits: the size limits of the campaign's cases (as :class:`moefuzz.model.target.Limits`);
            ``None``: the generators load the target now and wait for :meth:`configure`.
        count: generator processes (at least one).
        env: the environment generators run with (the parent's, by default).
        kernel: the kernel the cases are for (drawn into its domain; ``None``: the default).

    A generator that dies once started is replaced (:attr:`restarts`), and the buffers it held
    go to its replacement, as a dead worker's requests do.

    Raises:
        WorkerError: from :meth:`collect`, when a generator could not start, or more than
            :data:`MAX_GENERATOR_RESTARTS` died.
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
        self._generators: list[_Generator] = []
        self._configured = limits is not None
        self._context, self._target, self._limits, self._kernel = context, target, limits, kernel
        self._environ = dict(env if env is not None else os.environ)
        self._serial = 0
        self.restarts = 0
        for _ in range(max(1, count)):
            self._generators.append(self._spawn(limits))

    def _spawn(self, limits: Any) -> _Generator:
        self._serial += 1
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=generator_main,
            args=(child_conn, self._target, limits_json(limits), self._environ, self._kernel),
            daemon=True,
            name=f"moefuzz-generator-{self._serial}",
        )
        process.start()
        track(process)
        child_conn.close()
        return _Generator(process, parent_conn)

    def _replace(self, dead: _Generator) -> None:
        """Start a generator in place of ``dead`` and give it the buffers ``dead`` held.

        Raises:
            WorkerError: more than :data:`MAX_GENERATOR_RESTARTS` generators died.
        """
        stop_process(dead.process, kill_now=True)
        dead.conn.close()
        self.restarts += 1
        if self.restarts > MAX_GENERATOR_RESTARTS:
            raise WorkerError(
                f"{self.restarts} generators died (the last, {dead.process.name}, with exit "
                f"{dead.process.exitcode}): the target's strategy or oracle kills them"
            )
        fresh = self._spawn(self._limits if self._configured else None)
        fresh.pending = dict(dead.pending)
        for index, buffer in fresh.pending.items():
            fresh.conn.send(Draw(index, buffer))
        self._generators[self._generators.index(dead)] = fresh

    def configure(self, limits: Any) -> None:
        """Give generators started without limits the campaign's size limits (once).

        Raises:
            WorkerError: the pool had its limits already.
        """
        if self._configured:
            raise WorkerError("generators were given their limits already")
        self._configured = True
        self._limits = limits
        for generator in self._generators:
            try:
                generator.conn.send(SetLimits(limits_json(limits)))
            except (BrokenPipeError, OSError):
                pass  # collect() reads its death

    def __len__(self) -> int:
        return len(self._generators)

    @property
    def connections(self) -> list[Connection]:
        """Ends of the pipes a reply (or a start) can be read from."""
        return [generator.conn for generator in self._generators]

    @property
    def outstanding(self) -> int:
        """Buffers sent and not yet answered."""
        return sum(len(generator.pending) for generator in self._generators)

    def hungry(self) -> list[Any]:
        """Handles of the started generators holding fewer than :data:`DRAW_AHEAD` buffers."""
        return [generator for generator in self._generators if generator.ready and len(generator.pending) < DRAW_AHEAD]

    def submit(self, generator: Any, index: int, buffer: bytes) -> None:
        """Send the buffer at ``index`` to ``generator`` (one of :meth:`hungry`)."""
        generator.pending[index] = buffer
        try:
            generator.conn.send(Draw(index, buffer))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # it died: collect() replaces it and sends its buffers to the replacement

    def collect(self) -> list[Generated]:
        """The cases drawn since the last call, without waiting.

        Raises:
            WorkerError: a generator failed to start or died (a bug of the target's strategy, or
                the machine: either way no case can be trusted to it).
        """
        drawn: list[Generated] = []
        for generator in list(self._generators):
            try:
                while readable(generator.conn):
                    message = generator.conn.recv()
                    if not generator.ready:
                        if isinstance(message, Failed):
                            raise WorkerError(f"generator failed to start: {message.reason}")
                        generator.ready = True
                        continue
                    reply: DrawReply = message
                    drawn.append(
                        Generated(
                            reply.stream_index, generator.pending.pop(reply.stream_index), reply.payload, reply.error
                        )
                    )
            except (EOFError, OSError):
                if not generator.ready:
                    generator.process.join(timeout=2)
                    raise WorkerError(
                        f"generator {generator.process.name} died while starting (exit {generator.process.exitcode})"
                    ) from None
                self._replace(generator)
        return drawn

    def close(self) -> None:
        """Stop every generator: ask them all, then each in turn terminated and killed if it
        has not ended (:func:`~moefuzz.runtime.processes.stop_process`)."""
        for generator in self._generators:
            try:
                generator.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for generator in self._generators:
            generator.process.join(timeout=2)
            stop_process(generator.process)
            generator.conn.close()
        self._generators = []
