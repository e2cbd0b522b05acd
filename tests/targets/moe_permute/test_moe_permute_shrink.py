"""moe_permute's shrink passes keep the padded-rank layout and reach the smallest case that
still shows a condition (checked here with plain predicates, no kernel)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.shrinking import Shrinker
from moefuzz.shrinking.routing import later_duplicates
from moefuzz.strategies.dispatch import build_dispatched_table, padded_rows
from moefuzz_targets.moe_permute import TARGET, contract, shrink
from moefuzz_targets.moe_permute.strategy import dispatched_case, to_case


def big_case(**structure) -> Case:
    fields = dict(
        num_ranks=8,
        max_tokens_per_rank=60,
        topk=4,
        num_experts=64,
        ep_rank=7,
        placement="linear",
        fill="uneven",
        sentinel_kind="minus_one",
        duplicates="few",
        seed=9,
    )
    fields.update(structure)
    return to_case(build_dispatched_table(**fields), hidden_size=100)


def shrink_while(case: Case, holds: Callable[[Case], bool]) -> tuple[Case, list[str]]:
    """Shrink ``case`` as long as ``holds``; also return the check errors of every candidate."""
    refused: list[str] = []

    def check(candidate: Case) -> None:
        try:
            contract.check(candidate)
        except CaseError as exc:
            refused.append(str(exc))
            raise

    assert holds(case)
    shrinker = Shrinker(case, holds, TARGET.shrink_passes, TARGET.size, check, budget_s=30, derive=TARGET.derive)
    result = shrinker.shrink()
    assert result.complete
    return result.case, refused


def padded(case: Case) -> np.ndarray:
    return padded_rows(case.arrays["num_tokens_per_rank"], int(case.params["max_tokens_per_rank"]))


def minus_one_padding_reads_a_local_entry(case: Case) -> bool:
    return case.params["sentinel"] == -1 and bool(padded(case).any()) and case.arrays["expert_map"][-1] >= 0


def test_the_seed_bug_shape_shrinks_to_one_padded_row_over_one_local_expert():
    small, refused = shrink_while(big_case(), minus_one_padding_reads_a_local_entry)
    assert refused == []  # every candidate kept the layout
    assert small.arrays["topk_ids"].tolist() == [[-1]]
    assert small.arrays["expert_map"].tolist() == [0]
    assert small.arrays["num_tokens_per_rank"].tolist() == [0]
    assert small.arrays["hidden_states"].shape == (1, 1)
    assert small.params == {"num_experts": 1, "num_local_experts": 1, "max_tokens_per_rank": 1, "sentinel": -1}


def test_a_condition_on_real_tokens_and_an_empty_rank_keeps_just_those():
    def holds(case: Case) -> bool:
        ids, expert_map = case.arrays["topk_ids"], case.arrays["expert_map"]
        real = ids[~padded(case)].reshape(-1)
        real = real[(real >= 0) & (real < expert_map.shape[0])]
        return bool((expert_map[real] == 0).any()) and bool((case.arrays["num_tokens_per_rank"] == 0).any())

    small, refused = shrink_while(big_case(fill="empty_ranks", sentinel_kind="non_local", seed=3), holds)
    assert refused == []
    assert small.arrays["topk_ids"].shape == (2, 1)
    assert sorted(small.arrays["num_tokens_per_rank"].tolist()) == [0, 1]
    assert small.params["num_experts"] == 2  # the local expert, and the non-local sentinel expert
    assert small.arrays["expert_map"][small.params["sentinel"]] == -1


def test_a_repeated_expert_in_a_real_token_keeps_two_slots_of_one_token():
    def holds(case: Case) -> bool:
        return bool((later_duplicates(case.arrays["topk_ids"]) & ~padded(case)[:, None]).any())

    small, refused = shrink_while(big_case(duplicates="one", sentinel_kind="num_experts"), holds)
    assert refused == []
    assert small.arrays["topk_ids"].shape == (1, 2)
    assert small.arrays["topk_ids"][0, 0] == small.arrays["topk_ids"][0, 1]


def test_truncating_from_the_end_keeps_the_padding_and_drops_the_first_tokens():
    case = dispatched_case([[[0], [1], [0]], [[1]]], [0, 1], sentinel=-1, max_tokens_per_rank=4)
    kept = shrink._keep_rows(case, 2, from_end=True)
    # rank 0 [0, 1, 0, pad] keeps [0, pad]; rank 1 [1, pad, pad, pad] keeps [pad, pad]
    assert kept.arrays["topk_ids"].reshape(-1).tolist() == [0, -1, -1, -1]
    assert kept.arrays["num_tokens_per_rank"].tolist() == [1, 0]
    contract.check(contract.derive(kept))


def test_dropping_experts_renumbers_ids_local_ids_and_an_out_of_range_sentinel():
    # globals 0..4; 1 and 3 unused; local: 4 -> 0, 0 -> 1; sentinel E = 5
    case = dispatched_case([[[4, 0], [2, 4]], []], [1, -1, -1, -1, 0], sentinel=5)
    dropped = contract.derive(shrink._drop_experts(case, np.array([1, 3])))
    assert dropped.arrays["expert_map"].tolist() == [1, -1, 0]
    assert dropped.arrays["topk_ids"].tolist() == [[2, 0], [1, 2], [3, 3], [3, 3]]
    assert dropped.params["sentinel"] == 3 and dropped.params["num_experts"] == 3
    contract.check(dropped)
