"""Crash storms: a known crash that keeps recurring must not eat the campaign.

A crash on a GPU takes its worker with it (the CUDA context is gone), and a new worker costs
seconds, while a case costs milliseconds. Two measures, both counted in the campaign's status
and JSON report:

- **Cases like a known crasher's are skipped** (:class:`CrashRegions`). A crash's *corner* is
  the smallest size (``target.size(case)``, the shrinker's order), entry by entry, of its shrunk
  reproducer and of every case that crashed with its signature. Bugs are input-shaped and mostly
  monotone (more tokens, more experts, one more repeat or sentinel still crash), so a case whose
  size is at least the corner's in every entry is *like* the crasher. The campaign keeps score: of the
  last :data:`WINDOW` cases that ran and were like a crasher, how many crashed with its
  signature. Once at least :data:`SKIP_AFTER` did and they are at least :data:`SKIP_RATE` of
  them, workers skip such cases (count, never run), all but one in :data:`PROBE_PERIOD`
  (*probes*, chosen by a hash of the size), which keep the score honest: a region that stops
  crashing is run again. A crash spread evenly over every size (a crash on a CRC of the input)
  never scores :data:`SKIP_RATE` and is never skipped; such a storm is bounded by how fast
  workers start.
- **More warm spares while crashes are frequent** (:func:`spares_wanted`, used by
  :class:`moefuzz.runtime.isolation.Executor`): a crashed worker is replaced by a spare that has
  imported torch and the kernel already; when crashes come faster than one spare starts, the
  executor keeps more, as many as the crash rate times a worker's start-up asks for.
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

#: Seconds over which replacements are counted to tell the crash rate.
STORM_WINDOW_S = 10.0
#: Seconds a spare takes from its spawn to ready (imports, CUDA context, the kernel's warm-up):
#: what a spare must be started ahead by.
SPARE_START_S = 2.0
#: Most warm spares an executor keeps during a storm (one otherwise).
STORM_SPARES = 4
#: Crashes of a known signature, among the cases like its crasher, before such cases are skipped.
SKIP_AFTER = 5
#: Share of the cases like a crasher that must have crashed with its signature.
SKIP_RATE = 0.5
#: Cases like a crasher over which the share is counted (the most recent).
WINDOW = 64
#: One case in this many of a skipped region still runs (by a hash of its size).
PROBE_PERIOD = 32
#: Ran cases remembered, so that a corner set later is scored at once.
HISTORY = 4096

Size = tuple[int, ...]


def spares_wanted(replaced_at: Sequence[float], now: float) -> int:
    """Warm spares to keep at ``now`` given the times of the last replacements
    (``time.perf_counter()`` values): one, plus the replacements expected while a spare starts
    (the rate over the last :data:`STORM_WINDOW_S` seconds times :data:`SPARE_START_S`), at most
    :data:`STORM_SPARES`."""
    recent = sum(1 for when in replaced_at if now - when <= STORM_WINDOW_S)
    return min(STORM_SPARES, 1 + math.ceil(recent / STORM_WINDOW_S * SPARE_START_S))


def dominates(size: Sequence[int], corner: Sequence[int]) -> bool:
    """Whether ``size`` is at least ``corner`` in every entry (sizes of one target)."""
    return len(size) == len(corner) and all(s >= c for s, c in zip(size, corner, strict=True))


def is_probe(size: Sequence[int]) -> bool:
    """Whether a case of ``size`` runs although it lies in a skipped region (one in
    :data:`PROBE_PERIOD`, by a CRC-32 of the size: the same size decides the same way)."""
    return zlib.crc32(",".join(map(str, size)).encode()) % PROBE_PERIOD == 0


def avoided(size: Sequence[int], corners: Iterable[Size]) -> bool:
    """Whether a case of ``size`` is skipped given the skipped regions' ``corners``."""
    return any(dominates(size, corner) for corner in corners) and not is_probe(size)


