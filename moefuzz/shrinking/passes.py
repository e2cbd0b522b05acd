"""What a shrink pass is.

A pass is a small function with a verb for a name (``drop_tokens``, ``remove_duplicates``) that
looks at ``shrinker.current`` and proposes smaller cases through ``shrinker.consider(case)``,
which runs the candidate (in a worker) and returns True if it was accepted: it is valid for the
target, strictly smaller in the target's ``size`` order, and still fails with the same
signature. Rules for writing a pass:

- Propose the biggest steps first (half of the tokens before one token).
- Re-read ``shrinker.current`` after every accepted candidate: it has changed.
- Never assume a candidate is valid or failing; ``consider`` decides, and a candidate that
  crashes the worker costs a worker, not the campaign.
- Stop when ``shrinker.exhausted`` says the budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from moefuzz.model.case import Case

if TYPE_CHECKING:
    from moefuzz.shrinking.shrinker import Shrinker


@dataclass
class ShrinkPass:
    """A named pass and its statistics.

    Attributes:
        name: the pass's verb phrase, shown in reports.
        run: the pass itself, ``run(shrinker) -> None``.
        calls: how many times the driver ran it.
        accepted: how many of its candidates were accepted.
    """

    name: str
    run: Callable[[Shrinker], None]
    calls: int = 0
    accepted: int = 0


def delete_runs(
    shrinker: Shrinker,
    count: Callable[[Case], int],
    without: Callable[[Case, np.ndarray], Case],
    keep_one: bool = False,
) -> None:
    """The delta-debugging move: delete runs of items, halves first, then quarters, down to
    single items. ``count(case)`` is how many items ``case`` has; ``without(case, keep)`` builds
    the candidate that keeps the items where ``keep`` ([count] bool) is True. With ``keep_one``,
    one item always stays (a batch of no requests may not be a valid case)."""
    chunk = max(1, count(shrinker.current) // 2)
    while chunk >= 1 and not shrinker.exhausted:
        start = 0
        while start < count(shrinker.current) and not shrinker.exhausted:
            keep = np.ones(count(shrinker.current), dtype=bool)
            keep[start : start + chunk] = False
            if (keep_one and not keep.any()) or not shrinker.consider(without(shrinker.current, keep)):
                start += chunk
        chunk //= 2
