"""Shrink passes of the expert-parallel targets beyond the routing ones: fewer hidden columns.

``truncate_hidden`` works on any case whose token rows have a hidden axis; a target hands it
the function that cuts its case to ``h`` columns (and whatever depends on H, like the per-128
scales of fp8 rows).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking.passes import ShrinkPass
from moefuzz.shrinking.shrinker import Shrinker
from moefuzz_targets.ep_scatter.contract import scale_columns


def truncate_hidden(shrinker: Shrinker, hidden: Callable[[Case], int], cut: Callable[[Case, int], Case]) -> None:
    """Keep the fewest leading hidden columns that still fail, found by bisection (1 first)."""
    low, high = 0, hidden(shrinker.current)  # `high` columns fail; `low` not known to
    while high - low > 1 and not shrinker.exhausted:
        mid = 1 if low == 0 else (low + high) // 2
        if shrinker.consider(cut(shrinker.current, mid)):
            high = mid
        else:
            low = mid


def _scatter_hidden(case: Case) -> int:
    return int(case.arrays["recv_x"].shape[1])


def _cut_scatter(case: Case, hidden: int) -> Case:
    """recv_x's first ``hidden`` columns and the scales that cover them."""
    columns = scale_columns(hidden, str(case.params["dtype"]))
    return case.replace(
        {
            "recv_x": np.ascontiguousarray(case.arrays["recv_x"][:, :hidden]),
            "recv_x_scale": np.ascontiguousarray(case.arrays["recv_x_scale"][:, :columns]),
        }
    )


SCATTER_HIDDEN_PASS = ShrinkPass("truncate_hidden", lambda s: truncate_hidden(s, _scatter_hidden, _cut_scatter))
