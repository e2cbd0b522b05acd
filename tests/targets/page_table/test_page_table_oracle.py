"""page_table's torch oracle on paged caches worked out by hand, and against the strategy's own
numpy view of the pages (``PagedKVState.page_table``)."""

from __future__ import annotations

import numpy as np
import pytest

from moefuzz.execute.inprocess import oracle_outputs
from moefuzz.model.case import Case
from moefuzz.strategies import build_paged_kv_state
from moefuzz_targets.page_table.oracle import page_table_torch
from moefuzz_targets.page_table.strategy import table_case, to_case

G = 99  # garbage in a cell nobody owns (a stale slot of page 24)

# page_size 4, 8 pages (32 slots). Rows: 0 -> request 2, 1 -> request 0, 2 -> request 1, 3 -> request 3.
#   request 0: seq_len 8 (on a page boundary): pages 5, 2
#   request 1: seq_len 9 (one after a boundary): pages 3, 7, 1
#   request 2: seq_len 7 (one before a boundary): pages 6, 4
#   request 3: seq_len 0 (empty): no page
FULL = table_case(
    req_to_token=[
        [24, 25, 26, 27, 16, 17, 18, G, G, G, G, G],
        [20, 21, 22, 23, 8, 9, 10, 11, G, G, G, G],
        [12, 13, 14, 15, 28, 29, 30, 31, 4, G, G, G],
        [-1, 2**31 - 1, 0, G, G, G, G, G, G, G, G, G],
    ],
    req_pool_indices=[1, 2, 0, 3],
    seq_lens=[8, 9, 7, 0],
    page_size=4,
    num_pages=8,
)

# One request of seq_len 10 on full pages 5, 2, 7 (page_size 4); the SWA pool (4 pages) holds
# full page 5 as SWA page 3, page 2 as SWA page 1, page 7 as SWA page 2. Other entries are stale
# (13: an offset-1 slot of SWA page 3). Translating the page id instead would read mapping[7] = 13.
SWA_MAPPING = np.full(32, 13)
SWA_MAPPING[20:24] = [12, 13, 14, 15]  # full page 5 -> SWA page 3
SWA_MAPPING[8:12] = [4, 5, 6, 7]  # full page 2 -> SWA page 1
SWA_MAPPING[28:32] = [8, 9, 10, 11]  # full page 7 -> SWA page 2


def swa_case(sliding_window: int, seq_len: int = 10) -> Case:
    return table_case(
        req_to_token=[[20, 21, 22, 23, 8, 9, 10, 11, 28, 29, G, G]],
        req_pool_indices=[0],
        seq_lens=[seq_len],
        page_size=4,
        num_pages=8,
        max_pages=3,
        full_to_swa_index_mapping=SWA_MAPPING,
        sliding_window=sliding_window,
        swa_num_pages=4,
    )


def run_oracle(case: Case) -> dict[str, list]:
    return {name: value.tolist() for name, value in oracle_outputs(page_table_torch, case).items()}


def test_pages_on_one_before_and_one_after_a_boundary_and_an_empty_request_pad_with_page_zero():
    ref = run_oracle(FULL)
    assert ref["page_table"] == [[5, 2, 0], [3, 7, 1], [6, 4, 0], [0, 0, 0]]
    assert ref["kv_indptr"] == [0, 2, 5, 7, 7]
    assert ref["kv_indices"] == [5, 2, 3, 7, 1, 6, 4]


def test_a_table_wider_than_every_request_is_page_zero_past_their_pages():
    # seq_lens 4, 5, 1, 0 need 1, 2, 1, 0 pages; the table keeps max_pages=3 (every column of max_context)
    ref = run_oracle(FULL.replace({"seq_lens": np.array([4, 5, 1, 0], np.int64)}))
    assert ref["page_table"] == [[5, 0, 0], [3, 7, 0], [6, 0, 0], [0, 0, 0]]
    assert ref["kv_indptr"] == [0, 1, 3, 4, 4]
    assert ref["kv_indices"] == [5, 3, 7, 6]


