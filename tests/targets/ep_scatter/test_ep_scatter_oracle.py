"""ep_scatter's torch oracle on received tables worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import torch

from moefuzz.strategies.expert_parallel import aligned_counts, scatter_layout
from moefuzz_targets.ep_scatter.oracle import ep_scatter_torch


def run_oracle(recv_topk, recv_x, num_experts: int, dtype: str = "bf16", recv_x_scale=None):
    topk = np.array(recv_topk, dtype=np.int32)
    x = np.array(recv_x, dtype=np.float32)
    scale = np.zeros((x.shape[0], 0), np.float32) if recv_x_scale is None else np.array(recv_x_scale, np.float32)
    inputs = {
        "recv_x": torch.from_numpy(x),
        "recv_x_scale": torch.from_numpy(scale),
        "recv_topk": torch.from_numpy(topk),
        "num_recv_tokens_per_expert": torch.from_numpy(aligned_counts(topk, num_experts)),
    }
    return ep_scatter_torch(inputs, {"dtype": dtype, "num_experts": num_experts})


def real_rows(output: torch.Tensor) -> dict[int, list[float]]:
    """The rows that are not NaN padding, by row number."""
    return {r: output[r].tolist() for r in range(output.shape[0]) if not math.isnan(output[r, 0])}


def test_items_fill_their_experts_aligned_segments_in_token_then_k_order():
    # t0: [1, -1]  t1: [0, 1]  t2: [1, 1] (expert 1 twice: two items)     E = 3
    # expert 0: (1,0)                    n=1 -> aligned 128, rows [0, 128), item takes row 0
    # expert 1: (0,0) (1,1) (2,0) (2,1)  n=4 -> aligned 128, rows [128, 256): 128, 129, 130, 131
    # expert 2: nothing                  n=0 -> aligned 0, starts at 256;  M = 256
    ref = run_oracle([[1, -1], [0, 1], [1, 1]], [[1.0], [2.0], [3.0]], num_experts=3)
    assert ref["output_index"].tolist() == [[128, -1], [0, 129], [130, 131]]
    assert ref["m_indices"].tolist() == [0] * 128 + [1] * 128
    assert ref["expert_start_loc"].tolist() == [1, 132, 256]  # start + n: the cursor after the call
    assert real_rows(ref["output_tensor"]) == {0: [2.0], 128: [1.0], 129: [2.0], 130: [3.0], 131: [3.0]}
    assert ref["output_tensor"].shape == (256, 1)
    assert ref["output_index"].dtype == torch.int32 and ref["m_indices"].dtype == torch.int32


def test_129_items_of_one_expert_spill_into_a_second_block_and_fp8_scales_follow_their_rows():
    # 129 tokens, K = 1, all on expert 0 of E = 2: aligned 256 rows, rows 0..128 real.
    x = np.full((129, 2), 0.5, np.float32)
    x[:, 0] = np.resize(np.array([1.0, -2.0, 448.0], np.float32), 129)  # exact in e4m3
    scale = np.arange(129, dtype=np.float32)[:, None] / 1024
    ref = run_oracle(np.zeros((129, 1)), x, num_experts=2, dtype="fp8", recv_x_scale=scale)
    assert ref["output_index"][:, 0].tolist() == list(range(129))
    assert ref["m_indices"].tolist() == [0] * 256
    assert ref["expert_start_loc"].tolist() == [129, 256]
    assert torch.equal(ref["output_tensor"][:129], torch.from_numpy(x))
    assert torch.equal(ref["output_tensor_scale"][:129], torch.from_numpy(scale))
    assert torch.isnan(ref["output_tensor"][129:]).all()


def test_no_tokens_gives_no_rows_and_cursors_at_zero():
    ref = run_oracle(np.zeros((0, 4)), np.zeros((0, 3)), num_experts=2)
    assert ref["expert_start_loc"].tolist() == [0, 0]
    assert ref["m_indices"].tolist() == []
    assert ref["output_index"].shape == (0, 4)
    assert ref["output_tensor"].shape == (0, 3)


def test_all_minus_one_rows_place_nothing():
    ref = run_oracle([[-1, -1], [-1, -1]], [[1.0], [2.0]], num_experts=4)
    assert ref["output_index"].tolist() == [[-1, -1], [-1, -1]]
    assert ref["expert_start_loc"].tolist() == [0, 0, 0, 0]
    assert ref["output_tensor"].shape == (0, 1)


def test_the_strategies_numpy_layout_is_the_oracles():
    rng = np.random.default_rng(0)
    topk = rng.integers(-1, 5, size=(300, 3)).astype(np.int32)
    ref = run_oracle(topk, rng.random((300, 2)), num_experts=5)
    layout = scatter_layout(topk, 5)
    assert np.array_equal(layout.output_index, ref["output_index"].numpy())
    assert np.array_equal(layout.expert_start + layout.counts, ref["expert_start_loc"].numpy())
    assert layout.num_rows == ref["m_indices"].numel()
