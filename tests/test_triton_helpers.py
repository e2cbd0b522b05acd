"""moefuzz_targets.shared.triton_helpers: the blocked prefix scan against numpy, num_warps."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import triton
import triton.language as tl

from moefuzz_targets.shared.triton_helpers import DEFAULT_NUM_WARPS, blocked_prefix_scan, num_warps


@triton.jit
def _scan(counts_ptr, base_ptr, offsets_ptr, num_blocks, e_local, BLOCK_B: tl.constexpr, BLOCK_E: tl.constexpr):
    blocked_prefix_scan(counts_ptr, base_ptr, offsets_ptr, num_blocks, e_local, BLOCK_B, BLOCK_E)


@pytest.mark.parametrize(("num_blocks", "e_local"), [(1, 1), (3, 5), (33, 129), (70, 300)])
def test_blocked_prefix_scan_matches_exclusive_cumsums(num_blocks: int, e_local: int):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(num_blocks * 1000 + e_local)
    counts = rng.integers(0, 50, size=(num_blocks, e_local)).astype(np.int32)
    base = torch.full((num_blocks, e_local), -7, dtype=torch.int32, device=device)
    offsets = torch.full((e_local + 1,), -7, dtype=torch.int64, device=device)
    _scan[(1,)](torch.from_numpy(counts).to(device), base, offsets, num_blocks, e_local, BLOCK_B=32, BLOCK_E=128)
    totals = counts.sum(axis=0, dtype=np.int64)
    assert base.cpu().numpy().tolist() == (np.cumsum(counts, axis=0) - counts).tolist()
    assert offsets.cpu().numpy().tolist() == [0, *np.cumsum(totals).tolist()]


def test_num_warps_is_the_config_value_else_the_default():
    assert num_warps(SimpleNamespace(config={})) == DEFAULT_NUM_WARPS  # type: ignore[arg-type]
    assert num_warps(SimpleNamespace(config={}), 8) == 8  # type: ignore[arg-type]
    assert num_warps(SimpleNamespace(config={"num_warps": 2}), 8) == 2  # type: ignore[arg-type]
