"""The shrink driver and routing passes reach small reproducers (pure predicates, no workers)."""

import numpy as np

from moefuzz.case import Case
from moefuzz.shrinking import Shrinker
from moefuzz.shrinking.routing import later_duplicates
from moefuzz.strategies import build_routing_table
from targets.three_step_sort import TARGET
from targets.three_step_sort.strategy import to_case


def seed_like_case(num_tokens=1500, duplicates="many", seed=5, ep_size=4, ep_rank=1):
    table = build_routing_table(
        num_tokens=num_tokens,
        topk=8,
        num_experts=256,
        ep_rank=ep_rank,
        ep_size=ep_size,
        skew="zipf",
        duplicates=duplicates,
        padding="none",
        sentinel=-1,
        seed=seed,
    )
    return to_case(table)


def local_duplicates(case: Case) -> np.ndarray:
    ids = case.arrays["token_selected_experts"]
    start, end = case.params["start_expert"], case.params["end_expert"]
    return later_duplicates(ids) & (ids >= start) & (ids < end)


def shrink(case, predicate, budget_s=60.0):
    assert predicate(case)
    return Shrinker(case, predicate, TARGET.shrink_passes, TARGET.size, TARGET.check, budget_s).shrink()


def test_seed_bug_predicate_shrinks_to_257_tokens_with_one_duplicated_expert():
    def three_step_path_with_local_duplicate(case):
        return case.arrays["token_selected_experts"].shape[0] > 256 and bool(local_duplicates(case).any())

    result = shrink(seed_like_case(), three_step_path_with_local_duplicate)
    ids = result.case.arrays["token_selected_experts"]
    assert ids.shape == (257, 2)
    assert local_duplicates(result.case).sum() == 1
    assert len(np.unique(ids, axis=0)) == 2  # one plain row repeated, one row with the repeat
    assert result.case.params["num_experts"] <= 2
    assert result.complete


def test_shrinking_keeps_only_what_the_failure_needs():
    def uses_expert_above_100_in_slot_3(case):
        ids = case.arrays["token_selected_experts"]
        return ids.shape[1] > 3 and bool((ids[:, 3] > 100).any())

    result = shrink(seed_like_case(num_tokens=300, duplicates="none"), uses_expert_above_100_in_slot_3)
    ids = result.case.arrays["token_selected_experts"]
    assert ids.shape == (1, 4)
    assert ids[0, 3] > 100


def test_candidates_the_contract_rejects_are_never_run():
    ran = []

    def predicate(case):
        TARGET.check(case)  # raises if an invalid candidate got through
        ran.append(case)
        return True

    shrink(seed_like_case(num_tokens=40), predicate)
    assert ran


def test_shrinking_stops_when_the_budget_is_spent():
    result = shrink(seed_like_case(), lambda case: True, budget_s=0.0)
    assert not result.complete
    assert result.candidates == 0


def test_every_accepted_candidate_is_reported_in_order_of_shrinking_size():
    seen = []
    case = seed_like_case(num_tokens=100)
    Shrinker(case, lambda c: True, TARGET.shrink_passes, TARGET.size, TARGET.check, 30.0, seen.append).shrink()
    sizes = [TARGET.size(c) for c in seen]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
