"""alloc_extend's torch oracle on batches worked out by hand, and against the paged KV strategy's
own numpy extend (``PagedKVState.extended``)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings

from moefuzz.strategies import PagedKVState, paged_kv_states
from moefuzz_targets.alloc_extend.contract import POISON_PAGE
from moefuzz_targets.alloc_extend.oracle import alloc_extend_torch
from moefuzz_targets.alloc_extend.strategy import free_pages_buffer, to_case


def run_oracle(page_size: int, prefix_lens, seq_lens, last_loc, free_pages) -> list[int]:
    inputs = {
        "prefix_lens": torch.tensor(prefix_lens, dtype=torch.int64),
        "seq_lens": torch.tensor(seq_lens, dtype=torch.int64),
        "last_loc": torch.tensor(last_loc, dtype=torch.int64),
        "free_pages": torch.from_numpy(free_pages_buffer(free_pages)),
    }
    out = alloc_extend_torch(inputs, {"page_size": page_size, "num_free": len(free_pages)})["out_indices"]
    assert out.dtype == torch.int64
    return out.tolist()


def test_a_prefix_ending_mid_page_finishes_its_page_then_takes_whole_then_partial_pages():
    # page_size 4; prefix of 6 tokens on pages [5, 2]: slots 20..23, 8, 9, so last_loc = 9.
    # seq 13: positions 6, 7 finish page 2 (slots 10, 11); 8..11 fill free page 7 (28..31);
    # 12 starts free page 3 (slot 12). Free page 1 is left.
    assert run_oracle(4, [6], [13], [9], [7, 3, 1]) == [10, 11, 28, 29, 30, 31, 12]


def test_a_prefix_ending_on_a_page_boundary_starts_a_free_page_at_once():
    # page_size 4; prefix of 8 tokens, the last on slot 23 = page 5 offset 3: page 5 is full.
    # seq 10: positions 8, 9 go to free page 6, offsets 0, 1.
    assert run_oracle(4, [8], [10], [23], [6, 2]) == [24, 25]


def test_an_empty_prefix_takes_pages_from_offset_zero():
    # last_loc -1; 5 tokens: free page 2 (8..11), then free page 9 offset 0 (36)
    assert run_oracle(4, [0], [5], [-1], [2, 9]) == [8, 9, 10, 11, 36]


def test_an_empty_extend_writes_nothing_and_takes_no_page():
    # request 0 extends nothing (prefix = seq = 6); request 1 (empty prefix, 3 tokens) takes the
    # first free page; request 2 (prefix 3 of page 4, slots 16..18) finishes page 4 with one slot.
    assert run_oracle(4, [6, 0, 3], [6, 3, 4], [13, -1, 18], [1, 7]) == [4, 5, 6, 19]


def test_requests_take_free_pages_in_batch_order():
    # page_size 2. r0: prefix 1 on page 3 (slot 6), seq 4 -> slot 7, then free[0]=5 (10, 11).
    # r1: prefix 2 on page 4 (slots 8, 9, full), seq 5 -> free[1]=1 (2, 3), free[2]=6 (12).
    # r2: prefix 0, seq 1 -> free[3]=2 (4).
    out = run_oracle(2, [1, 2, 0], [4, 5, 1], [6, 9, -1], [5, 1, 6, 2, 7])
    assert out == [7, 10, 11, 2, 3, 12, 4]


def test_page_size_one_hands_out_the_free_pages_themselves():
    # every prefix is page-aligned: nothing to finish, one page per new token
    assert run_oracle(1, [3, 0], [5, 2], [11, -1], [4, 9, 2, 6, 1]) == [4, 9, 2, 6]


def test_a_decode_batch_continues_partial_pages_and_opens_pages_after_full_ones():
    # page_size 4, one token each. r0: prefix 5 (last slot 12, page 3 has 1 of 4) -> 13.
    # r1: prefix 4 (last slot 31, page 7 full) -> free[0]=2 -> 8. r2: prefix 0 -> free[1]=5 -> 20.
    assert run_oracle(4, [5, 4, 0], [6, 5, 1], [12, 31, -1], [2, 5, 6]) == [13, 8, 20]


def test_an_empty_batch_gives_no_slots():
    assert run_oracle(16, [], [], [], []) == []


def test_the_poisoned_tail_of_the_free_list_is_never_used():
    # page_size 3. r0: empty prefix, 7 tokens: free pages 4, 2, 8 (12..14, 6..8, 24).
    # r1: prefix 3 fills page 1 (last slot 5); seq 5: free[3] = 6 (18, 19). The list is used up.
    out = run_oracle(3, [0, 3], [7, 5], [-1, 5], [4, 2, 8, 6])
    assert out == [12, 13, 14, 6, 7, 8, 24, 18, 19]
    assert all(slot // 3 != POISON_PAGE for slot in out)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(paged_kv_states(max_tokens=512, max_batch=8, swa=False))
def test_oracle_hands_out_the_slots_of_the_strategys_own_extend(state: PagedKVState):
    case = to_case(state)
    inputs = {name: torch.from_numpy(array) for name, array in case.arrays.items()}
    out = alloc_extend_torch(inputs, case.params)["out_indices"].numpy()
    after = state.extended()
    expected = [
        after.req_to_token[row, state.prefix_lens[i] : state.seq_lens[i]].astype(np.int64)
        for i, row in enumerate(state.req_pool_indices)
    ]
    np.testing.assert_array_equal(out, np.concatenate(expected) if expected else np.zeros(0, np.int64))
