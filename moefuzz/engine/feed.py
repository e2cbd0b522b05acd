"""Feeding the default engine's workers: where each next request comes from (:class:`Feed`),
and waiting on many pipes at once (:class:`Waiter`)."""

from __future__ import annotations

import selectors
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection

from moefuzz.execute.perturb import Perturbation
from moefuzz.runtime.generators import DRAW_AHEAD, GeneratorPool
from moefuzz.runtime.messages import Request

#: Most cases generated ahead of the workers (waiting in the parent or being generated): enough
#: that a worker never waits for a generator, few enough that generators faster than the workers
#: cost little memory (a large case with its oracle outputs is megabytes).
MAX_DRAWN_AHEAD = 48


class Waiter:
    """``multiprocessing.connection.wait`` with one selector kept across calls: ``wait`` builds
    and registers a new one each call, several times a case. The selector
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


class Feed:
    """Where the default engine's next request comes from: the generators' cases, in the order
    they were drawn, or (without generators) the next bytes of the stream for a worker to draw."""

    def __init__(
        self,
        buffers: Iterator[bytes],
        generators: GeneratorPool | None,
        plan: Callable[[int], list[Perturbation]],
    ) -> None:
        self._buffers, self._generators, self._plan = buffers, generators, plan
        self._index = 0
        self._drawn: deque[Request] = deque()

    def draw(self) -> str:
        """Keep every generator :data:`~moefuzz.runtime.generators.DRAW_AHEAD` buffers ahead, while fewer than
        :data:`MAX_DRAWN_AHEAD` cases are drawn or being drawn and not yet sent (generators faster
        than the workers would otherwise fill the parent's memory), and take what they drew;
        return the first invalid case's error (a target bug), else ``""``."""
        generators = self._generators
        if generators is None:
            return ""
        self._fill(generators)
        for result in generators.collect():
            if result.error:
                return result.error
            if result.payload is not None:
                plan = self._plan(result.index)
                self._drawn.append(Request(plan, buffer=result.buffer, index=result.index, payload=result.payload))
        # Again, for the generators that just said they are ready or answered: otherwise they sit
        # idle until the campaign's next wait returns (up to a second at the start, when
        # nothing else is in flight to wake it).
        self._fill(generators)
        return ""

    def _fill(self, generators: GeneratorPool) -> None:
        for generator in generators.hungry():
            while len(generator.pending) < DRAW_AHEAD and len(self._drawn) + generators.outstanding < MAX_DRAWN_AHEAD:
                generators.submit(generator, self._index, next(self._buffers))
                self._index += 1

    def next_request(self) -> Request | None:
        """The next request for a worker, or ``None`` while the generators are behind."""
        if self._generators is not None:
            return self._drawn.popleft() if self._drawn else None
        request = Request(self._plan(self._index), buffer=next(self._buffers), index=self._index)
        self._index += 1
        return request
