"""page_table's shrink passes keep the paged layout and reach the smallest case that still shows
each bug's condition (checked here with plain numpy predicates, no kernel)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moefuzz.execute.inprocess import oracle_outputs
from moefuzz.model.case import Case
from moefuzz.shrinking import Shrinker, paging
from moefuzz.shrinking.passes import ShrinkPass
from moefuzz_targets.page_table import TARGET, contract
from moefuzz_targets.page_table.oracle import page_table_torch
from moefuzz_targets.page_table.shrink import _drop_leading, _page_size, _with_page_size, narrow_table
from tests.targets.page_table.test_page_table_kernels import state_case
from tests.targets.page_table.test_page_table_oracle import FULL, swa_case


def shrink_while(case: Case, holds: Callable[[Case], bool]) -> Case:
    assert holds(case)
    result = Shrinker(case, holds, TARGET.shrink_passes, TARGET.size, contract.check, budget_s=30).shrink()
    assert result.complete
    contract.check(result.case)
    return result.case


def trailing_cell_is_not_page_zero(case: Case) -> bool:
    """bug-trailing-entries shows: a cell past some request's pages translates to a page != 0
    (a slot outside the mapping counts: the bug reads out of bounds there)."""
    page_size, max_pages = int(case.params["page_size"]), int(case.params["max_pages"])
    mapping = case.arrays.get(contract.SWA_MAPPING)
    _, num = contract.table_spans(case)
    for i, row in enumerate(case.arrays["req_pool_indices"]):
        for page in range(int(num[i]), max_pages):
            slot = int(case.arrays["req_to_token"][row, page * page_size])
            if mapping is not None:
                slot = int(mapping[slot]) if 0 <= slot < mapping.size else -1
            if slot // page_size != 0:
                return True
    return False


def page_id_translation_differs(case: Case) -> bool:
    """bug-translate-page-ids shows: a window page where mapping[slot // page_size] is not
    mapping[slot] // page_size."""
    mapping = case.arrays.get(contract.SWA_MAPPING)
    if mapping is None:
        return False
    page_size = int(case.params["page_size"])
    first, num = contract.table_spans(case)
    for i, row in enumerate(case.arrays["req_pool_indices"]):
        slots = case.arrays["req_to_token"][row, np.arange(first[i], num[i]) * page_size].astype(np.int64)
        if (mapping[slots // page_size] != mapping[slots] // page_size).any():
            return True
    return False


def test_a_trailing_garbage_page_shrinks_to_one_empty_request_on_one_page_of_one_slot():
    small = shrink_while(state_case(11, window="above_page", seq_lens=[0, 47, 48, 6]), trailing_cell_is_not_page_zero)
    assert small.arrays["seq_lens"].tolist() == [0]
    assert small.arrays["req_to_token"].shape == (1, 1) and small.arrays["req_to_token"][0, 0] != 0
    assert contract.SWA_MAPPING not in small.arrays
    assert small.params == {"page_size": 1, "num_pages": 1, "max_pages": 1, "sliding_window": -1, "swa_num_pages": 0}


def test_a_page_id_translation_shrinks_to_one_token_of_one_window_page():
    small = shrink_while(state_case(12, window="random", page_size=16), page_id_translation_differs)
    assert small.arrays["seq_lens"].tolist() == [1]
    assert small.arrays["req_to_token"].shape == (1, 1)
    assert small.params["page_size"] in (2, 4, 8) and small.params["sliding_window"] == 1
    assert small.params["max_pages"] == 1
    assert small.params["num_pages"] == small.params["swa_num_pages"] == 2
    assert small.arrays[contract.SWA_MAPPING].shape == (2 * small.params["page_size"],)


def test_a_smaller_page_size_splits_every_page_and_keeps_the_slots():
    split = _with_page_size(FULL, 2)
    contract.check(split)
    assert (split.params["num_pages"], split.params["max_pages"]) == (16, 5)  # 9 tokens: 5 pages of 2
    ref = oracle_outputs(page_table_torch, split)
    assert ref["kv_indices"][:4].tolist() == [10, 11, 4, 5]  # request 0's pages 5, 2 of 4 slots, halved


def test_dropping_leading_pages_keeps_the_window_swa_pages():
    case = swa_case(4)  # seq_len 10, window [6, 10) on SWA pages 1, 2
    shorter = _drop_leading(case, 0, 1)
    contract.check(shorter)
    assert shorter.arrays["seq_lens"].tolist() == [6]
    np.testing.assert_array_equal(
        oracle_outputs(page_table_torch, shorter)["kv_indices"], oracle_outputs(page_table_torch, case)["kv_indices"]
    )


def test_swa_pools_compact_to_the_reserved_page_when_no_request_has_a_window_slot():
    case = swa_case(4, seq_len=0)
    small = shrink_while(case, lambda candidate: contract.SWA_MAPPING in candidate.arrays)
    assert small.params["swa_num_pages"] == 1 and small.params["num_pages"] == 1
    assert small.arrays["seq_lens"].tolist() == [0]


def test_a_table_one_column_wider_than_its_longest_request_is_found_in_one_accepted_candidate():
    case = state_case(11, page_size=1, extra_context=40)
    least = paging.pages(int(case.arrays["seq_lens"].max()), _page_size(case))
    assert (least, case.params["max_pages"]) == (48, 88)

    def one_garbage_column(candidate: Case) -> bool:
        return int(candidate.params["max_pages"]) > least

    # each accepted candidate of a crash costs a worker on a GPU: bisection from 88 took five
    shrinker = Shrinker(case, one_garbage_column, [ShrinkPass(narrow_table)], TARGET.size, contract.check, budget_s=30)
    result = shrinker.shrink()
    assert result.case.params["max_pages"] == least + 1
    assert result.accepted == 1 and result.candidates == 2
