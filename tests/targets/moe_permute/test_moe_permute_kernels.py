"""moefuzz's Triton moe_permute against the torch oracle, and its unguarded-lookup bug model.

Runs on a GPU when there is one, else under the Triton interpreter (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
from moefuzz.execute.launch import LaunchContext
from moefuzz.execute.oob import find_out_of_bounds
from moefuzz.model.case import Case
from moefuzz.strategies.dispatch import build_dispatched_table
from moefuzz_targets.moe_permute import contract
from moefuzz_targets.moe_permute.kernels import (
    moe_permute_bug_sentinel_minus_one,
    moe_permute_bug_sentinel_minus_one_oob,
    moe_permute_triton,
)
from moefuzz_targets.moe_permute.oracle import moe_permute_torch
from moefuzz_targets.moe_permute.strategy import dispatched_case, to_case

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_kernel(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> dict[str, np.ndarray]:
    """tri_* outputs of ``kernel`` on ``case``, launched on poisoned buffers."""
    contract.check(case)
    return launch_kernel(kernel, contract.output_specs(case), case, DEVICE, config)


def run_oracle(case: Case) -> dict[str, np.ndarray]:
    return oracle_outputs(moe_permute_torch, case)


def assert_equals_oracle(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> None:
    mismatch = contract.compare(case, run_kernel(kernel, case, **config), run_oracle(case))
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"


def table_case(seed: int, hidden_size: int = 7, **structure) -> Case:
    """A case from the engine's dispatch builder (linear placement, uneven ranks, -1 padding)."""
    fields = dict(
        num_ranks=4,
        max_tokens_per_rank=50,
        topk=3,
        num_experts=16,
        ep_rank=3,
        placement="linear",
        fill="uneven",
        sentinel_kind="minus_one",
        seed=seed,
    )
    fields.update(structure)
    return to_case(build_dispatched_table(**fields), hidden_size)


# rank 0: t0 [3, 1], t1 [0, 3] | rank 1: t2 [1, 2], t3 padding (-1); globals 1, 3 are local 0, 1
ROUND_ROBIN_MINUS_ONE = dispatched_case([[[3, 1], [0, 3]], [[1, 2]]], [-1, 0, -1, 1], sentinel=-1, hidden_size=2)
LAST_EXPERT_REMOTE = dispatched_case([[[0, 2], [1, 0]], []], [0, 1, -1], sentinel=-1, max_tokens_per_rank=2)

