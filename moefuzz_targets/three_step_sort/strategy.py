"""Cases of three_step_sort, drawn from the engine's routing-table strategy.

The table becomes ``token_selected_experts``; its EP split becomes ``start_expert`` /
``end_expert``. Nothing is filtered: every routing table is a legal input of the contract.
"""

from __future__ import annotations

from hypothesis import strategies as st

from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.shrinking.routing import RoutingLayout
from moefuzz.strategies import RoutingTable, routing_tables
from moefuzz_targets.three_step_sort.contract import MAX_EXPERTS

LAYOUT = RoutingLayout(
    ids="token_selected_experts",
    num_experts="num_experts",
    start_expert="start_expert",
    end_expert="end_expert",
    sentinel=-1,  # the contract takes any id; -1 is outside every local range [s, e)
)


def to_case(table: RoutingTable) -> Case:
    """The three_step_sort case of a routing table."""
    return Case(
        {"token_selected_experts": table.topk_ids},
        {
            "num_experts": table.num_experts,
            "start_expert": table.start_expert,
            "end_expert": table.end_expert,
        },
    )


def cases(limits: Limits) -> st.SearchStrategy[Case]:
    """three_step_sort cases within ``limits``: any routing table (duplicates, skew, EP ranks,
    sentinel-padded rows) with T up to ``limits.max_tokens``, K up to 8, E up to 1024."""
    return routing_tables(
        max_tokens=limits.max_tokens,
        max_topk=min(8, limits.max_topk),
        max_experts=min(MAX_EXPERTS, limits.max_experts),
    ).map(to_case)