class CrashRegions:
    """The campaign's score of each known crash's region (see the module doc).

    ``skip_after``, ``skip_rate`` and ``window`` default to :data:`SKIP_AFTER`, :data:`SKIP_RATE`
    and :data:`WINDOW`. Feed it every case that ran (:meth:`ran`, with the signature it crashed
    or hung with) and each crash (:meth:`crashed`); :attr:`skipped` says which
    corners workers skip
    now. Each call that changes :attr:`skipped` returns ``True``.
    """

    def __init__(
        self, skip_after: int | None = None, skip_rate: float | None = None, window: int | None = None
    ) -> None:
        self.skip_after = SKIP_AFTER if skip_after is None else skip_after
        self.skip_rate = SKIP_RATE if skip_rate is None else skip_rate
        self.window = WINDOW if window is None else window
        self.corners: dict[str, Size] = {}
        self._scores: dict[str, deque[bool]] = {}
        self._history: deque[tuple[Size, str]] = deque(maxlen=HISTORY)
        self._skipped: frozenset[Size] = frozenset()

    @property
    def skipped(self) -> frozenset[Size]:
        """Corners of the regions whose cases workers skip now."""
        return self._skipped

    def ran(self, size: Sequence[int], signature: str = "") -> bool:
        """Count a case of ``size`` that ran; ``signature``: the crash or hang it ended with
        (``""`` when it did not end its worker)."""
        entry = (tuple(size), signature)
        self._history.append(entry)
        scored = False
        for name, corner in self.corners.items():
            if dominates(entry[0], corner):
                self._scores[name].append(signature == name)
                scored = True
        return scored and self._update()  # a case like no crasher changes no score

    def crashed(self, signature: str, size: Sequence[int], shrunk: Sequence[int] | None, scored: bool) -> bool:
        """A crash (or hang) of ``signature`` on a case of ``size``: scored as :meth:`ran` would
        unless ``scored`` (it was, when it came with its size); the corner is lowered to it and
        to ``shrunk`` (the size of this campaign's shrunk finding of it, if any)."""
        changed = False if scored else self.ran(size, signature)
        if shrunk is not None:
            changed = self.lower_corner(signature, shrunk) or changed
        return self.lower_corner(signature, size) or changed

    def lower_corner(self, signature: str, size: Sequence[int]) -> bool:
        """Lower the corner of ``signature`` to ``size`` entry by entry (set it, the first time),
        and score it again over the cases remembered. The corner is the smallest size of a crash
        in every entry: for a crash of one monotone region, that region's lower corner; for a
        crash spread over sizes or over regions, a corner so low that its score stays under
        :attr:`skip_rate` and nothing is skipped."""
        size = tuple(size)
        old = self.corners.get(signature)
        corner = size if old is None else tuple(min(a, b) for a, b in zip(old, size, strict=True))
        if corner == old:
            return False
        self.corners[signature] = corner
        score: deque[bool] = deque(maxlen=self.window)
        score.extend(crashed == signature for ran, crashed in self._history if dominates(ran, corner))
        self._scores[signature] = score
        return self._update()

    def _update(self) -> bool:
        skipped = frozenset(
            self.corners[name]
            for name, score in self._scores.items()
            if (hits := sum(score)) >= self.skip_after and hits >= self.skip_rate * len(score)
        )
        changed = skipped != self._skipped
        self._skipped = skipped
        return changed


def storm_signature(outcome: Any) -> str:
    """The signature of an :class:`~moefuzz.model.outcome.Outcome` that cost its worker (a crash
    that ends the worker, or a hang), else ``""``: what :class:`CrashRegions` scores."""
    if (outcome.kind == "crash" and outcome.ends_worker) or outcome.kind == "hang":
        return str(outcome.signature)
    return ""


def avoided_size(target: Any, corners: frozenset[Size], case: Any) -> Size | None:
    """``target.size(case)`` of a drawn case, or ``None`` when it lies in a skipped region of
    ``corners`` (the worker then skips it)."""
    size = tuple(target.size(case))
    return None if corners and avoided(size, corners) else size
