"""Input domain of moe_permute (see :mod:`moefuzz.model.domain`): T, K, E, E local, source ranks,
H, and the routing edges."""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.model.domain import Dimension, Domain
from moefuzz.strategies.domains import TOKEN_VALUES, columns, param, routing_points, rows
from moefuzz_targets.moe_permute.contract import MAX_EXPERTS, MAX_HIDDEN, MAX_TOKENS

IDS = "topk_ids"
#: Largest K the strategy draws (the contract takes 16).
MAX_DRAWN_TOPK = 8


def _local_ids(case: Case) -> np.ndarray:
    ids = case.arrays[IDS]
    mapping = case.arrays["expert_map"]
    num = mapping.shape[0]
    inside = (ids >= 0) & (ids < num)
    return np.where(inside, mapping[np.clip(ids, 0, max(num - 1, 0))], -1)


DOMAIN = Domain(
    dimensions=(
        Dimension("T", rows(IDS), 0, MAX_TOKENS, TOKEN_VALUES, cap="max_tokens", note="R * M rows"),
        Dimension("K", columns(IDS), 1, MAX_DRAWN_TOPK, cap="max_topk", note="drawn up to 8 (contract 16)"),
        Dimension("E", param("num_experts"), 1, MAX_EXPERTS, (256, 512), cap="max_experts"),
        Dimension("E_local", param("num_local_experts"), 1, MAX_EXPERTS, (256, 512), cap="max_experts"),
        Dimension("R", rows("num_tokens_per_rank"), 1, 64, (2, 8), note="source ranks"),
        Dimension("H", columns("hidden_states"), 1, MAX_HIDDEN, (100, 128, 136), note="hidden size"),
    ),
    edges=tuple(routing_points(IDS, param("num_local_experts"), _local_ids)),
)
