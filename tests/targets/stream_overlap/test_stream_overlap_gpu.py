"""On a GPU: both missing fences lose races, the fenced schedule never does, and races need long
forwards (so shrinking has a direction). Skipped without CUDA.

The lead runs it on the device, with the rates and times printed::

    python3 -m pytest -q -s tests/targets/stream_overlap/test_stream_overlap_gpu.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
import torch

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
from moefuzz.execute.launch import LaunchContext
from moefuzz.model.case import Case
from moefuzz.store.corpus import load_finding
from moefuzz_targets.stream_overlap import contract
from moefuzz_targets.stream_overlap.kernels import (
    stream_overlap_bug_missing_wait_forward,
    stream_overlap_bug_missing_wait_write,
    stream_overlap_triton,
)
from moefuzz_targets.stream_overlap.oracle import stream_overlap_torch
from moefuzz_targets.stream_overlap.strategy import GPU_BOUNDS, build_schedule

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="stream races need a CUDA device"),
]

BUGS = {
    "bug-missing-wait-forward": stream_overlap_bug_missing_wait_forward,
    "bug-missing-wait-write": stream_overlap_bug_missing_wait_write,
}
METHODS = ("copy_engine", "sm_kernel")
LONGEST = GPU_BOUNDS.max_kernel_length


def schedule(longest: int, copy_method: str = "copy_engine") -> Case:
    """4 batches copying the same 4 full pages of 16 slots x 128 elements; every forward spins
    longest/2..longest rounds (0 for ``longest=0``). Both races can show on it."""
    return build_schedule(
        num_batches=4,
        pages_per_batch=4,
        page_size=16,
        slot_size=128,
        longest=longest,
        reuse="same",
        ragged="full",
        fill="full",
        lengths="long",
        copy_method=copy_method,
        seed=0,
    )


def divergences(kernel: Callable[[LaunchContext], None], case: Case, runs: int) -> int:
    """In how many of ``runs`` launches ``kernel`` differs from the oracle (after one warm-up
    launch, which compiles the Triton kernels)."""
    contract.check(case)
    specs, ref = contract.output_specs(case), oracle_outputs(stream_overlap_torch, case)
    launch_kernel(kernel, specs, case, torch.device("cuda"))
    device = torch.device("cuda")
    return sum(contract.compare(case, launch_kernel(kernel, specs, case, device), ref) is not None for _ in range(runs))


@pytest.mark.parametrize("copy_method", METHODS)
@pytest.mark.parametrize("bug", BUGS)
def test_each_missing_fence_loses_a_race_at_least_once_in_20_runs_of_a_long_schedule(bug, copy_method):
    failed = divergences(BUGS[bug], schedule(LONGEST, copy_method), 20)
    print(f"\n{bug} {copy_method}: {failed}/20 runs diverge with forwards of {LONGEST // 2}..{LONGEST} rounds")
    assert failed >= 1


@pytest.mark.parametrize("copy_method", METHODS)
def test_the_fenced_schedule_never_diverges_in_50_long_and_50_tiny_runs(copy_method):
    assert divergences(stream_overlap_triton, schedule(LONGEST, copy_method), 50) == 0
    assert divergences(stream_overlap_triton, schedule(0, copy_method), 50) == 0


@pytest.mark.parametrize("bug", BUGS)
def test_long_forwards_lose_races_more_often_than_forwards_that_do_not_spin(bug):
    long = divergences(BUGS[bug], schedule(LONGEST), 40)
    tiny = divergences(BUGS[bug], schedule(0), 40)
    print(f"\n{bug}: {long}/40 runs diverge with long forwards, {tiny}/40 without spin")
    assert long > tiny


def test_the_longest_drawn_forward_spins_between_a_twentieth_and_ten_milliseconds():
    """The extra time of one batch's schedule when its forward spins LONGEST rounds: the strategy
    draws up to it for a race window of about 0.1-1 ms (kernels.py estimates it)."""

    def seconds(longest: int) -> float:
        case = build_schedule(
            num_batches=1, pages_per_batch=1, page_size=16, slot_size=128, longest=longest, lengths="one_long"
        )
        specs = contract.output_specs(case)
        launch_kernel(stream_overlap_triton, specs, case, torch.device("cuda"))  # compile
        times = []
        for _ in range(9):
            torch.cuda.synchronize()
            started = time.perf_counter()
            launch_kernel(stream_overlap_triton, specs, case, torch.device("cuda"))
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    spin_ms = (seconds(LONGEST) - seconds(0)) * 1e3
    print(f"\nforward of {LONGEST} rounds: {spin_ms:.3f} ms more than one that does not spin")
    assert 0.05 <= spin_ms <= 10


@pytest.mark.slow
@pytest.mark.parametrize("bug", BUGS)
def test_each_bug_model_is_found_on_the_gpu_from_an_empty_corpus_and_its_shrunk_schedule_still_races(bug, tmp_path):
    status = run_campaign(
        CampaignConfig("stream_overlap", bug, duration_s=30, corpus=tmp_path, seed=1, device="cuda", shrink_budget_s=60)
    )
    assert {finding.signature for _, finding in status.findings} == {"divergence:host_pages"}
    path, first = status.findings[0]
    finding = load_finding(path)
    case = finding.case
    print(
        f"\n{bug}: found after {first.found['elapsed_s']} s, {first.found['execs']} execs; shrunk "
        f"{finding.shrink.get('original_size')} -> {finding.shrink.get('size')}: {case.describe()}\n"
        f"  batch_pages={case.arrays['batch_pages'].tolist()} page_fills={case.arrays['page_fills'].tolist()} "
        f"kernel_lengths={case.arrays['kernel_lengths'].tolist()}\n  {finding.explanation}"
    )
    assert divergences(BUGS[bug], case, 20) >= 1
    assert divergences(stream_overlap_triton, case, 20) == 0


@pytest.mark.slow
def test_the_correct_kernel_survives_a_gpu_campaign(tmp_path):
    status = run_campaign(
        CampaignConfig("stream_overlap", "triton", duration_s=30, corpus=tmp_path, seed=2, device="cuda")
    )
    print(f"\ntriton: {status.execs} schedules in 30 s, no finding")
    assert status.execs >= 20
    assert status.findings == [] and status.known == 0
