"""moefuzz's Triton three-step sort against the torch oracle, and its duplicate-top-k bug model.

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
from moefuzz_targets.three_step_sort import contract
from moefuzz_targets.three_step_sort.kernels import three_step_sort_bug_duplicate_topk, three_step_sort_triton
from moefuzz_targets.three_step_sort.oracle import three_step_sort_torch

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_kernel(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> dict[str, np.ndarray]:
    """tri_* outputs of ``kernel`` on ``case``, launched on poisoned buffers."""
    contract.check(case)
    return launch_kernel(kernel, contract.output_specs(case), case, DEVICE, config)


def run_oracle(case: Case) -> dict[str, np.ndarray]:
    return oracle_outputs(three_step_sort_torch, case)


def routing_case(
    seed: int,
    num_tokens: int,
    top_k: int,
    num_local: int,
    start: int = 0,
    duplicates: bool = True,
    sentinel_rows: bool = False,
) -> Case:
    """A random [T, K] table over E = start + num_local + 3 experts, ids from -1 to E + 1.

    ``duplicates`` makes every fifth token repeat its k=0 expert at k=K-1; ``sentinel_rows``
    fills every seventh token with -1.
    """
    rng = np.random.default_rng(seed)
    num_experts = start + num_local + 3
    ids = rng.integers(-1, num_experts + 2, size=(num_tokens, top_k), dtype=np.int32)
    if duplicates and top_k > 1:
        ids[::5, -1] = ids[::5, 0]
    if sentinel_rows:
        ids[::7] = -1
    return Case(
        {"token_selected_experts": ids},
        {"num_experts": num_experts, "start_expert": start, "end_expert": start + num_local},
    )


def one_duplicate_case(num_tokens: int) -> Case:
    """K=3 distinct experts per token over 8 local experts, but token 100 picks expert 5 twice."""
    tokens = np.arange(num_tokens, dtype=np.int32)[:, None]
    ids = ((tokens + np.array([0, 3, 6], dtype=np.int32)) % 8).astype(np.int32)
    ids[min(100, num_tokens - 1)] = [5, 2, 5]
    return Case({"token_selected_experts": ids}, {"num_experts": 8, "start_expert": 0, "end_expert": 8})


CASES = {
    "no-tokens": routing_case(0, num_tokens=0, top_k=3, num_local=7),
    "one-token-one-expert": routing_case(1, num_tokens=1, top_k=1, num_local=1),
    "one-local-expert-many-hits": routing_case(2, num_tokens=40, top_k=8, num_local=1),
    "fused-path-largest-T": routing_case(3, num_tokens=256, top_k=3, num_local=7),
    "fused-path-T255-K8-64-experts": routing_case(4, num_tokens=255, top_k=8, num_local=64),
    "three-step-path-smallest-T": routing_case(5, num_tokens=257, top_k=3, num_local=7),
    "three-step-T300-K8-300-experts": routing_case(6, num_tokens=300, top_k=8, num_local=300),
    "three-step-T513-K1-partial-range": routing_case(7, num_tokens=513, top_k=1, num_local=64, start=40),
    "three-step-T513-K3-sentinel-rows": routing_case(8, num_tokens=513, top_k=3, num_local=7, sentinel_rows=True),
    "fused-path-partial-range-sentinel-rows": routing_case(
        9, num_tokens=100, top_k=8, num_local=7, start=5, sentinel_rows=True
    ),
    "empty-local-range": routing_case(10, num_tokens=300, top_k=3, num_local=0, start=4),
    "all-ids-minus-one": Case(
        {"token_selected_experts": np.full((300, 2), -1, np.int32)},
        {"num_experts": 4, "start_expert": 0, "end_expert": 4},
    ),
    "full-range-1024-experts-K8": routing_case(11, num_tokens=260, top_k=8, num_local=1021),
}


@pytest.mark.parametrize("name", list(CASES))
def test_triton_kernel_equals_the_oracle(name: str):
    case = CASES[name]
    tri = run_kernel(three_step_sort_triton, case)
    mismatch = contract.compare(case, tri, run_oracle(case))
    assert mismatch is None, f"{mismatch.headline()}\n{contract.explain(case, mismatch)}"


@pytest.mark.parametrize("num_tokens", [1, 256, 257])
def test_duplicate_expert_in_topk_is_its_own_item_on_both_paths(num_tokens: int):
    case = one_duplicate_case(num_tokens)
    tri = run_kernel(three_step_sort_triton, case)
    assert contract.compare(case, tri, run_oracle(case)) is None


def test_every_local_row_round_trips_through_both_maps():
    case = CASES["three-step-T513-K3-sentinel-rows"]
    tri = run_kernel(three_step_sort_triton, case, num_warps=8)
    n_local = int(tri["expert_first_token_offset"][-1])
    p2u, u2p = tri["permuted_row_to_unpermuted_row"], tri["unpermuted_row_to_permuted_row"]
    np.testing.assert_array_equal(u2p[p2u[:n_local]], np.arange(n_local))


def test_bug_model_miscounts_a_duplicated_expert_above_256_tokens():
    case = one_duplicate_case(257)
    tri = run_kernel(three_step_sort_bug_duplicate_topk, case)
    mismatch = contract.compare(case, tri, run_oracle(case))
    assert mismatch is not None
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref) == (
        "expert_first_token_offset",
        6,
        mismatch.ref - 1,
        mismatch.ref,
    )
    assert "token t=100, k=2, expert 5" in contract.explain(case, mismatch)
    # The duplicate's own slot is never written: it keeps the poison.
    assert tri["unpermuted_row_to_permuted_row"][2 * 257 + 100] > 2**30


@pytest.mark.parametrize("num_tokens", [1, 200, 256])
def test_bug_model_is_correct_up_to_256_tokens(num_tokens: int):
    case = one_duplicate_case(num_tokens)
    tri = run_kernel(three_step_sort_bug_duplicate_topk, case)
    assert contract.compare(case, tri, run_oracle(case)) is None


def test_bug_model_is_correct_above_256_tokens_without_duplicates():
    case = routing_case(12, num_tokens=300, top_k=1, num_local=7)
    tri = run_kernel(three_step_sort_bug_duplicate_topk, case)
    assert contract.compare(case, tri, run_oracle(case)) is None


@pytest.mark.parametrize("seed", range(8))
def test_triton_kernel_equals_the_oracle_on_seeded_random_tables(seed: int):
    rng = np.random.default_rng(1000 + seed)
    case = routing_case(
        seed,
        num_tokens=int(rng.choice([2, 97, 256, 257, 512, 600])),
        top_k=int(rng.integers(1, 9)),
        num_local=int(rng.choice([1, 7, 64, 300])),
        start=int(rng.integers(0, 20)),
        duplicates=bool(rng.integers(0, 2)),
        sentinel_rows=bool(rng.integers(0, 2)),
    )
    tri = run_kernel(three_step_sort_triton, case)
    mismatch = contract.compare(case, tri, run_oracle(case))
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"
