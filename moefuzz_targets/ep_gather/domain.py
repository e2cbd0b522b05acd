"""Input domain of ep_gather (see :mod:`moefuzz.model.domain`): N, K, E local, H, and the edges it
shares with ep_scatter (E local past 512 with most experts populated, all slots -1)."""

from __future__ import annotations

from moefuzz.model.domain import Dimension, Domain
from moefuzz.strategies.domains import TOKEN_VALUES, columns, not_multiple, param, received_points, rows
from moefuzz_targets.ep_gather.contract import MAX_EXPERTS, MAX_TOKENS, MAX_TOPK

#: H values the strategy draws at most (the contract sets no upper bound).
MAX_DRAWN_HIDDEN = 512

DOMAIN = Domain(
    dimensions=(
        Dimension("N", rows("recv_topk"), 0, MAX_TOKENS, TOKEN_VALUES, cap="max_tokens", note="received tokens"),
        Dimension("K", columns("recv_topk"), 1, MAX_TOPK, cap="max_topk"),
        Dimension("E_local", param("num_experts"), 1, MAX_EXPERTS, (256, 511, 512, 513), cap="max_experts"),
        Dimension(
            "H", columns("input_tensor"), 1, MAX_DRAWN_HIDDEN, (127, 128, 129), note="hidden size (drawn up to 512)"
        ),
    ),
    edges=(*received_points("recv_topk", MAX_EXPERTS), not_multiple(columns("input_tensor"), 128, "H%128!=0")),
)