CASES = {
    "hand-worked-round-robin-minus-one-padding": ROUND_ROBIN_MINUS_ONE,
    "hand-worked-scattered-map-repeated-expert": dispatched_case([[[4, 2, 2], [0, 1, 4]]], [1, -1, 0, -1, 2], 1),
    "no-rows": dispatched_case([[], [], []], [0, 1, -1], sentinel=-1, top_k=8),
    "every-row-padding-last-expert-local": dispatched_case(
        [[], []], [-1, 0], sentinel=-1, max_tokens_per_rank=3, top_k=2
    ),
    "rank-owns-no-expert": dispatched_case([[[0, 1]], [[1, 0]]], [-1, -1], sentinel=-1),
    "one-local-item": dispatched_case([[[5]], []], [-1] * 5 + [0], sentinel=6, max_tokens_per_rank=1),
    "ids-below-minus-one-and-past-e": dispatched_case([[[-7, 0, 9], [3, -2, 2]]], [0, -1, 1, 2], sentinel=4),
    "all-items-on-one-expert-across-many-blocks": table_case(
        0, skew="one_hot", num_experts=1, num_ranks=1, ep_rank=0, max_tokens_per_rank=700, topk=1
    ),
    "512-local-experts-75-blocks-K8": table_case(
        1, num_experts=512, num_ranks=2, ep_rank=0, max_tokens_per_rank=600, topk=8, fill="full"
    ),
    "round-robin-16-ranks-empty-ranks": table_case(
        2, placement="round_robin", num_ranks=16, ep_rank=15, max_tokens_per_rank=40, fill="empty_ranks", num_experts=60
    ),
    "scattered-non-local-sentinel-duplicates": table_case(
        3, placement="scattered", sentinel_kind="non_local", duplicates="many", num_experts=8, topk=8
    ),
    "out-of-range-sentinel-all-local-skew": table_case(4, sentinel_kind="num_experts", skew="all_local", topk=5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_triton_kernel_equals_the_oracle(name: str):
    assert_equals_oracle(moe_permute_triton, CASES[name])


@pytest.mark.parametrize("hidden_size", [1, 64, 65, 130])
def test_hidden_rows_of_any_width_are_copied_whole(hidden_size: int):
    assert_equals_oracle(moe_permute_triton, table_case(5, hidden_size=hidden_size, topk=2), num_warps=8)


def test_every_local_item_round_trips_through_both_maps():
    case = CASES["round-robin-16-ranks-empty-ranks"]
    tri = run_kernel(moe_permute_triton, case)
    n_local = int(tri["expert_first_token_offset"][-1])
    assert n_local > 0
    np.testing.assert_array_equal(tri["inv_permuted_idx"][tri["permuted_idx"][:n_local]], np.arange(n_local))
    # the kernel never writes past N: those rows keep the poison
    assert (tri["permuted_idx"][n_local:] > 2**30).all()


def test_bug_model_turns_minus_one_padding_into_items_of_the_last_global_expert():
    case = ROUND_ROBIN_MINUS_ONE  # expert_map[-1 + 4] = 1: local
    tri = run_kernel(moe_permute_bug_sentinel_minus_one, case)
    mismatch = contract.compare(case, tri, run_oracle(case))
    assert mismatch is not None
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref) == ("expert_first_token_offset", 2, 6, 4)
    assert tri["expert_first_token_offset"].tolist() == [0, 2, 6]
    assert sorted(tri["permuted_idx"][4:6].tolist()) == [6, 7]  # the padded row's two slots


def test_bug_model_is_correct_when_the_last_global_expert_is_remote():
    assert_equals_oracle(moe_permute_bug_sentinel_minus_one, LAST_EXPERT_REMOTE)


@pytest.mark.parametrize("sentinel_kind", ["num_experts", "non_local"])
def test_bug_model_is_correct_with_a_sentinel_that_is_not_negative(sentinel_kind: str):
    case = table_case(6, sentinel_kind=sentinel_kind, fill="empty_ranks")
    assert case.arrays["expert_map"][-1] >= 0
    assert_equals_oracle(moe_permute_bug_sentinel_minus_one, case)


@pytest.mark.skipif(DEVICE.type != "cpu", reason="the read before expert_map is undefined on a GPU")
def test_oob_bug_model_loads_before_expert_map_for_a_minus_one_pad_and_the_interpreter_refuses_it():
    with pytest.raises(Exception) as info:
        run_kernel(moe_permute_bug_sentinel_minus_one_oob, ROUND_ROBIN_MINUS_ONE)
    oob = find_out_of_bounds(info.value)
    assert oob is not None, repr(info.value)
    access = oob.access
    assert (access.access, access.kernel, access.buffer.name, access.offset) == (
        "load",
        "_count_kernel",
        "expert_map",
        -1,
    )
    assert access.lanes == 2  # the padded row's two slots


@pytest.mark.parametrize("sentinel_kind", ["num_experts", "non_local"])
def test_oob_bug_model_is_correct_with_a_sentinel_that_is_not_negative(sentinel_kind: str):
    assert_equals_oracle(moe_permute_bug_sentinel_minus_one_oob, table_case(6, sentinel_kind=sentinel_kind))


@pytest.mark.parametrize("seed", range(6))
def test_triton_kernel_equals_the_oracle_on_seeded_dispatched_tables(seed: int):
    rng = np.random.default_rng(2000 + seed)
    num_experts = int(rng.choice([1, 3, 8, 60, 257]))
    num_ranks = int(rng.choice([r for r in (1, 2, 3, 8) if r <= num_experts]))
    case = table_case(
        seed,
        hidden_size=int(rng.choice([1, 7, 100])),
        num_ranks=num_ranks,
        max_tokens_per_rank=int(rng.choice([1, 33, 129])),
        topk=int(rng.integers(1, 9)),
        num_experts=num_experts,
        ep_rank=int(rng.integers(num_ranks)),
        placement=str(rng.choice(["linear", "round_robin", "scattered"])),
        fill=str(rng.choice(["uneven", "empty_ranks", "one_short"])),
        sentinel_kind=str(rng.choice(["minus_one", "num_experts", "non_local"])),
        duplicates=str(rng.choice(["none", "few"])),
    )
    assert_equals_oracle(moe_permute_triton, case)
