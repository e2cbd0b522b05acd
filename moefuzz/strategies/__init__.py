"""Public strategies of moefuzz, usable in a user's own ``@given`` tests.

- routing tables (``routing_tables``): [T, K] expert ids with duplicates, skew, EP ranks and
  sentinel padding, built from drawn structure;
- expert maps (``expert_placements``): a rank's global -> local map with holes, under vLLM's
  linear and round-robin placements or a scattered (EPLB-like) one;
- expert-parallel receive tables (``recv_topk_tables``): local ids with -1 for other ranks, and
  the 128-aligned per-expert counts of DeepEP;
- one-sided dispatch (``dispatched_tables``): R source ranks padded to the same length with a
  sentinel, and the receiving rank's expert map;
- paged KV caches (``paged_kv_states``): page size, free-page list, ``req_to_token`` with
  garbage in unowned cells, a batch of requests to extend, and an optional SWA pool.

Example::

    from hypothesis import given
    from moefuzz.strategies import routing_tables

    @given(routing_tables(max_tokens=1024))
    def test_my_sort(table):
        ...
"""

from moefuzz.strategies._dispatch import (
    FILLS,
    RANK_COUNTS,
    RECEIVERS,
    SENTINELS,
    DispatchedTable,
    build_dispatched_table,
    dispatched_tables,
    padded_rows,
    padding_sentinel,
    tokens_per_rank,
)
from moefuzz.strategies._expert_map import (
    LOCAL_ORDERS,
    PLACEMENTS,
    ExpertPlacement,
    build_expert_map,
    expert_placements,
    local_experts,
    place_experts,
)
from moefuzz.strategies._expert_parallel import (
    ALIGNMENT,
    RecvTopk,
    ScatterLayout,
    aligned_counts,
    local_topk_ids,
    recv_topk_tables,
    scatter_layout,
)
from moefuzz.strategies._paged_kv import (
    CAPACITY_SLACKS,
    FREE_ORDERS,
    GARBAGE_MODES,
    LENGTH_SHAPES,
    PAGE_SIZES,
    WINDOWS,
    PagedKVState,
    SWAPool,
    build_paged_kv_state,
    paged_kv_states,
)
from moefuzz.strategies._routing import (
    DUPLICATE_MODES,
    EXPERT_EDGES,
    PADDING_MODES,
    SKEWS,
    TOKEN_EDGES,
    RoutingTable,
    between,
    build_routing_table,
    edge_sizes,
    local_expert_range,
    routing_tables,
)

__all__ = [
    "ALIGNMENT",
    "CAPACITY_SLACKS",
    "DUPLICATE_MODES",
    "EXPERT_EDGES",
    "FILLS",
    "FREE_ORDERS",
    "GARBAGE_MODES",
    "LENGTH_SHAPES",
    "LOCAL_ORDERS",
    "PADDING_MODES",
    "PAGE_SIZES",
    "PLACEMENTS",
    "RANK_COUNTS",
    "RECEIVERS",
    "SENTINELS",
    "SKEWS",
    "TOKEN_EDGES",
    "WINDOWS",
    "DispatchedTable",
    "ExpertPlacement",
    "PagedKVState",
    "RecvTopk",
    "RoutingTable",
    "SWAPool",
    "ScatterLayout",
    "aligned_counts",
    "between",
    "build_dispatched_table",
    "build_expert_map",
    "build_paged_kv_state",
    "build_routing_table",
    "dispatched_tables",
    "edge_sizes",
    "expert_placements",
    "local_expert_range",
    "local_experts",
    "local_topk_ids",
    "padded_rows",
    "padding_sentinel",
    "paged_kv_states",
    "place_experts",
    "recv_topk_tables",
    "routing_tables",
    "scatter_layout",
    "tokens_per_rank",
]
