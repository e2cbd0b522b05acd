"""moefuzz's Triton allocator (extend and decode kernels) against the torch oracle, and the bug
model of the full last page in decode.

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
from moefuzz.strategies import build_paged_kv_state
from moefuzz_targets.alloc_extend import contract
from moefuzz_targets.alloc_extend.kernels import alloc_extend_bug_page_past_capacity, alloc_extend_triton
from moefuzz_targets.alloc_extend.oracle import alloc_extend_torch
from moefuzz_targets.alloc_extend.strategy import allocation_case, to_case

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_kernel(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> np.ndarray:
    """tri_out_indices of ``kernel`` on ``case``, launched on a poisoned buffer."""
    contract.check(case)
    return launch_kernel(kernel, contract.output_specs(case), case, DEVICE, config)["out_indices"]


def assert_equals_oracle(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> None:
    tri = {"out_indices": run_kernel(kernel, case, **config)}
    mismatch = contract.compare(case, tri, oracle_outputs(alloc_extend_torch, case))
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"


def state_case(seed: int, **structure) -> Case:
    """A case from the engine's paged KV builder."""
    fields = dict(
        page_size=16,
        prefix_lens=[0, 16, 37, 5],
        seq_lens=[40, 16, 70, 6],
        spare_pages=1,
        other_pages=2,
        pool_gaps=1,
        extra_context=0,
        free_order="shuffled",
        garbage="wild",
        window="none",
    )
    fields.update(structure)
    return to_case(build_paged_kv_state(seed=seed, **fields))


# Worked out in test_alloc_extend_contract.py: r0 finishes page 2, takes pages 7, 3; r1 takes 1.
MID_PAGE_AND_BOUNDARY = allocation_case(
    page_size=4, num_pages=10, prefix_lens=[6, 8], seq_lens=[13, 10], last_loc=[9, 35], free_pages=[7, 3, 1, 6]
)
# Decode, page_size 4: r0 continues page 3 (13), r1's page 7 is full (free page 2: 8), r2 is new (page 5: 20).
DECODE = allocation_case(
    page_size=4, num_pages=9, prefix_lens=[5, 4, 0], seq_lens=[6, 5, 1], last_loc=[12, 31, -1], free_pages=[2, 5, 6]
)
# Decode whose only request fills the cache's final page: the bug writes slot 12 = page 3 of 3.
DECODE_AT_THE_END = allocation_case(
    page_size=4, num_pages=3, prefix_lens=[4], seq_lens=[5], last_loc=[11], free_pages=[1]
)

CASES = {
    "hand-worked-mid-page-and-boundary": MID_PAGE_AND_BOUNDARY,
    "hand-worked-decode": DECODE,
    "decode-last-page-of-the-cache": DECODE_AT_THE_END,
    "empty-batch": allocation_case(page_size=16, num_pages=1, prefix_lens=[], seq_lens=[], last_loc=[], free_pages=[]),
    "every-extend-empty": state_case(0, prefix_lens=[3, 16], seq_lens=[3, 16]),
    "page-size-1": state_case(1, page_size=1, prefix_lens=[0, 1, 9], seq_lens=[4, 1, 30]),
    "odd-page-size-100-long-request": state_case(2, page_size=100, prefix_lens=[150, 0], seq_lens=[2600, 99]),
    "no-spare-page-descending": state_case(3, spare_pages=0, free_order="descending"),
    "decode-of-130-requests-two-programs": state_case(
        4, page_size=3, prefix_lens=list(range(130)), seq_lens=list(range(1, 131)), spare_pages=0
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_triton_kernel_equals_the_oracle(name: str):
    assert_equals_oracle(alloc_extend_triton, CASES[name])


@pytest.mark.parametrize("seed", range(4))
def test_triton_kernel_equals_the_oracle_on_seeded_states(seed: int):
    rng = np.random.default_rng(5000 + seed)
    page_size = int(rng.choice([1, 7, 16, 64]))
    batch = int(rng.integers(1, 9))
    seq = rng.integers(0, 3 * page_size + 2, size=batch)
    prefix = np.minimum(seq, rng.integers(0, 3 * page_size + 2, size=batch))
    if seed % 2:  # decode steps, prefixes on and around page boundaries
        prefix = rng.integers(0, 4, size=batch) * page_size + rng.integers(-1, 2, size=batch).clip(0)
        seq = prefix + 1
    case = state_case(
        seed,
        page_size=page_size,
        prefix_lens=prefix.tolist(),
        seq_lens=seq.tolist(),
        spare_pages=int(rng.integers(0, 3)),
        free_order=str(rng.choice(["ascending", "descending", "shuffled"])),
    )
    assert_equals_oracle(alloc_extend_triton, case, num_warps=int(rng.choice([1, 4, 8])))


def test_a_2048_token_extend_takes_two_tiles():
    case = state_case(5, page_size=64, prefix_lens=[10], seq_lens=[2058])
    tri = run_kernel(alloc_extend_triton, case)
    assert tri.shape == (2048,)
    assert_equals_oracle(alloc_extend_triton, case)


def test_bug_model_writes_past_the_cache_when_a_full_last_page_is_the_final_one():
    tri = run_kernel(alloc_extend_bug_page_past_capacity, DECODE_AT_THE_END)
    ref = oracle_outputs(alloc_extend_torch, DECODE_AT_THE_END)
    assert tri.tolist() == [12] and ref["out_indices"].tolist() == [4]
    mismatch = contract.compare(DECODE_AT_THE_END, {"out_indices": tri}, ref)
    assert contract.explain(DECODE_AT_THE_END, mismatch).startswith(
        "request 0 got slot 12 = page 3 of page_size 4, past num_pages=3"
    )


def test_bug_model_hands_a_full_page_s_neighbour_to_a_decode_request():
    tri = run_kernel(alloc_extend_bug_page_past_capacity, DECODE)
    assert tri.tolist() == [13, 32, 20]  # r1 gets page 8 (after its page 7), not free page 2
    mismatch = contract.compare(DECODE, {"out_indices": tri}, oracle_outputs(alloc_extend_torch, DECODE))
    assert (mismatch.index, mismatch.tri, mismatch.ref) == (1, 32, 8)


@pytest.mark.parametrize("name", ["hand-worked-mid-page-and-boundary", "page-size-1", "no-spare-page-descending"])
def test_bug_model_is_correct_on_extend_batches(name: str):
    assert_equals_oracle(alloc_extend_bug_page_past_capacity, CASES[name])


def test_bug_model_is_correct_on_decode_steps_that_do_not_start_on_a_full_page():
    case = allocation_case(
        page_size=4, num_pages=6, prefix_lens=[5, 0, 3], seq_lens=[6, 1, 4], last_loc=[12, -1, 18], free_pages=[5, 2]
    )
    assert_equals_oracle(alloc_extend_bug_page_past_capacity, case)
