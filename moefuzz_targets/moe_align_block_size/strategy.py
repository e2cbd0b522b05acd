"""Cases of moe_align_block_size, drawn from the engine's routing tables and expert maps.

A routing table (sentinel -1 or E padding rows, skews with empty experts, M = 0 and M = 1 among
the token edges) is optionally rewritten into one of the extreme tables (every id -1, every item
on one expert); half of the cases then get an expert map with holes from the table's EP split.
block_size comes from the powers vLLM's configs use and from sizes that are not powers of two.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import strategies as st

from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.strategies import RoutingTable, routing_tables
from moefuzz.strategies.expert_map import expert_placements
from moefuzz_targets.moe_align_block_size.contract import MAX_TOKENS, MAX_TOPK

#: vLLM's BLOCK_SIZE_M values (fused_moe configs), sizes that are not powers of two and the
#: contract's largest.
BLOCK_SIZES = (16, 32, 64, 128, 256, 1, 3, 7, 24, 48, 100, 129, 1024)
#: Extreme rewrites of a drawn table: none, every id the -1 sentinel, every kept item on expert 0
#: or on the last expert (all tokens on one expert).
REWRITES = ("none", "none", "all_minus_one", "one_expert")
#: Largest E the strategy draws (the contract's).
MAX_DRAWN_EXPERTS = 1024


def rewrite_table(ids: np.ndarray, num_experts: int, rewrite: str, expert: int) -> np.ndarray:
    """``ids`` with every id -1 (``all_minus_one``), or every id in [0, E) replaced by
    ``expert`` (``one_expert``); unchanged for ``none``."""
    if rewrite == "all_minus_one":
        return np.full_like(ids, -1)
    if rewrite == "one_expert":
        return np.where((ids >= 0) & (ids < num_experts), expert, ids).astype(ids.dtype)
    return ids


@st.composite
def _cases(draw: st.DrawFn, limits: Limits) -> Case:
    table: RoutingTable = draw(
        routing_tables(
            max_tokens=min(MAX_TOKENS, limits.max_tokens),
            max_topk=min(MAX_TOPK, limits.max_topk),
            max_experts=min(MAX_DRAWN_EXPERTS, limits.max_experts),
        ),
        label="table",
    )
    rewrite = draw(st.sampled_from(REWRITES), label="rewrite")
    expert = draw(st.sampled_from((0, table.num_experts - 1)), label="one_expert")
    table = dataclasses.replace(table, topk_ids=rewrite_table(table.topk_ids, table.num_experts, rewrite, expert))
    arrays = {"topk_ids": table.topk_ids}
    if draw(st.booleans(), label="has_expert_map"):
        placement = draw(expert_placements(table), label="expert_map")
        arrays = {"topk_ids": placement.topk_ids, "expert_map": placement.expert_map}
    return Case(
        arrays,
        {
            "num_experts": table.num_experts,
            "block_size": draw(st.sampled_from(BLOCK_SIZES), label="block_size"),
            "pad_sorted_ids": draw(st.booleans(), label="pad_sorted_ids"),
        },
    )


def cases(limits: Limits) -> st.SearchStrategy[Case]:
    """moe_align_block_size cases within ``limits``: M up to ``limits.max_tokens``, K up to 8,
    E up to 512, block_size from :data:`BLOCK_SIZES`, with or without an expert map."""
    return _cases(limits)
