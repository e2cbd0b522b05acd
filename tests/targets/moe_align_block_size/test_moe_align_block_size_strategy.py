"""Expert maps with holes, moe_align_block_size's cases, and its map-aware shrink passes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.shrinking import Shrinker
from moefuzz.strategies import build_routing_table
from moefuzz.strategies.expert_map import PLACEMENTS, place_experts
from moefuzz_targets.moe_align_block_size import TARGET, contract, shrink


def table(num_experts: int = 10, ep_rank: int = 1, ep_size: int = 3, skew: str = "uniform", seed: int = 0):
    return build_routing_table(
        num_tokens=50,
        topk=3,
        num_experts=num_experts,
        ep_rank=ep_rank,
        ep_size=ep_size,
        skew=skew,
        duplicates="none",
        padding="tail",
        sentinel=-1,
        seed=seed,
    )


def test_linear_placement_maps_the_contiguous_range_and_keeps_the_ids():
    routing = table()  # E=10 over 3 ranks: rank 1 owns 4..6
    placed = place_experts(routing, "linear", "ascending", seed=0)
    assert placed.expert_map.tolist() == [-1, -1, -1, -1, 0, 1, 2, -1, -1, -1]
    np.testing.assert_array_equal(placed.topk_ids, routing.topk_ids)


def test_round_robin_placement_owns_every_rth_expert():
    placed = place_experts(table(), "round_robin", "ascending", seed=0)
    assert placed.expert_map.tolist() == [-1, 0, -1, -1, 1, -1, -1, 2, -1, -1]


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("local_order", ["ascending", "shuffled"])
def test_every_placement_keeps_which_items_are_local_and_numbers_local_ids_once(placement: str, local_order: str):
    routing = table(skew="zipf", seed=3)
    placed = place_experts(routing, placement, local_order, seed=7)
    ids = placed.topk_ids
    was_local = (routing.topk_ids >= routing.start_expert) & (routing.topk_ids < routing.end_expert)
    is_local = (ids >= 0) & (placed.expert_map[np.clip(ids, 0, 9)] >= 0)
    if placement == "none":
        assert placed.num_local_experts == 0 and not is_local.any()
    else:
        np.testing.assert_array_equal(is_local, was_local)
        assert placed.num_local_experts == routing.end_expert - routing.start_expert
    np.testing.assert_array_equal(ids == -1, routing.topk_ids == -1)  # sentinels untouched
    local = np.sort(placed.expert_map[placed.expert_map >= 0])
    np.testing.assert_array_equal(local, np.arange(local.size))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(TARGET.strategy(Limits(max_tokens=300, max_topk=8, max_experts=64)))
def test_drawn_cases_meet_the_contract(case: Case):
    contract.check(case)
    assert case.arrays["topk_ids"].shape[0] <= 300


def run_pass(run, case: Case, fails=lambda candidate: True) -> Case:
    shrinker = Shrinker(case, fails, [], shrink.size, contract.check, budget_s=30)
    run(shrinker)
    return shrinker.current


def map_case(ids, expert_map, block_size: int = 16) -> Case:
    return Case(
        {"topk_ids": np.array(ids, np.int32), "expert_map": np.array(expert_map, np.int32)},
        {"num_experts": len(expert_map), "block_size": block_size, "pad_sorted_ids": True},
    )


def test_compact_experts_carries_the_expert_map_along():
    # used experts 2, 5, 7 of 9 -> 0, 1, 2; their map entries [3, -1, 0] -> local ids [1, -1, 0]
    case = map_case([[5, -1], [9, 2], [7, 2]], expert_map=[-1, 1, 3, -1, -1, -1, 2, 0, -1])
    shrunk = run_pass(shrink.compact_experts, case)
    assert shrunk.params["num_experts"] == 3
    assert shrunk.arrays["topk_ids"].tolist() == [[1, -1], [3, 0], [2, 0]]
    assert shrunk.arrays["expert_map"].tolist() == [1, -1, 0]


def test_compact_experts_keeps_a_one_expert_map_when_nothing_is_routed():
    shrunk = run_pass(shrink.compact_experts, map_case([[-1], [4]], expert_map=[0, -1, 1, -1]))
    assert shrunk.params["num_experts"] == 1
    assert shrunk.arrays["topk_ids"].tolist() == [[-1], [1]]
    assert shrunk.arrays["expert_map"].tolist() == [-1]


def test_retiring_experts_writes_the_minus_one_sentinel_and_carries_the_expert_map_along():
    # experts 2, 5, 7 in use; the failure needs a local item of expert 7 (map entry 0)
    case = map_case([[5, 7], [2, 7], [7, 2]], expert_map=[-1, 1, 3, -1, -1, -1, 2, 0, -1])
    retire = next(p.run for p in TARGET.shrink_passes if p.name == "retire_experts")

    def local_seven(candidate: Case) -> bool:
        ids, expert_map = candidate.arrays["topk_ids"], candidate.arrays["expert_map"]
        return bool(((ids >= 0) & (expert_map[np.clip(ids, 0, ids.max(initial=0))] == 0)).any())

    shrunk = run_pass(retire, case, local_seven)
    assert shrunk.params["num_experts"] == 1
    assert shrunk.arrays["topk_ids"].tolist() == [[-1, 0], [-1, 0], [0, -1]]
    assert shrunk.arrays["expert_map"].tolist() == [0]


def test_parameter_passes_drop_the_map_lower_the_block_and_the_padding():
    case = map_case([[0]], expert_map=[0], block_size=100)
    assert "expert_map" not in run_pass(shrink.drop_expert_map, case).arrays
    assert run_pass(shrink.lower_block_size, case).params["block_size"] == 1
    needs_big_blocks = run_pass(shrink.lower_block_size, case, lambda c: c.params["block_size"] >= 20)
    assert needs_big_blocks.params["block_size"] == 32
    assert run_pass(shrink.unpad_sorted_ids, case).params["pad_sorted_ids"] is False
    assert shrink.size(case) > shrink.size(run_pass(shrink.drop_expert_map, case))
