"""moe_align_block_size's torch oracle on routing tables worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moefuzz_targets.moe_align_block_size.oracle import moe_align_block_size_torch


def run_oracle(ids, num_experts: int, block_size: int, pad: bool = False, expert_map=None, topk: int | None = None):
    table = np.array(ids, dtype=np.int32).reshape(len(ids), topk if topk is not None else len(ids[0]))
    inputs = {"topk_ids": torch.from_numpy(table)}
    if expert_map is not None:
        inputs["expert_map"] = torch.tensor(expert_map, dtype=torch.int32)
    params = {"num_experts": num_experts, "block_size": block_size, "pad_sorted_ids": pad}
    ref = moe_align_block_size_torch(inputs, params)
    return {name: value.tolist() for name, value in ref.items()}, ref


def test_vllm_docstring_example_with_an_empty_expert_zero():
    # flat ids [2, 3, 4, 1, 2, 4, 1, 3, 4, 1, 2, 3]; expert 0 empty (0 blocks), 1..4 three items each
    # expert 1: i=3, 6, 9 | expert 2: i=0, 4, 10 | expert 3: i=1, 7, 11 | expert 4: i=2, 5, 8
    # length = 12 + 5 * (4 - 1) = 27, 7 blocks; the sentinel is M * K = 12
    ref, _ = run_oracle([[2, 3, 4], [1, 2, 4], [1, 3, 4], [1, 2, 3]], num_experts=5, block_size=4)
    assert ref["sorted_token_ids"] == [3, 6, 9, 12, 0, 4, 10, 12, 1, 7, 11, 12, 2, 5, 8, 12] + [12] * 11
    assert ref["expert_ids"] == [1, 2, 3, 4, -1, -1, -1]
    assert ref["num_tokens_post_padded"] == [16]


def test_expert_map_renumbers_and_skips_minus_one_out_of_range_and_other_ranks():
    # expert_map: global 0 -> local 1, global 2 -> local 0, globals 1 and 3 on other ranks
    # flat: i0=0 (local 1), i1=-1 (skip), i2=3 (other rank), i3=2 (local 0), i4=5 (>= E), i5=0 (local 1)
    # local 0: [3] -> 2 slots | local 1: [0, 5] -> 2 slots; length = 6 + 4 * 1 = 10, 5 blocks
    ref, _ = run_oracle([[0, -1], [3, 2], [5, 0]], num_experts=4, block_size=2, expert_map=[1, -1, 0, -1])
    assert ref["sorted_token_ids"] == [3, 6, 0, 5, 6, 6, 6, 6, 6, 6]
    assert ref["expert_ids"] == [0, 1, -1, -1, -1]
    assert ref["num_tokens_post_padded"] == [4]


def test_fewer_items_than_experts_caps_the_buffer_at_numel_times_block_size():
    # numel 1 < E 8: length = min(1 * 16, 1 + 8 * 15) = 16, one block
    ref, _ = run_oracle([[7]], num_experts=8, block_size=16)
    assert ref["sorted_token_ids"] == [0] + [1] * 15
    assert ref["expert_ids"] == [7]
    assert ref["num_tokens_post_padded"] == [16]


def test_pad_sorted_ids_rounds_the_buffer_up_to_whole_blocks():
    # length = 3 + 2 * 3 = 9 -> 12 (3 blocks); expert 1: i=0, 2 | expert 0: i=1
    ref, _ = run_oracle([[1, 0, 1]], num_experts=2, block_size=4, pad=True)
    assert ref["sorted_token_ids"] == [1, 3, 3, 3, 0, 2, 3, 3, 3, 3, 3, 3]
    assert ref["expert_ids"] == [0, 1, -1]
    assert ref["num_tokens_post_padded"] == [8]


def test_a_table_of_minus_one_rows_keeps_nothing():
    ref, _ = run_oracle([[-1, -1], [-1, -1]], num_experts=3, block_size=2)
    assert ref["num_tokens_post_padded"] == [0]
    assert ref["sorted_token_ids"] == [4] * 7
    assert ref["expert_ids"] == [-1] * 4


@pytest.mark.parametrize("expert_map", [None, [-1, -1, -1]], ids=["no-map", "no-local-expert"])
def test_no_tokens_gives_empty_buffers_and_zero_total(expert_map):
    ref, tensors = run_oracle([], num_experts=3, block_size=16, expert_map=expert_map, topk=2)
    assert ref == {"sorted_token_ids": [], "expert_ids": [], "num_tokens_post_padded": [0]}
    assert all(t.dtype == torch.int32 for t in tensors.values())


@pytest.mark.parametrize("seed", [0, 1])
def test_outputs_are_mutually_consistent_on_random_tables(seed: int):
    rng = np.random.default_rng(seed)
    table = rng.integers(-1, 12, size=(41, 3), dtype=np.int32)
    block_size, num_experts = 5, 10
    _, ref = run_oracle(table.tolist(), num_experts=num_experts, block_size=block_size)
    total = int(ref["num_tokens_post_padded"])
    sorted_ids, expert_ids = ref["sorted_token_ids"], ref["expert_ids"]
    flat = torch.from_numpy(table.reshape(-1)).long()
    # every kept item once, in the block of its expert; every other slot is the sentinel
    items = sorted_ids[:total][sorted_ids[:total] < flat.numel()].long()
    assert torch.equal(torch.sort(items).values, torch.nonzero((flat >= 0) & (flat < num_experts)).flatten())
    positions = torch.nonzero(sorted_ids < flat.numel()).flatten()
    assert torch.equal(expert_ids[positions // block_size].long(), flat[sorted_ids[positions].long()])
    assert total % block_size == 0 and bool((sorted_ids[total:] == flat.numel()).all())
    assert bool((expert_ids[total // block_size :] == -1).all())
    assert torch.equal(expert_ids[: total // block_size], torch.sort(expert_ids[: total // block_size]).values)
