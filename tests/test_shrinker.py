"""The shrink driver and routing passes reach small reproducers (pure predicates, no workers)."""

import dataclasses

import numpy as np

from benchmarks.bug_models import bug_model
from moefuzz.model.case import Case
from moefuzz.shrinking import Shrinker
from moefuzz.shrinking.routing import SENTINEL_PASSES, later_duplicates, routing_passes
from moefuzz.strategies import build_routing_table
from moefuzz_targets.moe_align_block_size import TARGET as ALIGN
from moefuzz_targets.three_step_sort import TARGET
from moefuzz_targets.three_step_sort.strategy import LAYOUT, to_case

#: (T, K, E, duplicates, distinct rows, E_local, sum |ids|) of one [0, 0] and 256 rows [0, -1].
DUPLICATE_TOPK_MINIMUM = TARGET.size(bug_model("three_step_sort", "bug-duplicate-topk").minimum_case)


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


def three_step_path_with_local_duplicate(case: Case) -> bool:
    return case.arrays["token_selected_experts"].shape[0] > 256 and bool(local_duplicates(case).any())


def shrink(case, predicate, budget_s=60.0):
    assert predicate(case)
    return Shrinker(case, predicate, TARGET.shrink_passes, TARGET.size, TARGET.check, budget_s).shrink()


def test_seed_bug_predicate_shrinks_to_257_tokens_with_one_duplicated_expert():
    result = shrink(seed_like_case(), three_step_path_with_local_duplicate)
    ids = result.case.arrays["token_selected_experts"]
    assert ids.shape == (257, 2)
    assert local_duplicates(result.case).sum() == 1
    assert len(np.unique(ids, axis=0)) == 2  # one plain row repeated, one row with the repeat
    assert result.case.params["num_experts"] == 1
    assert result.size == DUPLICATE_TOPK_MINIMUM
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


def table_case(rows: list[tuple[list[int], int]], num_experts: int, start: int, end: int) -> Case:
    """A three_step_sort case of ``count`` copies of each ``row``, in order."""
    ids = np.array([row for row, count in rows for _ in range(count)], dtype=np.int32)
    return Case({"token_selected_experts": ids}, {"num_experts": num_experts, "start_expert": start, "end_expert": end})


def test_a_sentinel_replaces_duplicates_where_no_other_expert_exists():
    every_row_repeats = table_case([([0, 0], 257)], num_experts=1, start=0, end=1)
    without_sentinel = dataclasses.replace(LAYOUT, sentinel=None)
    stuck = Shrinker(
        every_row_repeats,
        three_step_path_with_local_duplicate,
        routing_passes(without_sentinel),
        TARGET.size,
        TARGET.check,
        30.0,
    ).shrink()
    assert stuck.complete and stuck.size == (257, 2, 1, 257, 1, 1, 0)  # E = 1: no expert to swap in

    result = shrink(every_row_repeats, three_step_path_with_local_duplicate)
    assert result.complete and result.size == DUPLICATE_TOPK_MINIMUM
    ids = result.case.arrays["token_selected_experts"]
    assert sorted(map(tuple, np.unique(ids, axis=0).tolist())) == [(0, -1), (0, 0)]


def test_retiring_experts_lowers_e_when_every_expert_is_in_use():
    # the fuzzer's GPU reproducer shape: 256 rows over a non-local and a local expert, one repeat
    two_experts_in_use = table_case([([0, 2], 256), ([1, 1], 1)], num_experts=3, start=1, end=3)
    result = shrink(two_experts_in_use, three_step_path_with_local_duplicate)
    assert result.complete and result.size == DUPLICATE_TOPK_MINIMUM
    assert result.passes["retire_experts"][1] >= 1


def test_only_a_layout_with_a_sentinel_gets_the_passes_that_write_it():
    names = [p.name for p in routing_passes(LAYOUT)]
    assert set(SENTINEL_PASSES) <= set(names)
    plain = [p.name for p in routing_passes(dataclasses.replace(LAYOUT, sentinel=None))]
    assert not set(SENTINEL_PASSES) & set(plain)
    assert plain == [name for name in names if name not in SENTINEL_PASSES]


def smem_launch_fails(case: Case) -> bool:
    """The bug-cuda-smem-experts model's failed launch: the small-batch kernel's shared memory,
    ((threads + 1) * E + E + 2) ints, over 48 KiB; from E = 97 on, whatever the ids."""
    experts = int(case.params["num_experts"])
    threads = (max(experts, 32) + 31) // 32 * 32
    return case.arrays["topk_ids"].size < 1024 and ((threads + 1) * experts + experts + 2) * 4 > 48 * 1024


def test_a_failure_that_needs_many_experts_but_uses_few_shrinks_to_the_fewest_that_fail():
    ids = np.array([[203, 5, 17], [88, 203, 150], [0, 1, 2]], dtype=np.int32)
    expert_map = np.where(np.arange(204) % 2 == 0, np.arange(204) // 2, -1).astype(np.int32)
    case = Case(
        {"topk_ids": ids, "expert_map": expert_map}, {"num_experts": 204, "block_size": 16, "pad_sorted_ids": True}
    )
    result = Shrinker(case, smem_launch_fails, ALIGN.shrink_passes, ALIGN.size, ALIGN.check, 60.0).shrink()
    assert result.case.params["num_experts"] == 97
    assert result.case.arrays["topk_ids"].shape == (0, 1) and "expert_map" not in result.case.arrays  # no token needed
    assert result.passes["lower_experts"][1] >= 1


def test_lowering_experts_keeps_every_expert_local_when_all_were():
    def needs_wide_local_range(case: Case) -> bool:
        return int(case.params["end_expert"]) - int(case.params["start_expert"]) >= 300

    wide = table_case([([511, 3], 4), ([7, 200], 2)], num_experts=512, start=0, end=512)
    result = shrink(wide, needs_wide_local_range)
    assert (result.case.params["num_experts"], result.case.params["end_expert"]) == (300, 300)


def test_a_candidate_a_flaky_test_dropped_once_runs_again_in_a_confirming_round():
    dropped_once: set[str] = set()

    def flaky_verdict(case: Case) -> bool:  # needs E >= 300; each candidate is wrongly dropped at its first run
        if case.digest() not in dropped_once:
            dropped_once.add(case.digest())
            return case.params["num_experts"] == 512
        return int(case.params["end_expert"]) - int(case.params["start_expert"]) >= 300

    wide = table_case([([511, 3], 4), ([7, 200], 2)], num_experts=512, start=0, end=512)
    once = Shrinker(wide, flaky_verdict, TARGET.shrink_passes, TARGET.size, TARGET.check, 60.0).shrink()
    assert once.complete and once.case.params["num_experts"] == 512  # every smaller one was dropped
    dropped_once.clear()
    confirmed = Shrinker(wide, flaky_verdict, TARGET.shrink_passes, TARGET.size, TARGET.check, 60.0, confirm_rounds=2)
    result = confirmed.shrink()
    assert result.complete and result.case.params["num_experts"] == 300
