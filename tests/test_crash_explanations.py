"""A crash has no mismatch to read: the paging targets name the request and page whose garbage a
faulting kernel could have read, so a crash reproducer says where to look."""

from __future__ import annotations

import numpy as np

from moefuzz_targets.page_table import contract as page_table_contract
from moefuzz_targets.page_table.strategy import table_case
from moefuzz_targets.paged_decode import contract as paged_decode_contract
from moefuzz_targets.paged_decode.strategy import paged_case


def test_a_page_table_crash_names_the_trailing_cell_outside_the_cache() -> None:
    case = table_case(
        req_to_token=[[4, 5, 2**31 - 1, 7], [8, 9, 10, 11]],
        req_pool_indices=[0, 1],
        seq_lens=[2, 4],
        page_size=2,
        num_pages=6,
    )
    assert page_table_contract.explain_crash(case) == (
        "request 0 page 1: req_to_token[0, 2]=2147483647 past seq_len=2 is outside the cache's 12 slots: "
        "a kernel that reads it faults"
    )


def test_a_page_table_without_wild_cells_has_no_crash_explanation() -> None:
    case = table_case(req_to_token=[[4, 5, 6, 7]], req_pool_indices=[0], seq_lens=[2], page_size=2, num_pages=6)
    assert page_table_contract.explain_crash(case) == ""


def test_a_paged_decode_crash_names_the_garbage_page_id_past_the_request() -> None:
    cache = np.zeros((3, 1, 1, 2), dtype=np.float32)
    case = paged_case(
        q=np.zeros((1, 1, 2), dtype=np.float32),
        k_cache=cache,
        v_cache=cache,
        page_table=[[1, 2147483599]],
        cache_seqlens=[1],
    )
    first, second = paged_decode_contract.explain_crash(case).splitlines()
    assert first == (
        "request 0 page 1: page_table[0, 1]=2147483599 past its 1 page(s) is outside pages 0..2: "
        "a kernel that loads it faults"
    )
    assert second.startswith("request 0: L=1, page_size=1, page_table[0] = [1]")
