"""moefuzz's Triton ep_gather against the torch oracle, and its -1-slot bug model.

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
from moefuzz_targets.ep_gather import contract
from moefuzz_targets.ep_gather.kernels import ep_gather_bug_minus_one_slot, ep_gather_triton
from moefuzz_targets.ep_gather.oracle import ep_gather_torch
from moefuzz_targets.ep_gather.strategy import make_case

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_kernel(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> dict[str, np.ndarray]:
    """tri_* outputs of ``kernel`` on ``case``, launched on poisoned buffers."""
    contract.check(case)
    return launch_kernel(kernel, contract.output_specs(case), case, DEVICE, config)


def run_oracle(case: Case) -> dict[str, np.ndarray]:
    return oracle_outputs(ep_gather_torch, case)


def mismatch_of(kernel: Callable[[LaunchContext], None], case: Case, **config: int):
    return contract.compare(case, run_kernel(kernel, case, **config), run_oracle(case))


def random_case(seed: int, num_tokens: int, topk: int, num_experts: int, hidden: int, **modes) -> Case:
    """Ids uniform in -1..E-1, laid out by the oracle scatter; ``modes`` as ``make_case`` takes."""
    ids = np.random.default_rng(seed).integers(-1, num_experts, size=(num_tokens, topk)).astype(np.int32)
    return make_case(ids, num_experts, hidden, seed, **modes)


# The unwritten entries at their most treacherous: stale in-range rows, router weights, NaN padding.
HOSTILE = {"unwritten_index": "stale", "skipped_weight": "router", "padding_rows": "nan", "atomic_order": True}

CASES = {
    "no-tokens": random_case(0, num_tokens=0, topk=3, num_experts=4, hidden=7),
    "one-token-one-slot": make_case(np.zeros((1, 1), np.int32), 1, hidden=1, seed=1),
    "all-minus-one-rows-give-zeros": random_case(2, 40, 8, 16, 64, **HOSTILE).replace(
        {"recv_topk": np.full((40, 8), -1, np.int32)}
    ),
    "no-rows-at-all": make_case(np.full((5, 2), -1, np.int32), 3, hidden=129, seed=3, unwritten_index="poison"),
    "hostile-unwritten-entries-H129": random_case(4, 70, 4, 6, 129, **HOSTILE),
    "K8-two-token-blocks-H300": random_case(5, 130, 8, 20, 300, **HOSTILE),
    "one-expert-129-items": make_case(np.full((129, 1), 0, np.int32), 1, hidden=128, seed=6, **HOSTILE),
    "duplicate-expert-in-a-row": make_case(np.array([[1, 1, -1], [0, 1, 0]], np.int32), 2, 5, seed=7, **HOSTILE),
}


@pytest.mark.parametrize("name", list(CASES))
def test_triton_kernel_equals_the_oracle(name: str):
    case = CASES[name]
    mismatch = mismatch_of(ep_gather_triton, case)
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"


def test_tokens_without_a_valid_slot_come_out_as_zeros_not_poison():
    tri = run_kernel(ep_gather_triton, CASES["all-minus-one-rows-give-zeros"], num_warps=2)
    assert (tri["output_tensor"] == 0).all()


def test_bug_model_sums_a_minus_one_slot_through_its_stale_index():
    # t0: k0 expert 0 at row 0 (weight 0.5), k1 is -1 but its index names row 1 (weight 0.25).
    case = Case(
        {
            "input_tensor": np.array([[2.0, 4.0], [8.0, -8.0]], np.float32),
            "recv_topk": np.array([[0, -1]], np.int32),
            "recv_topk_weight": np.array([[0.5, 0.25]], np.float32),
            "input_index": np.array([[0, 1]], np.int32),
        },
        {"num_experts": 1},
    )
    tri = run_kernel(ep_gather_bug_minus_one_slot, case)
    assert tri["output_tensor"].tolist() == [[1.0 + 2.0, 2.0 - 2.0]]
    mismatch = contract.compare(case, tri, run_oracle(case))
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref) == ("output_tensor", 0, 3.0, 1.0)
    assert "is slot k=1's term: the -1 slot was gathered" in contract.explain(case, mismatch)
    assert mismatch_of(ep_gather_bug_minus_one_slot, CASES["hostile-unwritten-entries-H129"]) is not None


@pytest.mark.parametrize(
    "modes",
    [
        {"unwritten_index": "minus_one", "skipped_weight": "router", "padding_rows": "nan"},
        {"unwritten_index": "poison", "skipped_weight": "router", "padding_rows": "nan"},
        {"unwritten_index": "stale", "skipped_weight": "zero", "padding_rows": "values"},
    ],
    ids=["index-minus-one", "index-poison", "stale-index-zero-weight-finite-rows"],
)
def test_bug_model_is_right_where_a_minus_one_slot_adds_nothing(modes):
    assert mismatch_of(ep_gather_bug_minus_one_slot, random_case(8, 70, 3, 5, 7, **modes)) is None


def test_bug_model_is_right_without_minus_one_slots():
    case = make_case(np.array([[0, 1], [1, 0], [0, 0]], np.int32), 2, hidden=3, seed=9, **HOSTILE)
    assert mismatch_of(ep_gather_bug_minus_one_slot, case) is None


@pytest.mark.parametrize("seed", range(3))
def test_triton_kernel_equals_the_oracle_on_seeded_random_tables(seed: int):
    rng = np.random.default_rng(200 + seed)
    case = random_case(
        seed,
        num_tokens=int(rng.choice([2, 63, 64, 65, 300])),
        topk=int(rng.integers(1, 9)),
        num_experts=int(rng.choice([1, 8, 60])),
        hidden=int(rng.choice([1, 127, 256])),
        unwritten_index=str(rng.choice(["minus_one", "stale", "poison"])),
        skipped_weight=str(rng.choice(["zero", "router"])),
        padding_rows=str(rng.choice(["nan", "zero", "values"])),
        atomic_order=bool(rng.integers(0, 2)),
    )
    mismatch = mismatch_of(ep_gather_triton, case)
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"
