"""Input domain of moe_align_block_size (see :mod:`moefuzz.model.domain`): M tokens, K, E,
block_size, the expert map, and the routing edges."""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.model.domain import Dimension, Domain, Point
from moefuzz.strategies.domains import TOKEN_VALUES, columns, param, param_is, routing_points, rows
from moefuzz_targets.moe_align_block_size.contract import MAX_BLOCK_SIZE, MAX_EXPERTS, MAX_TOKENS, MAX_TOPK

IDS = "topk_ids"


def _local_experts(case: Case) -> int:
    mapping = case.arrays.get("expert_map")
    return int(case.params["num_experts"]) if mapping is None else int((mapping >= 0).sum())


def _local_ids(case: Case) -> np.ndarray:
    ids = case.arrays[IDS]
    mapping = case.arrays.get("expert_map")
    if mapping is None:
        return ids
    num = int(case.params["num_experts"])
    inside = (ids >= 0) & (ids < num)
    return np.where(inside, mapping[np.clip(ids, 0, max(num - 1, 0))], -1)


DOMAIN = Domain(
    dimensions=(
        Dimension("M", rows(IDS), 0, MAX_TOKENS, TOKEN_VALUES, cap="max_tokens", note="tokens"),
        Dimension("K", columns(IDS), 1, MAX_TOPK, cap="max_topk"),
        Dimension("E", param("num_experts"), 1, MAX_EXPERTS, (256, 512), cap="max_experts"),
        Dimension("block_size", param("block_size"), 1, MAX_BLOCK_SIZE, (16, 128, 129)),
    ),
    edges=(
        *routing_points(IDS, _local_experts, _local_ids),
        Point("with expert_map", lambda case: "expert_map" in case.arrays),
        param_is("pad_sorted_ids", True),
    ),
)
