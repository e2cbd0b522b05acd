"""Quality: a real failing case of a bug model, shrunk with the real kernel on the CPU (every
candidate run in a worker, as a campaign shrinks), reaches the bug model's hand-made minimum in
the target's size order (``benchmarks/bug_models``).

The GPU benchmark's shrinks ended one move short of two of these minimums: three_step_sort's
needed the -1 sentinel (``replace_duplicates_with_sentinel``, ``retire_experts``), paged_decode's
a cache without relayout's unnamed poison page (``drop_unnamed_pages``). A crash finding's
shrink ran out of budget instead: every accepted candidate crashes, and on a GPU each crash costs
a worker, so there the count of accepted candidates is what a shrink costs.
"""

from __future__ import annotations

import pytest

from benchmarks.bug_models import bug_model
from moefuzz.model.case import Case
from moefuzz.model.registry import get_target
from moefuzz.runtime.isolation import Executor
from moefuzz.shrinking import ShrinkResult
from moefuzz.shrinking.finding import minimize_finding
from moefuzz.store.corpus import Finding
from moefuzz.strategies import build_routing_table
from moefuzz_targets.three_step_sort.strategy import to_case
from tests.targets.moe_permute.test_moe_permute_shrink import big_case
from tests.targets.paged_decode.test_paged_decode_shrink import CASE as PAGED_WINDOW_CASE

pytestmark = pytest.mark.slow

#: Seconds a shrink may take; each ends at a fixed point well within it (about 20 s and 5 s).
BUDGET_S = 120.0


def shrink_on_cpu(target_name: str, kernel: str, case: Case) -> tuple[ShrinkResult, Finding]:
    """Run ``case`` on ``kernel`` in a worker, then minimize the finding it gives."""
    target = get_target(target_name)
    with Executor(target_name, kernel, "cpu", spare=False) as executor:
        outcome = executor.run(case)
        assert outcome.failed, f"{target_name}:{kernel} passes the starting case"
        finding = Finding(
            target_name, kernel, outcome.kind, outcome.detail, outcome.message, case, case, outcome.mismatch
        )
        return minimize_finding(finding, target, executor, budget_s=BUDGET_S), finding


def test_a_duplicate_topk_failure_shrinks_to_one_repeat_among_257_tokens_of_one_expert():
    model = bug_model("three_step_sort", "bug-duplicate-topk")
    routing = build_routing_table(
        num_tokens=300,
        topk=4,
        num_experts=16,
        ep_rank=1,
        ep_size=2,
        skew="zipf",
        duplicates="few",
        padding="none",
        sentinel=-1,
        seed=3,
    )
    case = to_case(routing)
    assert model.triggered(case)
    result, finding = shrink_on_cpu(model.target, model.kernel, case)
    assert result.complete
    # (T, K, E, duplicates, distinct rows, E_local, sum |ids|) = (257, 2, 1, 1, 2, 1, 256)
    assert result.size == get_target(model.target).size(model.minimum_case)
    assert finding.signature == "divergence:expert_first_token_offset"
    assert model.triggered(finding.case)


def test_a_window_off_by_one_failure_shrinks_to_two_positions_on_a_two_page_cache():
    model = bug_model("paged_decode", "bug-window-off-by-one")
    case = PAGED_WINDOW_CASE  # four requests, wild garbage, a window of 3
    assert model.triggered(case)
    result, finding = shrink_on_cpu(model.target, model.kernel, case)
    assert result.complete
    # (B, Hq, Hkv, sum L, D, page_size, num_pages, max_pages, window on, W, garbage)
    assert result.size == get_target(model.target).size(model.minimum_case) == (1, 1, 1, 2, 1, 1, 2, 2, 1, 1, 0)
    assert finding.case.arrays["page_table"].tolist() == [[0, 1]]


def test_an_out_of_bounds_sentinel_crash_shrinks_to_one_padded_row_in_few_accepted_candidates():
    model = bug_model("moe_permute", "bug-sentinel-minus-one-oob")
    target = get_target(model.target)
    case = target.derive(big_case())  # 8 ranks of 60 rows, K = 4, E = 64, -1 padding
    result, finding = shrink_on_cpu(model.target, model.kernel, case)
    assert finding.signature == "crash:out-of-bounds-load"
    assert result.complete and result.size == target.size(model.minimum_case)
    # each accepted candidate is a crash, a worker on a GPU: 19 before M' = 1, one top-k slot
    # and one expert were tried first
    assert result.accepted <= 10
