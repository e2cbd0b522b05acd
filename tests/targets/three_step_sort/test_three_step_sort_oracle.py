"""The three-step sort's torch oracle on routing tables worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moefuzz_targets.three_step_sort.oracle import three_step_sort_torch


def run_oracle(ids: list[list[int]], num_experts: int, start: int, end: int, top_k: int | None = None):
    table = np.array(ids, dtype=np.int32).reshape(len(ids), top_k if top_k is not None else len(ids[0]))
    params = {"num_experts": num_experts, "start_expert": start, "end_expert": end}
    ref = three_step_sort_torch({"token_selected_experts": torch.from_numpy(table)}, params)
    return {name: value.tolist() for name, value in ref.items()}, ref


def test_duplicate_expert_in_topk_is_its_own_item_and_sentinels_are_not_local():
    # t=0: [2, 0]   t=1: [1, 1] (expert 1 twice)   t=2: [-1, 2] (-1: no expert)
    # unpermuted rows u = k * T + t: u0=(0,0) u1=(1,0) u2=(2,0) u3=(0,1) u4=(1,1) u5=(2,1)
    # expert 0: u3 | expert 1: u1, u4 | expert 2: u0, u5 | expert 3: none
    ref, _ = run_oracle([[2, 0], [1, 1], [-1, 2]], num_experts=4, start=0, end=4)
    assert ref["expert_first_token_offset"] == [0, 1, 3, 5, 5]
    assert ref["permuted_row_to_unpermuted_row"] == [3, 1, 4, 0, 5, -1]
    assert ref["permuted_token_selected_experts"] == [0, 1, 1, 2, 2, -1]
    assert ref["unpermuted_row_to_permuted_row"] == [3, 1, -1, 0, 2, 4]


def test_partial_expert_range_keeps_local_ids_and_drops_ids_beyond_num_experts():
    # local experts 4, 5 -> local 0, 1; 7 is another rank's, 9 >= E is nobody's
    # u0=(0,0):5 u1=(1,0):4 u2=(0,1):4 u3=(1,1):9 u4=(0,2):7 u5=(1,2):5
    ref, _ = run_oracle([[5, 4, 7], [4, 9, 5]], num_experts=8, start=4, end=6)
    assert ref["expert_first_token_offset"] == [0, 2, 4]
    assert ref["permuted_row_to_unpermuted_row"] == [2, 1, 0, 5, -1, -1]
    assert ref["permuted_token_selected_experts"] == [0, 0, 1, 1, -1, -1]
    assert ref["unpermuted_row_to_permuted_row"] == [2, 1, 0, -1, -1, 3]


def test_one_expert_three_times_in_one_token_takes_three_rows_in_k_order():
    ref, _ = run_oracle([[1, 1, 1]], num_experts=2, start=0, end=2)
    assert ref["expert_first_token_offset"] == [0, 0, 3]
    assert ref["permuted_row_to_unpermuted_row"] == [0, 1, 2]
    assert ref["permuted_token_selected_experts"] == [1, 1, 1]
    assert ref["unpermuted_row_to_permuted_row"] == [0, 1, 2]


def test_no_tokens_gives_zero_offsets_and_empty_maps():
    ref, tensors = run_oracle([], num_experts=3, start=0, end=3, top_k=4)
    assert ref["expert_first_token_offset"] == [0, 0, 0, 0]
    for name in ("permuted_row_to_unpermuted_row", "unpermuted_row_to_permuted_row"):
        assert ref[name] == []
        assert tensors[name].dtype == torch.int32


def test_empty_local_range_gives_one_zero_offset_and_nothing_specified():
    ref, _ = run_oracle([[2], [3]], num_experts=4, start=2, end=2)
    assert ref["expert_first_token_offset"] == [0]
    assert ref["permuted_row_to_unpermuted_row"] == [-1, -1]
    assert ref["unpermuted_row_to_permuted_row"] == [-1, -1]


@pytest.mark.parametrize("seed", [0, 1])
def test_outputs_are_mutually_consistent_on_random_tables(seed: int):
    rng = np.random.default_rng(seed)
    table = rng.integers(-1, 12, size=(37, 5), dtype=np.int32)
    _, ref = run_oracle(table.tolist(), num_experts=10, start=3, end=9)
    offsets = ref["expert_first_token_offset"]
    p2u, u2p = ref["permuted_row_to_unpermuted_row"], ref["unpermuted_row_to_permuted_row"]
    n_local = int(offsets[-1])
    assert offsets.dtype == torch.int64
    assert n_local == int(((table >= 3) & (table < 9)).sum())
    assert torch.equal(u2p[p2u[:n_local].long()], torch.arange(n_local, dtype=torch.int32))
    # offsets' differences are the per-expert counts, and rows are grouped by expert
    experts = ref["permuted_token_selected_experts"][:n_local]
    assert torch.equal(torch.diff(offsets), torch.bincount(experts.long(), minlength=6))
    assert torch.equal(experts, torch.sort(experts).values)
