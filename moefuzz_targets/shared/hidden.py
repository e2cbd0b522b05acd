"""The hidden-column shrink step the expert-parallel targets (ep_scatter, ep_gather) share.

``truncate_hidden`` works on any case whose token rows have a hidden axis; a target hands it
the function that cuts its case to ``h`` columns (and whatever depends on H, like the per-128
scales of fp8 rows).
"""

from __future__ import annotations

from collections.abc import Callable

from moefuzz.model.case import Case
from moefuzz.shrinking.shrinker import Shrinker


def truncate_hidden(shrinker: Shrinker, hidden: Callable[[Case], int], cut: Callable[[Case, int], Case]) -> None:
    """Keep the fewest leading hidden columns that still fail, found by bisection (1 first)."""
    low, high = 0, hidden(shrinker.current)  # `high` columns fail; `low` not known to
    while high - low > 1 and not shrinker.exhausted:
        mid = 1 if low == 0 else (low + high) // 2
        if shrinker.consider(cut(shrinker.current, mid)):
            high = mid
        else:
            low = mid
