"""moefuzz's Triton moe_align_block_size against the torch oracle, and its -1 id bug model.

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
from moefuzz_targets.moe_align_block_size import contract
from moefuzz_targets.moe_align_block_size.kernels import (
    moe_align_block_size_bug_negative_id,
    moe_align_block_size_triton,
)
from moefuzz_targets.moe_align_block_size.oracle import moe_align_block_size_torch

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_kernel(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> dict[str, np.ndarray]:
    """tri_* outputs of ``kernel`` on ``case``, launched on poisoned buffers."""
    contract.check(case)
    return launch_kernel(kernel, contract.output_specs(case), case, DEVICE, config)


def run_oracle(case: Case) -> dict[str, np.ndarray]:
    return oracle_outputs(moe_align_block_size_torch, case)


def assert_equals_oracle(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> None:
    mismatch = contract.compare(case, run_kernel(kernel, case, **config), run_oracle(case))
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"


def routing_case(
    seed: int,
    num_tokens: int,
    topk: int,
    num_experts: int,
    block_size: int,
    minus_one_rows: bool = False,
    num_local: int | None = None,
    pad: bool = False,
) -> Case:
    """A random [M, K] table with ids from -1 to E + 1; ``minus_one_rows`` fills every fifth token
    with -1; ``num_local`` adds an expert map owning that many random experts, in random order."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(-1, num_experts + 2, size=(num_tokens, topk), dtype=np.int32)
    if minus_one_rows:
        ids[::5] = -1
    arrays = {"topk_ids": ids}
    if num_local is not None:
        expert_map = np.full(num_experts, -1, np.int32)
        expert_map[rng.choice(num_experts, size=num_local, replace=False)] = rng.permutation(num_local)
        arrays["expert_map"] = expert_map
    return Case(arrays, {"num_experts": num_experts, "block_size": block_size, "pad_sorted_ids": pad})


def minus_one_case(num_experts: int = 4, expert_map=None) -> Case:
    """Token 0 routes to experts 0 and E - 1; token 1 is a -1 padding row."""
    arrays = {"topk_ids": np.array([[0, num_experts - 1], [-1, -1]], np.int32)}
    if expert_map is not None:
        arrays["expert_map"] = np.array(expert_map, np.int32)
    return Case(arrays, {"num_experts": num_experts, "block_size": 4, "pad_sorted_ids": False})


