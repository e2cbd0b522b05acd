"""ep_scatter's shrink pass beyond the routing ones: fewer hidden columns, with their scales.

The bisection is :func:`moefuzz_targets.shared.hidden.truncate_hidden`, shared with ep_gather.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking.passes import ShrinkPass
from moefuzz_targets.ep_scatter.contract import scale_columns
from moefuzz_targets.shared.hidden import truncate_hidden


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
