"""ep_scatter's shrink pass beyond the routing ones: fewer hidden columns.

The engine's :func:`~moefuzz.shrinking.routing.hidden_pass` bisects the hidden size; this module
says how to cut an ep_scatter case to ``h`` columns: recv_x's first ``h`` and the per-128 scales
of fp8 rows that cover them.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking.routing import hidden_pass
from moefuzz_targets.ep_scatter.contract import scale_columns


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


SCATTER_HIDDEN_PASS = hidden_pass(_scatter_hidden, _cut_scatter)
