"""The two-stream write-through schedule against the serial oracle.

Runs on a GPU when there is one, else under the Triton interpreter (tests/conftest.py). Without
CUDA there are no streams and the launches run in order, so the two bug models must equal the
oracle too: a divergence here would be a bug in the launches, not a race (the races are in
tests/targets/stream_overlap/test_stream_overlap_gpu.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from moefuzz.engine.generate import CaseSource
from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
from moefuzz.execute.launch import INT_POISON, LaunchContext
from moefuzz.model.case import Case
from moefuzz.model.target import INTERPRETER_LIMITS
from moefuzz_targets.stream_overlap import TARGET, contract
from moefuzz_targets.stream_overlap.kernels import (
    stream_overlap_bug_missing_wait_forward,
    stream_overlap_bug_missing_wait_write,
    stream_overlap_triton,
)
from moefuzz_targets.stream_overlap.oracle import stream_overlap_torch
from moefuzz_targets.stream_overlap.strategy import build_schedule

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
KERNELS = {
    "triton": stream_overlap_triton,
    "bug-missing-wait-forward": stream_overlap_bug_missing_wait_forward,
    "bug-missing-wait-write": stream_overlap_bug_missing_wait_write,
}


def run_kernel(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> dict[str, np.ndarray]:
    """tri_* outputs of ``kernel`` on ``case``, launched on poisoned buffers."""
    contract.check(case)
    return launch_kernel(kernel, contract.output_specs(case), case, DEVICE, config)


def assert_equals_oracle(kernel: Callable[[LaunchContext], None], case: Case, **config: int) -> None:
    mismatch = contract.compare(case, run_kernel(kernel, case, **config), oracle_outputs(stream_overlap_torch, case))
    assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}\n{contract.explain(case, mismatch)}"


@pytest.mark.skipif(DEVICE.type == "cuda", reason="on a GPU the bug models race (test_stream_overlap_gpu.py)")
@pytest.mark.parametrize("kernel", KERNELS.values(), ids=KERNELS.keys())
def test_without_cuda_every_kernel_equals_the_oracle_on_drawn_schedules(kernel):
    source = CaseSource(TARGET.strategy(INTERPRETER_LIMITS), seed=11)
    for _ in range(6):
        assert_equals_oracle(kernel, source.draw())


@pytest.mark.parametrize("copy_method", ["copy_engine", "sm_kernel"])
def test_the_correct_kernel_equals_the_oracle_on_a_reused_ragged_partly_written_schedule(copy_method):
    case = build_schedule(
        num_batches=3,
        pages_per_batch=3,
        page_size=7,
        slot_size=70,  # two element blocks of 64
        longest=3,
        reuse="previous",
        ragged="ragged",
        fill="random",
        lengths="random",
        copy_method=copy_method,
        seed=0,
    )
    assert (case.arrays["batch_pages"] < 0).any()  # ragged: some -1 padding
    assert_equals_oracle(stream_overlap_triton, case)


def test_a_page_larger_than_one_program_is_written_and_copied_by_every_program():
    # page_size 33 spans three programs of 16 slots; fills 33, 17 and 16 end on and past their edges
    case = Case(
        {
            "batch_pages": np.array([[1, 0], [0, 1], [1, -1]], dtype=np.int32),
            "page_fills": np.array([[33, 17], [16, 33], [1, 0]], dtype=np.int32),
            "kernel_lengths": np.array([2, 0, 1], dtype=np.int32),
        },
        {"num_pages": 2, "page_size": 33, "slot_size": 3, "copy_method": "sm_kernel"},
    )
    assert_equals_oracle(stream_overlap_triton, case, num_warps=1)
    assert_equals_oracle(stream_overlap_triton, case.replace(copy_method="copy_engine"), num_warps=8)


def test_host_rows_of_minus_one_pages_keep_the_poison():
    case = build_schedule(
        num_batches=2, pages_per_batch=2, page_size=1, slot_size=1, longest=0, ragged="empty_batch", seed=1
    )
    tri = run_kernel(stream_overlap_triton, case)["host_pages"]
    padded = case.arrays["batch_pages"] < 0
    assert padded.any() and (tri[padded] == INT_POISON).all()
