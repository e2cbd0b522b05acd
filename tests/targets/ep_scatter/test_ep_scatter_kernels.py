"""moefuzz's Triton ep_scatter against the torch oracle, and the stale start-offset bug model.

Runs on a GPU when there is one, else under the Triton interpreter (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
from moefuzz.execute.launch import LaunchContext
from moefuzz.model.case import Case
from moefuzz_targets.ep_scatter import contract
from moefuzz_targets.ep_scatter.kernels import ep_scatter_bug_stale_start_loc, ep_scatter_triton
from moefuzz_targets.ep_scatter.oracle import ep_scatter_torch
from moefuzz_targets.ep_scatter.strategy import make_case

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_kernel(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> dict[str, np.ndarray]:
    """tri_* outputs of ``kernel`` on ``case``, launched on poisoned buffers."""
    contract.check(case)
    return launch_kernel(kernel, contract.output_specs(case), case, DEVICE, config)


def run_oracle(case: Case) -> dict[str, np.ndarray]:
    return oracle_outputs(ep_scatter_torch, case)


def assert_equals_oracle(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> dict[str, np.ndarray]:
    tri = run_kernel(kernel, case, **config)
    mismatch = contract.compare(case, tri, run_oracle(case))
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"
    return tri


def random_case(seed: int, num_tokens: int, topk: int, num_experts: int, hidden: int, dtype: str = "bf16") -> Case:
    """Ids uniform in -1..E-1 (about one slot in E+1 not local)."""
    ids = np.random.default_rng(seed).integers(-1, num_experts, size=(num_tokens, topk)).astype(np.int32)
    return make_case(ids, num_experts, hidden, dtype, seed)


def edge_counts_case() -> Case:
    """E = 256: experts 3, 100, 255 hold exactly 127, 128, 129 items; K = 4, H = 129, the rest -1."""
    rng = np.random.default_rng(5)
    flat = np.full(100 * 4, -1, np.int32)
    flat[rng.permutation(flat.size)[:384]] = np.repeat([3, 100, 255], [127, 128, 129])
    return make_case(flat.reshape(100, 4), 256, hidden=129, dtype="bf16", seed=5)


CASES = {
    "no-tokens": random_case(0, num_tokens=0, topk=3, num_experts=4, hidden=7),
    "one-token-one-slot": make_case(np.zeros((1, 1), np.int32), 1, hidden=1, dtype="bf16", seed=1),
    "all-minus-one-rows": make_case(np.full((40, 8), -1, np.int32), 16, hidden=64, dtype="fp8", seed=2),
    "one-expert-129-items-fp8-spills-a-block": make_case(np.full((129, 1), 2, np.int32), 3, 200, "fp8", seed=3),
    "E256-counts-127-128-129-H129": edge_counts_case(),
    "empty-experts-K4-H1": random_case(4, num_tokens=40, topk=4, num_experts=150, hidden=1),
    "fp8-H300-three-scale-columns": random_case(6, num_tokens=50, topk=2, num_experts=5, hidden=300, dtype="fp8"),
    "E513-prefix-block-of-1024": random_case(7, num_tokens=20, topk=8, num_experts=513, hidden=3),
    "duplicate-expert-in-a-row": make_case(np.array([[1, 1, 1], [0, 1, 0]], np.int32), 2, 130, "bf16", seed=8),
}


@pytest.mark.parametrize("name", list(CASES))
def test_triton_kernel_equals_the_oracle(name: str):
    assert_equals_oracle(ep_scatter_triton, CASES[name])


def test_every_item_row_round_trips_to_its_token_under_other_warps():
    case = random_case(9, num_tokens=300, topk=4, num_experts=7, hidden=130, dtype="fp8")
    tri = assert_equals_oracle(ep_scatter_triton, case, num_warps=4)
    topk, index = case.arrays["recv_topk"], tri["output_index"]
    tokens = np.nonzero(topk >= 0)[0]
    np.testing.assert_array_equal(tri["output_tensor"][index[topk >= 0]], case.arrays["recv_x"][tokens])
    np.testing.assert_array_equal(tri["m_indices"][index[topk >= 0]], topk[topk >= 0])


@pytest.mark.parametrize(
    "name", ["no-tokens", "E256-counts-127-128-129-H129", "fp8-H300-three-scale-columns", "all-minus-one-rows"]
)
def test_stale_start_loc_model_is_right_under_the_interpreter(name: str):
    """The race needs warps that run apart; the interpreter runs a program's steps in order."""
    if DEVICE.type == "cuda":
        pytest.skip("on a GPU the model may read a stale start: that is the race issue's business")
    assert_equals_oracle(ep_scatter_bug_stale_start_loc, CASES[name])


@pytest.mark.parametrize("seed", range(3))
def test_triton_kernel_equals_the_oracle_on_seeded_random_tables(seed: int):
    rng = np.random.default_rng(100 + seed)
    case = random_case(
        seed,
        num_tokens=int(rng.choice([2, 17, 256, 513])),
        topk=int(rng.integers(1, 9)),
        num_experts=int(rng.choice([1, 8, 60])),
        hidden=int(rng.choice([1, 127, 256])),
        dtype=str(rng.choice(["bf16", "fp8"])),
    )
    assert_equals_oracle(ep_scatter_triton, case)
