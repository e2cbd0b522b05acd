"""The shrink driver: runs passes to a fixed point within a time budget.

The driver knows nothing about routing or paging: a target hands it a ``size`` order, a
validity ``check`` and its passes; the caller hands it ``fails_same_way(case) -> bool`` (which
runs the case isolated in a worker and compares signatures). Passes that were useful in the last
round run first in the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from moefuzz.errors import CaseError
from moefuzz.model.case import Case


@dataclass
class ShrinkPass:
    """A pass and its statistics (see :mod:`moefuzz.shrinking.passes` for how to write one).

    Attributes:
        run: the pass itself, ``run(shrinker) -> None``.
        name: the pass's verb phrase, shown in reports; by default ``run.__name__`` (a lambda
            or a partial must be given one: ``ValueError`` otherwise).
        calls: how many times the driver ran it.
        accepted: how many of its candidates were accepted.
    """

    run: Callable[[Shrinker], None]
    name: str = ""
    calls: int = 0
    accepted: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            name = getattr(self.run, "__name__", "")
            if not name or name == "<lambda>":
                raise ValueError(f"shrink pass {self.run!r} needs a name")
            self.name = name


@dataclass
class ShrinkResult:
    """What a shrink achieved.

    Attributes:
        case: the smallest failing case found.
        size: its size tuple (the target's order).
        original_size: the size tuple it started from.
        candidates: candidates run (each one a case execution).
        accepted: candidates accepted.
        seconds: wall time spent.
        passes: per pass, ``[calls, accepted]``.
        complete: True if a full round of passes accepted nothing (a fixed point; for a flaky
            finding, ``confirm_rounds`` in a row), False if the budget ran out first.
    """

    case: Case
    size: tuple[int, ...]
    original_size: tuple[int, ...]
    candidates: int
    accepted: int
    seconds: float
    passes: dict[str, list[int]] = field(default_factory=dict)
    complete: bool = True

    def to_json(self) -> dict[str, object]:
        return {
            "size": list(self.size),
            "original_size": list(self.original_size),
            "candidates": self.candidates,
            "accepted": self.accepted,
            "seconds": round(self.seconds, 3),
            "complete": self.complete,
            "passes": self.passes,
        }


class Shrinker:
    """Minimizes one failing case.

    Args:
        case: a case known to fail.
        fails_same_way: runs a candidate; True if it fails with the original signature.
        passes: the target's shrink passes, in their preferred first order.
        size: the target's size order; smaller tuples are simpler cases.
        check: the target's precondition check; candidates it rejects are never run.
        budget_s: wall-clock budget in seconds.
        on_improvement: called with each newly accepted case (to save progress atomically).
        derive: recomputes a candidate's derived arrays and params before it is checked (the
            target's ``derive``); identity when ``None``.
        confirm_rounds: rounds in a row that must accept nothing before the shrink is complete.
            Above 1 for a flaky finding, whose sequential test drops a candidate that does fail
            now and then: each further round runs again the candidates the last one dropped.
    """

    def __init__(
        self,
        case: Case,
        fails_same_way: Callable[[Case], bool],
        passes: Sequence[ShrinkPass],
        size: Callable[[Case], tuple[int, ...]],
        check: Callable[[Case], None],
        budget_s: float,
        on_improvement: Callable[[Case], None] | None = None,
        derive: Callable[[Case], Case] | None = None,
        confirm_rounds: int = 1,
    ) -> None:
        self.current = case
        self._fails_same_way = fails_same_way
        self._passes = [ShrinkPass(p.run, p.name) for p in passes]
        self._size = size
        self._check = check
        self._deadline = time.monotonic() + budget_s
        self._on_improvement = on_improvement
        self._derive = derive or (lambda case: case)
        self._seen: set[str] = set()
        self._confirm_rounds = max(1, confirm_rounds)
        self.candidates = 0
        self.accepted = 0
        #: Name of the pass now running ("" before the first and after the last).
        self.current_pass = ""

    @property
    def exhausted(self) -> bool:
        """True once the budget is spent."""
        return time.monotonic() >= self._deadline

    def stop(self) -> None:
        """Spend the budget now: the shrink ends after the candidate under way (a campaign
        asked to stop)."""
        self._deadline = time.monotonic()

    def size(self, case: Case) -> tuple[int, ...]:
        return self._size(case)

    def consider(self, candidate: Case) -> bool:
        """Run ``candidate`` if it is new, valid and smaller; accept it if it fails the same way."""
        if self.exhausted:
            return False
        try:
            candidate = self._derive(candidate)
        except CaseError:
            return False
        if not self._size(candidate) < self._size(self.current):
            return False
        digest = candidate.digest()
        if digest in self._seen:
            return False
        self._seen.add(digest)
        try:
            self._check(candidate)
        except CaseError:
            return False
        self.candidates += 1
        if not self._fails_same_way(candidate):
            return False
        self.current = candidate
        self.accepted += 1
        if self._on_improvement is not None:
            self._on_improvement(candidate)
        return True

    def shrink(self) -> ShrinkResult:
        """Run passes until ``confirm_rounds`` full rounds in a row accept nothing, or the budget
        is spent."""
        started = time.monotonic()
        original_size = self._size(self.current)
        complete = False
        idle_rounds = 0
        while not self.exhausted:
            progress = False
            for shrink_pass in list(self._passes):
                before = self.accepted
                shrink_pass.calls += 1
                self.current_pass = shrink_pass.name
                shrink_pass.run(self)
                shrink_pass.accepted += self.accepted - before
                progress |= self.accepted > before
                if self.exhausted:
                    break
            if not progress and not self.exhausted:
                idle_rounds += 1
                if idle_rounds >= self._confirm_rounds:
                    complete = True
                    break
                self._seen.clear()  # the candidates this round dropped run again
            elif progress:
                idle_rounds = 0
            # Useful passes first next round (stable: ties keep the target's order).
            self._passes.sort(key=lambda p: -p.accepted)
        self.current_pass = ""
        return ShrinkResult(
            case=self.current,
            size=self._size(self.current),
            original_size=original_size,
            candidates=self.candidates,
            accepted=self.accepted,
            seconds=time.monotonic() - started,
            passes={p.name: [p.calls, p.accepted] for p in self._passes},
            complete=complete,
        )