CASES = {
    "no-tokens": routing_case(0, num_tokens=0, topk=3, num_experts=7, block_size=16),
    "one-token-one-expert": routing_case(1, num_tokens=1, topk=1, num_experts=1, block_size=16),
    "fewer-items-than-experts-buffer-cap": routing_case(2, num_tokens=3, topk=2, num_experts=64, block_size=16),
    "one-expert-many-items-block-1": routing_case(3, num_tokens=40, topk=8, num_experts=1, block_size=1),
    "all-minus-one-rows": Case(
        {"topk_ids": np.full((300, 2), -1, np.int32)}, {"num_experts": 4, "block_size": 64, "pad_sorted_ids": True}
    ),
    "all-on-one-expert-two-programs": Case(
        {"topk_ids": np.full((700, 2), 5, np.int32)}, {"num_experts": 8, "block_size": 48, "pad_sorted_ids": False}
    ),
    "odd-block-minus-one-rows": routing_case(
        4, num_tokens=257, topk=3, num_experts=60, block_size=129, minus_one_rows=True
    ),
    "512-experts-block-256-padded": routing_case(5, num_tokens=129, topk=8, num_experts=512, block_size=256, pad=True),
    "1024-experts-block-1": routing_case(6, num_tokens=300, topk=4, num_experts=1024, block_size=1),
    "expert-map-with-holes": routing_case(7, num_tokens=513, topk=4, num_experts=64, block_size=32, num_local=13),
    "expert-map-no-local-expert": routing_case(8, num_tokens=50, topk=2, num_experts=16, block_size=16, num_local=0),
    "expert-map-all-local-shuffled": routing_case(
        9, num_tokens=100, topk=3, num_experts=9, block_size=7, minus_one_rows=True, num_local=9, pad=True
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_triton_kernel_equals_the_oracle(name: str):
    assert_equals_oracle(moe_align_block_size_triton, CASES[name])


def test_every_kept_item_is_placed_once_in_a_block_of_its_expert():
    case = CASES["expert-map-with-holes"]
    tri = run_kernel(moe_align_block_size_triton, case, num_warps=8)
    numel, block_size = case.arrays["topk_ids"].size, int(case.params["block_size"])
    sorted_ids = tri["sorted_token_ids"]
    slots = np.flatnonzero(sorted_ids != numel)
    flat = case.arrays["topk_ids"].reshape(-1)
    local = case.arrays["expert_map"][flat[sorted_ids[slots]]]
    np.testing.assert_array_equal(tri["expert_ids"][slots // block_size], local)
    assert np.unique(sorted_ids[slots]).size == slots.size


@pytest.mark.parametrize(
    ("expert_map", "segment"),
    [(None, slice(4, 8)), ([1, 2, -1, 0], slice(0, 4))],
    ids=["no-map", "map-owning-expert-e-minus-1"],
)
def test_bug_model_places_a_minus_one_row_in_the_last_experts_segment(expert_map, segment: slice):
    # ref: expert 0 (local 1) holds i=0, expert 3 (local 0) holds i=1, each padded to 4 slots with 4;
    # the bug adds the -1 row's i=2, 3 to expert 3: same padded total, a wrong segment
    case = minus_one_case(expert_map=expert_map)
    tri = run_kernel(moe_align_block_size_bug_negative_id, case)
    mismatch = contract.compare(case, tri, run_oracle(case))
    assert mismatch is not None
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref) == (
        "sorted_token_ids",
        segment.start + 1,
        2,
        4,
    )
    assert sorted(tri["sorted_token_ids"][segment].tolist()) == [1, 2, 3, 4]
    assert "kernel 2 = token t=1, k=0 (id -1, the -1 sentinel: skipped)" in contract.explain(case, mismatch)


def test_bug_model_overflows_the_padded_total_with_enough_minus_one_slots():
    case = Case(
        {"topk_ids": np.array([[0, 1], [-1, -1]], np.int32)},
        {"num_experts": 2, "block_size": 2, "pad_sorted_ids": False},
    )
    mismatch = contract.compare(case, run_kernel(moe_align_block_size_bug_negative_id, case), run_oracle(case))
    assert mismatch is not None
    assert (mismatch.output, mismatch.tri, mismatch.ref) == ("num_tokens_post_padded", 6, 4)


@pytest.mark.parametrize(
    "case",
    [
        routing_case(10, num_tokens=200, topk=4, num_experts=30, block_size=16),  # ids -1..E+1, no -1 row
        minus_one_case(expert_map=[0, 1, 2, -1]),  # -1 wraps onto expert E-1, another rank's
    ],
    ids=["no-minus-one", "minus-one-on-another-ranks-expert"],
)
def test_bug_model_is_correct_where_the_bug_cannot_trigger(case: Case):
    ids = case.arrays["topk_ids"]
    if "expert_map" not in case.arrays:
        case = case.replace({"topk_ids": np.where(ids == -1, 99, ids).astype(np.int32)})
    assert_equals_oracle(moe_align_block_size_bug_negative_id, case)


@pytest.mark.parametrize("seed", range(6))
def test_triton_kernel_equals_the_oracle_on_seeded_random_tables(seed: int):
    rng = np.random.default_rng(2000 + seed)
    num_experts = int(rng.choice([1, 7, 64, 300]))
    case = routing_case(
        seed,
        num_tokens=int(rng.choice([1, 97, 256, 1025, 1500])),
        topk=int(rng.integers(1, 9)),
        num_experts=num_experts,
        block_size=int(rng.choice([1, 3, 16, 64, 100, 256])),
        minus_one_rows=bool(rng.integers(0, 2)),
        num_local=int(rng.integers(0, num_experts + 1)) if rng.integers(0, 2) else None,
        pad=bool(rng.integers(0, 2)),
    )
    assert_equals_oracle(moe_align_block_size_triton, case)
