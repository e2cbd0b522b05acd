"""Public strategies of moefuzz, usable in a user's own ``@given`` tests.

Strategies (keyword-only parameters; every size is an upper bound):

``routing_tables(*, max_tokens=16384, min_tokens=0, max_topk=8, max_experts=512, expert_parallel=True, padding=True)``
    :class:`RoutingTable`: ``topk_ids`` [T, K] int32 global expert ids, ``num_experts`` E,
    ``start_expert`` / ``end_expert`` of EP rank ``ep_rank`` of ``ep_size``, built with
    duplicates inside a token's top-k, skewed and empty experts (:data:`SKEWS`) and sentinel
    rows (-1 or E, :data:`PADDING_MODES`); T favours :data:`TOKEN_EDGES`, E :data:`EXPERT_EDGES`.
``expert_placements(table)``
    :class:`ExpertPlacement` for a drawn routing table (use it in ``st.composite`` or
    ``.flatmap``): a rank's ``expert_map`` [E] int32 global -> local with -1 holes under
    vLLM's linear and round-robin placements or a scattered (EPLB-like) one
    (:data:`PLACEMENTS`, :data:`LOCAL_ORDERS`), and the table renumbered to match.
``recv_topk_tables(*, max_tokens=16384, max_topk=8, max_experts=512)``
    :class:`RecvTopk`: an EP rank's received table in local ids (-1: another rank's expert) and
    DeepEP's 128-aligned per-expert counts (:data:`ALIGNMENT`).
``dispatched_tables(*, max_tokens=16384, max_topk=8, max_experts=512)``
    :class:`DispatchedTable`: R source ranks (:data:`RANK_COUNTS`) padded to
    ``max_tokens_per_rank`` with a sentinel (:data:`SENTINELS`, :data:`FILLS`) after a
    one-sided dispatch, and the receiving rank's expert map.
``paged_kv_states(*, max_tokens=16384, max_batch=16, page_sizes=PAGE_SIZES, swa=True)``
    :class:`PagedKVState`: ``page_size`` (:data:`PAGE_SIZES`), ``num_pages`` (page 0 reserved),
    ``free_pages`` [F] int64 (:data:`FREE_ORDERS`), ``req_to_token`` [pool, max_context] int32
    with garbage in unowned cells (:data:`GARBAGE_MODES`), ``req_pool_indices``, ``prefix_lens``,
    ``seq_lens`` [B] int64 (:data:`LENGTH_SHAPES`; ``max_tokens`` bounds the sum of
    ``seq_lens``), and an optional :class:`SWAPool` (:data:`WINDOWS`). ``extended()`` and
    ``page_table()`` give the state after SGLang's ``alloc_extend``.

Each ``build_*`` function (:func:`build_routing_table`, :func:`build_paged_kv_state`...) builds
the same values from explicit structure and a seed, deterministically, for hand-written cases.
Under ``@given``, Hypothesis shrinks a failing example through the structure these strategies
draw (sizes, modes, seed; see each docstring); the fuzzer instead shrinks the concrete arrays
with the passes of ``moefuzz.shrinking``.

Example (the README's "Use the strategies in your own @given tests" has a complete one)::

    from hypothesis import given
    from moefuzz.strategies import routing_tables

    @given(routing_tables(max_tokens=1024))
    def test_my_sort(table):
        ...
"""

from moefuzz.strategies.dispatch import (
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
from moefuzz.strategies.expert_map import (
    LOCAL_ORDERS,
    PLACEMENTS,
    ExpertPlacement,
    build_expert_map,
    expert_placements,
    local_experts,
    place_experts,
)
from moefuzz.strategies.expert_parallel import (
    ALIGNMENT,
    RecvTopk,
    ScatterLayout,
    aligned_counts,
    local_topk_ids,
    recv_topk_tables,
    scatter_layout,
)
from moefuzz.strategies.paged_kv import (
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
from moefuzz.strategies.routing import (
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
