"""Input domain of ep_scatter (see :mod:`moefuzz.model.domain`): N, K, E local, H, dtype, and the
edges a real kernel breaks at (E local past 512 with most experts populated, H off the 128 grid,
item counts either side of the 128 alignment)."""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.model.domain import Dimension, Domain, Point
from moefuzz.strategies.domains import TOKEN_VALUES, columns, dense_point, not_multiple, param, param_is, rows
from moefuzz_targets.ep_scatter.contract import MAX_EXPERTS, MAX_TOKENS, MAX_TOPK

#: H values the strategy draws at most (the contract sets no upper bound).
MAX_DRAWN_HIDDEN = 512


def _ids(case: Case) -> np.ndarray:
    return case.arrays["recv_topk"]


def _alignment_edge(case: Case) -> bool:
    """Some expert holds 127, 128 or 129 items."""
    ids = _ids(case)
    counts = np.bincount(ids[ids >= 0].astype(np.int64), minlength=1)
    return bool(np.isin(counts, (127, 128, 129)).any())


def routing_edges(experts_param: str = "num_experts") -> list[Point]:
    """Edges ep_scatter and ep_gather share (their recv_topk and E local)."""
    experts = param(experts_param)
    return [
        dense_point("E_local>512, >=90% populated", _ids, experts, 513, note="a prefix sized for 512 experts"),
        dense_point(f"E_local={MAX_EXPERTS}, >=90% populated", _ids, experts, MAX_EXPERTS),
        Point("all slots -1", lambda case: bool(_ids(case).size) and bool((_ids(case) < 0).all())),
        Point("an expert with 127/128/129 items", _alignment_edge, "either side of the 128 alignment"),
    ]


DOMAIN = Domain(
    dimensions=(
        Dimension("N", rows("recv_topk"), 0, MAX_TOKENS, TOKEN_VALUES, cap="max_tokens", note="received tokens"),
        Dimension("K", columns("recv_topk"), 1, MAX_TOPK, cap="max_topk"),
        Dimension("E_local", param("num_experts"), 1, MAX_EXPERTS, (256, 511, 512, 513), cap="max_experts"),
        Dimension("H", columns("recv_x"), 1, MAX_DRAWN_HIDDEN, (127, 128, 129), note="hidden size (drawn up to 512)"),
    ),
    edges=(
        *routing_edges(),
        not_multiple(columns("recv_x"), 128, "H%128!=0"),
        param_is("dtype", "bf16"),
        param_is("dtype", "fp8"),
    ),
)
