"""moe_permute's torch oracle on padded one-sided dispatch tables worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moefuzz_targets.moe_permute.oracle import moe_permute_torch


def run_oracle(ids, expert_map, hidden=None, top_k: int | None = None):
    table = np.array(ids, dtype=np.int32).reshape(len(ids), top_k if top_k is not None else len(ids[0]))
    mapping = np.array(expert_map, dtype=np.int32)
    rows = np.zeros((table.shape[0], 1), np.float32) if hidden is None else np.array(hidden, np.float32)
    inputs = {"topk_ids": torch.from_numpy(table), "expert_map": torch.from_numpy(mapping)}
    inputs["hidden_states"] = torch.from_numpy(rows)
    ref = moe_permute_torch(inputs, {"num_local_experts": int((mapping >= 0).sum())})
    return {name: value.tolist() for name, value in ref.items()}, ref


def test_round_robin_rank_skips_remote_experts_and_minus_one_padding():
    # R=2 ranks, M=2 rows each, rank 1 of 2 under round robin: globals 1, 3 are local 0, 1.
    # rank 0: t0 [3, 1], t1 [0, 3] | rank 1: t2 [1, 2], t3 padding [-1, -1]
    # items i = t*K + k: i0=3 (L1) i1=1 (L0) i2=0 (-) i3=3 (L1) i4=1 (L0) i5=2 (-) i6, i7 = -1 (pad)
    # local 0: i1, i4 | local 1: i0, i3
    hidden = [[0, 1], [10, 11], [20, 21], [30, 31]]
    ref, _ = run_oracle([[3, 1], [0, 3], [1, 2], [-1, -1]], [-1, 0, -1, 1], hidden)
    assert ref["expert_first_token_offset"] == [0, 2, 4]
    assert ref["permuted_idx"] == [1, 4, 0, 3, -1, -1, -1, -1]
    assert ref["inv_permuted_idx"] == [2, 0, -1, 3, 1, -1, -1, -1]
    # rows of tokens i // K: 0, 2, 0, 1
    assert ref["permuted_hidden_states"][:4] == [[0, 1], [20, 21], [0, 1], [10, 11]]


def test_out_of_range_sentinel_is_never_looked_up_even_when_the_last_expert_is_local():
    # R=3 ranks, M=1; this rank (2 of 3, linear) owns global 2 only; rank 1 sent nothing (pad = E = 3)
    ref, _ = run_oracle([[2], [3], [0]], [-1, -1, 0])
    assert ref["expert_first_token_offset"] == [0, 1]
    assert ref["permuted_idx"] == [0, -1, -1]
    assert ref["inv_permuted_idx"] == [0, -1, -1]


def test_scattered_map_orders_by_local_id_and_keeps_a_repeated_expert_twice():
    # local 0 = global 2, local 1 = global 0, local 2 = global 4; one rank, M=2, no padding
    # t0 [4, 2, 2] (2 twice), t1 [0, 1, 4]: i0=4 (L2) i1=2 (L0) i2=2 (L0) i3=0 (L1) i4=1 (-) i5=4 (L2)
    ref, _ = run_oracle([[4, 2, 2], [0, 1, 4]], [1, -1, 0, -1, 2])
    assert ref["expert_first_token_offset"] == [0, 2, 3, 5]
    assert ref["permuted_idx"] == [1, 2, 3, 0, 5, -1]
    assert ref["inv_permuted_idx"] == [3, 0, 1, 2, -1, 4]


def test_ids_below_minus_one_and_past_num_experts_are_not_local():
    ref, _ = run_oracle([[-7, 0], [2, 9]], [0, -1])
    assert ref["expert_first_token_offset"] == [0, 1]
    assert ref["permuted_idx"] == [1, -1, -1, -1]


def test_no_rows_gives_zero_offsets_and_empty_maps():
    ref, tensors = run_oracle([], [0, 1, -1], top_k=4)
    assert ref["expert_first_token_offset"] == [0, 0, 0]
    assert ref["permuted_idx"] == [] and tensors["permuted_idx"].dtype == torch.int32
    assert tensors["expert_first_token_offset"].dtype == torch.int64


def test_a_rank_owning_no_expert_gets_one_zero_offset():
    ref, _ = run_oracle([[0, 1]], [-1, -1])
    assert ref["expert_first_token_offset"] == [0]
    assert ref["inv_permuted_idx"] == [-1, -1]


@pytest.mark.parametrize("seed", [0, 1])
def test_outputs_are_mutually_consistent_on_random_tables(seed: int):
    rng = np.random.default_rng(seed)
    expert_map = np.full(12, -1, np.int32)
    expert_map[rng.choice(12, size=5, replace=False)] = rng.permutation(5)
    table = rng.integers(-2, 14, size=(37, 4), dtype=np.int32)
    hidden = rng.standard_normal((37, 3)).astype(np.float32)
    _, ref = run_oracle(table.tolist(), expert_map.tolist(), hidden.tolist())
    offsets = ref["expert_first_token_offset"]
    perm, inv = ref["permuted_idx"], ref["inv_permuted_idx"]
    n_local = int(offsets[-1])
    local = np.where((table >= 0) & (table < 12), expert_map[np.clip(table, 0, 11)], -1).reshape(-1)
    assert n_local == int((local >= 0).sum())
    # inverse round trip, counts per expert, rows grouped by expert and stable in i
    assert torch.equal(inv[perm[:n_local].long()], torch.arange(n_local, dtype=torch.int32))
    experts = torch.from_numpy(local)[perm[:n_local].long()]
    assert torch.equal(torch.diff(offsets), torch.bincount(experts, minlength=5))
    keys = experts * 10_000 + perm[:n_local].long()
    assert torch.equal(keys, torch.sort(keys).values)
    assert torch.equal(ref["permuted_hidden_states"][:n_local], torch.from_numpy(hidden)[perm[:n_local].long() // 4])