def test_page_size_one_lists_every_slot_of_the_request():
    case = table_case(
        req_to_token=[[5, 9, 3, G]], req_pool_indices=[0], seq_lens=[3], page_size=1, num_pages=10, max_pages=4
    )
    ref = run_oracle(case)
    assert ref["page_table"] == [[5, 9, 3, 0]]
    assert ref["kv_indptr"] == [0, 3] and ref["kv_indices"] == [5, 9, 3]


@pytest.mark.parametrize(
    ("sliding_window", "table", "indices"),
    [
        (1, [0, 0, 2], [2]),  # window below a page: [9, 10) lies in page 2
        (3, [0, 1, 2], [1, 2]),  # below a page but across a boundary: [7, 10) starts in page 1
        (4, [0, 1, 2], [1, 2]),  # one page: [6, 10)
        (7, [3, 1, 2], [3, 1, 2]),  # above a page: [3, 10) starts in page 0
        (100, [3, 1, 2], [3, 1, 2]),  # above the request: every page
    ],
    ids=[
        "window-below-a-page",
        "window-below-a-page-across-a-boundary",
        "window-one-page",
        "window-above-a-page",
        "window-above-the-request",
    ],
)
def test_a_sliding_window_layer_lists_the_swa_pages_of_the_window_only(sliding_window, table, indices):
    ref = run_oracle(swa_case(sliding_window))
    assert ref["page_table"] == [table]
    assert ref["kv_indices"] == indices and ref["kv_indptr"] == [0, len(indices)]


def test_swa_translation_takes_the_token_location_then_divides():
    ref = run_oracle(swa_case(1))
    # page 2 starts at slot 28: mapping[28] // 4 = 8 // 4 = 2, where mapping[28 // 4] // ... = 13 would be wrong
    assert ref["page_table"][0][2] == SWA_MAPPING[28] // 4 == 2
    assert SWA_MAPPING[28 // 4] == 13


def test_an_empty_request_of_a_sliding_window_layer_has_no_page():
    ref = run_oracle(swa_case(4, seq_len=0))
    assert ref["page_table"] == [[0, 0, 0]] and ref["kv_indptr"] == [0, 0] and ref["kv_indices"] == []


def test_an_empty_batch_gives_one_indptr_entry():
    case = table_case(req_to_token=np.zeros((2, 3)), req_pool_indices=[], seq_lens=[], page_size=4, num_pages=2)
    ref = run_oracle(case.replace(max_pages=1))
    assert ref == {"page_table": [], "kv_indptr": [0], "kv_indices": []}


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("window", ["none", "below_page", "above_page"])
def test_the_oracle_agrees_with_the_strategy_page_view(seed: int, window: str):
    rng = np.random.default_rng(seed)
    page_size = int(rng.choice([1, 3, 16, 64]))
    seq_lens = rng.integers(0, 5 * page_size, size=int(rng.integers(1, 6))).tolist()
    state = build_paged_kv_state(
        page_size=page_size,
        prefix_lens=[int(s) // 2 for s in seq_lens],
        seq_lens=seq_lens,
        spare_pages=2,
        other_pages=1,
        pool_gaps=2,
        extra_context=page_size,
        free_order="shuffled",
        garbage="stale",
        window=window,
        seed=seed,
    )
    ref = oracle_outputs(page_table_torch, to_case(state, "batch_max"))
    pages = state.page_table()  # [B, max pages] full-cache pages, 0 past each request's pages
    if state.swa is None:
        np.testing.assert_array_equal(ref["page_table"], pages)
        return
    first_slots = pages * page_size  # the first slot of each full page
    swa_pages = state.swa.full_to_swa_index_mapping[first_slots] // page_size
    for i, seq_len in enumerate(seq_lens):
        first = max(seq_len - state.swa.sliding_window, 0) // page_size
        num = -(-seq_len // page_size)
        np.testing.assert_array_equal(ref["page_table"][i, first:num], swa_pages[i, first:num])
        assert not ref["page_table"][i, :first].any() and not ref["page_table"][i, num:].any()
