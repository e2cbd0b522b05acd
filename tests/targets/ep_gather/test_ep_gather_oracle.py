"""ep_gather's torch oracle on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import torch

from moefuzz_targets.ep_gather.oracle import ep_gather_torch

NAN = float("nan")


def run_oracle(input_tensor, recv_topk, weight, index) -> torch.Tensor:
    inputs = {
        "input_tensor": torch.tensor(input_tensor, dtype=torch.float32),
        "recv_topk": torch.tensor(recv_topk, dtype=torch.int32),
        "recv_topk_weight": torch.tensor(weight, dtype=torch.float32),
        "input_index": torch.tensor(index, dtype=torch.int32),
    }
    return ep_gather_torch(inputs, {"num_experts": 2})["output_tensor"]


def test_valid_slots_are_weighted_and_summed_and_minus_one_slots_never_read():
    # rows: r0 = [1, 2], r1 = [0.5, -4], r2 = NaN padding (never written by the scatter)
    # t0: k0 expert 0 -> 0.5 * r1 = [0.25, -2];  k1 is -1: its index 2 (a NaN row) is not read
    # t1: 0.25 * r0 + 2 * r1 = [0.25 + 1, 0.5 - 8] = [1.25, -7.5]
    # t2: no valid slot -> zeros, whatever its weights and indexes say
    out = run_oracle(
        [[1.0, 2.0], [0.5, -4.0], [NAN, NAN]],
        [[0, -1], [1, 0], [-1, -1]],
        [[0.5, 0.25], [0.25, 2.0], [1.0, 1.0]],
        [[1, 2], [0, 1], [0, 2]],
    )
    assert out.tolist() == [[0.25, -2.0], [1.25, -7.5], [0.0, 0.0]]
    assert out.dtype == torch.float32


def test_the_fp32_sum_is_rounded_to_bf16_once_at_the_end():
    # 1/3 in fp32 is 0.33333334; bf16 keeps 8 significant bits: 0.333984375.
    # Three terms of 1/3 * 1.0 sum to 1.0000000 in fp32 and stay 1.0 in bf16 (no per-term rounding).
    out = run_oracle([[1.0]], [[0, 1, 0]], [[1 / 3, 1 / 3, 1 / 3]], [[0, 0, 0]])
    assert out.tolist() == [[1.0]]
    out = run_oracle([[1.0]], [[0, -1]], [[1 / 3, 5.0]], [[0, 0]])
    assert out.tolist() == [[0.333984375]]


def test_no_tokens_gives_an_empty_output_of_the_hidden_width():
    out = ep_gather_torch(
        {
            "input_tensor": torch.zeros((0, 5)),
            "recv_topk": torch.zeros((0, 3), dtype=torch.int32),
            "recv_topk_weight": torch.zeros((0, 3)),
            "input_index": torch.zeros((0, 3), dtype=torch.int32),
        },
        {"num_experts": 1},
    )["output_tensor"]
    assert out.shape == (0, 5)


def test_gather_inverts_a_scatter_layout_with_unit_weights_on_one_slot():
    rng = np.random.default_rng(0)
    values = torch.from_numpy(rng.choice([0.5, 1.0, 2.0], size=(6, 3)).astype(np.float32))
    index = [[4], [1], [0], [5]]
    out = run_oracle(values.tolist(), [[0], [1], [0], [1]], [[1.0]] * 4, index)
    assert torch.equal(out, values[[4, 1, 0, 5]])
