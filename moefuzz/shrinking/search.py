"""The search primitives behind every shrink pass: one bisection, one delta-debugging loop.

:func:`find_least` is the bisection every pass that lowers a number (tokens, rows per rank,
hidden columns, a request's length, a window) runs; it is modelled on Hypothesis'
``find_integer``: a pure search over an integer predicate that knows nothing about cases, so
that its probes are written and tested once. Where ``find_integer`` climbs from 0 to the largest
``n`` with ``f(n)``, a shrink pass wants the *least* value that still fails, and big cuts first
(each accepted candidate of a crash costs a worker), so :func:`find_least` starts from the top:
a few cheap probes at the bottom (``lowest``, then ``lowest + 1``...), then halving the interval
between the largest value known not to fail and the smallest known to fail.

:func:`lower` wraps it for a pass: a value's candidate case is proposed through
``shrinker.consider``; :func:`delete_runs` is the delta-debugging move over items.
:func:`smaller_sizes` is the ladder a pass tries for a power-of-two size (page_size,
block_size).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from moefuzz.model.case import Case

if TYPE_CHECKING:
    from moefuzz.shrinking.shrinker import Shrinker


def find_least(
    fails: Callable[[int], bool],
    high: int,
    lowest: int = 0,
    probes: Iterable[int] = (),
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """The least value in [``lowest``, ``high``] found to fail, ``high`` being known to fail.

    Tries ``probes`` in order first (values below ``lowest`` or at or above the best so far are
    skipped; the first that fails ends the probing, each one that passes raises the bottom of
    the interval), then bisects: ``mid = (low + high) // 2`` between the largest value known not
    to fail (``lowest - 1`` at first) and the smallest known to fail. ``fails(n)`` is called at
    most once per value; ``stop()`` (a spent budget) ends the search early with the best value
    so far. Assumes, without relying on it, that values above a failing one fail too: on a
    predicate that is not monotone the result still fails, and is a local minimum of the probes
    made. About log2(high - lowest) calls.
    """
    low = lowest - 1  # values <= low are not known to fail
    for probe in probes:
        if probe < lowest or probe <= low:
            continue
        if probe >= high or stop():
            break
        if fails(probe):
            high = probe
            break
        low = probe
    while high - low > 1 and not stop():
        mid = (low + high) // 2
        if fails(mid):
            high = mid
        else:
            low = mid
    return high


def lower(
    shrinker: Shrinker,
    value: int,
    candidate: Callable[[int], Case | None],
    lowest: int = 0,
    probes: Iterable[int] = (),
) -> int:
    """Shrink a number by :func:`find_least`: ``value`` is the current (failing) one,
    ``candidate(n)`` the case with ``n`` in its place (``None``: no such case, counted as
    passing), proposed through ``shrinker.consider``; the search stops when the shrinker's
    budget is spent. Returns the value the shrinker's current case now holds. ``candidate`` is
    called with the shrinker's current case already holding the last accepted value, so build
    it from the case the pass started from (or re-read ``shrinker.current``, as the pass needs)."""

    def fails(n: int) -> bool:
        case = candidate(n)
        return case is not None and shrinker.consider(case)

    return find_least(fails, value, lowest, probes, lambda: shrinker.exhausted)


def delete_runs(
    shrinker: Shrinker,
    count: Callable[[Case], int],
    without: Callable[[Case, np.ndarray], Case | None],
    keep_one: bool = False,
    all_first: bool = False,
) -> None:
    """The delta-debugging move: delete runs of items, halves first, then quarters, down to
    single items. ``count(case)`` is how many items ``case`` has; ``without(case, keep)`` builds
    the candidate that keeps the items where ``keep`` ([count] bool) is True (``None``: no
    candidate for that run). With ``keep_one``, one item always stays (a batch of no requests
    may not be a valid case); with ``all_first``, the first run is every item (for items that
    often all go, as unused pool rows or experts do)."""
    total = count(shrinker.current)
    chunk = max(1, total if all_first else total // 2)
    while chunk >= 1 and not shrinker.exhausted:
        start = 0
        while start < count(shrinker.current) and not shrinker.exhausted:
            keep = np.ones(count(shrinker.current), dtype=bool)
            keep[start : start + chunk] = False
            if keep_one and not keep.any():
                start += chunk
                continue
            candidate = without(shrinker.current, keep)
            if candidate is None or not shrinker.consider(candidate):
                start += chunk
        chunk //= 2


def smaller_sizes(current: int) -> list[int]:
    """The sizes a pass tries in place of a (power-of-two) size ``current``, smallest first:
    1, 2, 4, ... below it, and ``current - 1``."""
    return sorted(v for v in {1 << bit for bit in range(current.bit_length())} | {current - 1} if 1 <= v < current)
