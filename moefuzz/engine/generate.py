"""Drawing cases from a target's strategy, driven by a byte source.

Hypothesis turns a byte string into a case through ``fuzz_one_input`` (its public entry point for
external fuzzers). The default engine feeds it random bytes from a ``random.Random(seed)``, so a
campaign is reproducible from its seed; a coverage-guided engine can feed it mutated bytes
instead. Nothing here runs a kernel.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis.errors import NonInteractiveExampleWarning
from hypothesis.strategies import SearchStrategy

from moefuzz.errors import CaseError
from moefuzz.model.case import Case

#: Bytes offered per draw; a routing case consumes about a hundred.
DRAW_BYTES = 1024
#: Draws a source with a kernel domain makes from one buffer before it gives up and returns the
#: last case (outside the domain: the worker then skips it): the buffer, then
#: :func:`derived_bytes` 1, 2, ... With half the drawn cases outside a domain, 1 in 2^8 stays out.
DOMAIN_RETRIES = 8


def derived_bytes(buffer: bytes, attempt: int) -> bytes:
    """The ``attempt``-th buffer derived from ``buffer`` (same length; sha256 in counter mode),
    where a draw outside a kernel's domain tries again: a pure function of the bytes, so every
    process that draws ``buffer`` draws the same case."""
    out = bytearray()
    block = 0
    while len(out) < len(buffer):
        out += hashlib.sha256(b"%d:%d:" % (attempt, block) + buffer).digest()
        block += 1
    return bytes(out[: len(buffer)])


def draw_checked(source: CaseSource | Any, check: Callable[[Case], None], buffer: bytes) -> tuple[Case | None, str]:
    """The case ``buffer`` encodes through ``source`` (anything with ``from_bytes``), checked by
    the contract's ``check``: ``(case, "")``; ``(None, "")`` when the strategy rejects the bytes;
    ``(case, error)`` when the drawn case breaks the contract's preconditions (a target bug).
    The one place workers and generators turn bytes into a case they may run."""
    case = source.from_bytes(buffer)
    if case is None:
        return None, ""
    try:
        check(case)
    except CaseError as exc:
        return case, str(exc) or type(exc).__name__
    return case, ""


def byte_stream(seed: int) -> Iterator[bytes]:
    """The default engine's bytes: buffer ``i`` of a campaign of ``seed`` is the ``i``-th
    ``randbytes(DRAW_BYTES)`` of ``random.Random(seed)``, wherever it is turned into a case."""
    rng = random.Random(seed)
    while True:
        yield rng.randbytes(DRAW_BYTES)


class CaseSource:
    """Turns byte strings into cases of one strategy.

    Args:
        strategy: a hypothesis strategy of :class:`Case`.
        seed: seeds the random byte source of :meth:`draw`.
        domain: a kernel's domain (``pred(case) -> bool``, :attr:`KernelSpec.domain
            <moefuzz.model.target.KernelSpec.domain>`): a case outside it is drawn again from
            :func:`derived_bytes`, up to :data:`DOMAIN_RETRIES` times, so that a restricted
            kernel still sees its whole domain; ``None``: the whole contract.
    """

    def __init__(self, strategy: SearchStrategy[Case], seed: int, domain: Callable[[Case], bool] | None = None) -> None:
        self._domain = domain
        self._bytes = byte_stream(seed)
        self._drawn: list[Case] = []

        @settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
        @given(strategy)
        def sink(case: Case) -> None:
            self._drawn.append(case)

        self._fuzz_one_input: Callable[[bytes], bytes | None] = sink.hypothesis.fuzz_one_input  # type: ignore[attr-defined]

    def from_bytes(self, buffer: bytes) -> Case | None:
        """The case ``buffer`` encodes, or ``None`` if the strategy rejects it; with a domain,
        the first case in it among ``buffer`` and its :func:`derived_bytes` (else the last one
        drawn, or ``None`` when every attempt was rejected)."""
        case = self._draw_one(buffer)
        if self._domain is None or (case is not None and self._domain(case)):
            return case
        for attempt in range(1, DOMAIN_RETRIES):
            again = self._draw_one(derived_bytes(buffer, attempt))
            if again is not None:
                case = again
                if self._domain(again):
                    return again
        return case

    def _draw_one(self, buffer: bytes) -> Case | None:
        self._drawn.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonInteractiveExampleWarning)
            self._fuzz_one_input(buffer)
        return self._drawn[-1] if self._drawn else None

    def draw(self) -> Case:
        """The next case from the seeded random byte source."""
        while True:
            case = self.from_bytes(next(self._bytes))
            if case is not None:
                return case
