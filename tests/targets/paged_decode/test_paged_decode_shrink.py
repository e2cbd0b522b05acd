"""paged_decode's shrink passes: relayout keeps the output, and the passes reach the smallest case
of a failure condition (a pure predicate here: no kernel runs)."""

from __future__ import annotations

import numpy as np
import pytest

from moefuzz.execute.inprocess import oracle_outputs
from moefuzz.model.case import Case
from moefuzz.shrinking import Shrinker
from moefuzz.strategies import build_paged_kv_state
from moefuzz_targets.paged_decode import contract, shrink
from moefuzz_targets.paged_decode.oracle import paged_decode_torch
from moefuzz_targets.paged_decode.strategy import decode_case

STATE = build_paged_kv_state(
    page_size=4,
    prefix_lens=[5, 0, 3, 10],
    seq_lens=[9, 0, 4, 11],
    spare_pages=2,
    other_pages=1,
    pool_gaps=1,
    extra_context=0,
    free_order="shuffled",
    garbage="wild",
    window="none",
    seed=5,
)
CASE = decode_case(STATE, num_kv_heads=2, group_size=2, head_dim=8, extra_columns=2, seed=6).replace(sliding_window=3)


def ref_o(case: Case) -> np.ndarray:
    return oracle_outputs(paged_decode_torch, case)["o"]


@pytest.mark.parametrize("page_size", [1, 3, 4, 16])
def test_relayout_keeps_every_requests_output(page_size: int):
    moved = shrink.relayout(CASE, page_size)
    contract.check(moved)
    assert moved.arrays["k_cache"].shape[1] == page_size
    np.testing.assert_array_equal(ref_o(moved), ref_o(CASE))
    np.testing.assert_array_equal(ref_o(moved.replace(sliding_window=0)), ref_o(CASE.replace(sliding_window=0)))


def test_relayout_numbers_pages_in_order_of_use_and_maps_garbage_by_where_it_pointed():
    # L = 9, 0, 4, 11 on page_size 4: 3, 0, 1 and 3 pages (CASE's); the cache has 11 pages
    table = [[8, 7, 10, -1, 99], [0, 7, 2**31 - 1, 0, 3], [2, 6, 1, 1, 0], [4, 3, 5, 6, 6]]
    case = CASE.replace({"page_table": np.array(table, np.int32)})
    contract.check(case)
    moved = shrink.relayout(case, 4)
    # new pages 1..3 (request 0), 4 (request 2), 5..7 (request 3); 8 pages with page 0.
    # Garbage: negative ids stay, ids past the cache keep their distance past it (99 - 11 + 8),
    # ids of the old cache become 0 (a NaN page now).
    assert moved.arrays["page_table"].tolist() == [
        [1, 2, 3, -1, 96],
        [0, 0, 2**31 - 1 - 11 + 8, 0, 0],
        [4, 0, 0, 0, 0],
        [5, 6, 7, 0, 0],
    ]
    assert np.isnan(moved.arrays["k_cache"][0]).all() and np.isfinite(moved.arrays["k_cache"][1:]).all()


def test_size_orders_requests_first_then_heads_lengths_dims_and_pages():
    one = shrink.relayout(CASE, 1)
    assert shrink.size(one) < shrink.size(CASE)  # page size 1 < 4, all else equal before it
    fewer = CASE.replace({name: CASE.arrays[name][:1] for name in ("q", "page_table", "cache_seqlens")})
    assert shrink.size(fewer) < shrink.size(one)
    assert shrink.size(CASE.replace(sliding_window=0)) < shrink.size(CASE)


def window_bug_condition(case: Case) -> bool:
    """What bug-window-off-by-one needs: a window shorter than some request."""
    window = int(case.params["sliding_window"])
    return window > 0 and bool((case.arrays["cache_seqlens"] > window).any())


def garbage_condition(case: Case) -> bool:
    """A garbage entry outside the cache (what crashes the trailing-pages bug on a GPU)."""
    table, num_pages = case.arrays["page_table"], case.arrays["k_cache"].shape[0]
    garbage = table[shrink._trailing(case)]
    return bool(((garbage < 0) | (garbage >= num_pages)).any())


def run_shrinker(condition) -> Case:
    shrinker = Shrinker(CASE, condition, shrink.passes(), shrink.size, contract.check, budget_s=30)
    result = shrinker.shrink()
    assert result.complete
    return result.case


def test_passes_shrink_a_window_failure_to_one_head_two_positions_on_two_pages_and_w_1():
    case = run_shrinker(window_bug_condition)
    # the bug model's hand minimum: relayout's poison page 0 is dropped once nothing names it
    assert shrink.size(case) == (1, 1, 1, 2, 1, 1, 2, 2, 1, 1, 0)
    assert case.arrays["cache_seqlens"].tolist() == [2] and case.params["sliding_window"] == 1
    assert case.arrays["page_table"].tolist() == [[0, 1]]


def test_passes_shrink_a_garbage_failure_to_one_position_and_one_wild_entry():
    case = run_shrinker(garbage_condition)
    # one request with one position on a page of size 1, the window dropped, one garbage column
    assert shrink.size(case)[:6] == (1, 1, 1, 1, 1, 1)
    assert case.params["sliding_window"] == 0
    # the one page of a one-page cache, one garbage column outside it: the trailing-pages minimum
    assert shrink.size(case) == (1, 1, 1, 1, 1, 1, 1, 2, 0, 0, 1)
    assert case.arrays["page_table"].shape == (1, 2) and case.arrays["page_table"][0, 0] == 0
    assert not 0 <= case.arrays["page_table"][0, 1] < case.arrays["k_cache"].shape[0]


def test_dropping_unnamed_pages_renumbers_every_entry_and_keeps_every_requests_output():
    # L = 9, 0, 4, 11 on page_size 4 over an 11-page cache; pages 0 and 9 are named by no entry
    table = [[8, 7, 10, -1, 99], [1, 7, 2**31 - 1, 1, 3], [2, 6, 1, 1, 1], [4, 3, 5, 6, 6]]
    case = CASE.replace({"page_table": np.array(table, np.int32)})
    contract.check(case)
    assert shrink._unnamed_pages(case).tolist() == [0, 9]
    dropped = shrink._without_pages(case, shrink._unnamed_pages(case))
    contract.check(dropped)
    assert dropped.arrays["k_cache"].shape[0] == 9
    # pages 1..8 -> 0..7, page 10 -> 8; ids past the cache keep their distance past it (99 - 2)
    assert dropped.arrays["page_table"].tolist() == [
        [7, 6, 8, -1, 97],
        [0, 6, 2**31 - 1 - 2, 0, 2],
        [1, 5, 0, 0, 0],
        [3, 2, 4, 5, 5],
    ]
    np.testing.assert_array_equal(ref_o(dropped), ref_o(case))
    np.testing.assert_array_equal(dropped.arrays["v_cache"][8], case.arrays["v_cache"][10])
