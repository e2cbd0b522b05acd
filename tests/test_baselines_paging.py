"""The paging targets' baselines (moefuzz_targets/<target>/baselines.py): legal, deterministic, runnable.

Each plain ``@given`` strategy yields cases that pass the target's contract check, with its
real-size defaults (what the driver draws) and with the small caps the interpreter can run, and
its cases pass on the correct kernel (a baseline that fails the correct kernel would report
false alarms). Each grid yields every point once, legal cases, the same cases for the same seed.
One end-to-end ``run_grid`` of alloc_extend's bug model checks the driver's levels. Kernels run
on a GPU when there is one, else under the Triton interpreter (tests/conftest.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from benchmarks.baselines import Baselines, all_baselines, run_grid
from benchmarks.baselines import paging as baselines
from benchmarks.bug_models import bug_model
from moefuzz.model.case import Case
from moefuzz.model.registry import get_target
from moefuzz.runtime.worker import CaseRunner

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
PAGING_TARGETS = ("alloc_extend", "page_table", "paged_decode", "stream_overlap")

#: Size caps the interpreter runs in a blink: the strategies' and grids' keyword arguments.
SMALL_GIVEN: dict[str, dict[str, Any]] = {
    "alloc_extend": {"max_batch": 4, "max_prefix_len": 64, "max_extend_len": 16, "max_spare_pages": 2},
    "page_table": {"max_batch": 4, "max_seq_len": 64, "max_extra_context": 8},
    "paged_decode": {
        "max_batch": 2,
        "max_seq_len": 80,
        "kv_heads": (1, 2),
        "group_sizes": (1, 2),
        "head_dims": (16,),
        "page_sizes": (1, 16),
    },
    "stream_overlap": {
        "max_batches": 3,
        "max_pages_per_batch": 3,
        "page_sizes": (1, 16),
        "slot_sizes": (1, 8),
        "max_kernel_length": 4,
    },
}
SMALL_GRID: dict[str, dict[str, Any]] = {
    "alloc_extend": {"batch_sizes": (1, 4), "max_seq_len": 100},
    "page_table": {"batch_sizes": (1, 4), "max_seq_len": 100},
    "paged_decode": {"batch_sizes": (1, 2), "max_seq_len": 70, "heads": ((1, 1), (1, 4)), "head_dim": 16},
    "stream_overlap": {
        "batches": (1, 2),
        "pages_per_batch": (1, 2),
        "page_sizes": (1, 16),
        "slot_sizes": (1,),
        "kernel_lengths": (0, 3),
    },
}
#: Points of each small grid: the product of its axes.
SMALL_GRID_POINTS = {
    "alloc_extend": len(baselines.PAGE_SIZES) * 2 * len(baselines.ALLOC_MODES) * len(baselines.ALLOC_POOLS),
    "page_table": len(baselines.PAGE_SIZES) * 2 * len(baselines.TABLE_WINDOWS) * len(baselines.TABLE_WIDTHS),
    "paged_decode": len(baselines.DECODE_PAGE_SIZES) * 2 * 2 * len(baselines.DECODE_WINDOWS),
    "stream_overlap": 2 * 2 * 2 * 1 * 2 * len(baselines.STREAM_POOLS) * 2,
}
#: Points of the real grids this machine can build (paged_decode's reach 1 GB a case).
REAL_GRID_POINTS = {
    "alloc_extend": len(baselines.PAGE_SIZES) * len(baselines.GRID_BATCH_SIZES) * 2 * 2,
    "page_table": len(baselines.PAGE_SIZES) * len(baselines.GRID_BATCH_SIZES) * 3 * 2,
    "stream_overlap": 4 * 3 * 2 * 2 * 2 * 2 * 2,
}


def paging_baselines(name: str) -> Baselines:
    return all_baselines()[name]


def small_grid(name: str) -> Callable[[int], Iterator[Case]]:
    return partial(paging_baselines(name).grid, **SMALL_GRID[name])


def draw_given(strategy: Any, examples: int) -> list[Case]:
    """``examples`` cases of ``strategy``, drawn by a plain ``@given`` test."""
    drawn: list[Case] = []

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn


def test_every_paging_target_has_both_baselines() -> None:
    assert [b.target for b in baselines.BASELINES] == list(PAGING_TARGETS)
    assert all(paging_baselines(name) is b for name, b in zip(PAGING_TARGETS, baselines.BASELINES, strict=True))


@pytest.mark.parametrize("name", PAGING_TARGETS)
def test_the_given_strategy_draws_legal_cases_at_its_real_sizes(name: str) -> None:
    check = get_target(name).check

    # At real sizes, arrays drawn element by element can exceed Hypothesis's entropy budget
    # depending on the run's seed; the baseline itself runs with its health checks off
    # (benchmarks/baselines), so the contract is checked on what it draws there.
    @settings(
        max_examples=5,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(paging_baselines(name).given())
    def test_contract_holds(case: Case) -> None:
        check(case)

    test_contract_holds()


@pytest.mark.parametrize("name", PAGING_TARGETS)
def test_the_given_strategy_draws_legal_cases_under_small_caps(name: str) -> None:
    check = get_target(name).check

    @settings(max_examples=10, deadline=None, database=None)
    @given(paging_baselines(name).given(**SMALL_GIVEN[name]))
    def test_contract_holds(case: Case) -> None:
        check(case)

    test_contract_holds()


@pytest.mark.parametrize("name", PAGING_TARGETS)
def test_the_correct_kernel_passes_what_both_baselines_generate(name: str) -> None:
    runner = CaseRunner(name, None, DEVICE)
    cases = draw_given(paging_baselines(name).given(**SMALL_GIVEN[name]), 4)
    cases += list(itertools.islice(small_grid(name)(0), 0, None, 7))  # every 7th grid point
    for case in cases:
        outcome = runner.run(case)
        assert outcome.kind == "pass", f"{name}: {outcome.signature} {outcome.message}\n{case.describe()}"


@pytest.mark.parametrize("name", PAGING_TARGETS)
def test_the_small_grid_yields_each_point_once_legal_and_the_same_for_the_same_seed(name: str) -> None:
    check = get_target(name).check
    first = list(small_grid(name)(3))
    assert len(first) == SMALL_GRID_POINTS[name]
    for case in first:
        check(case)
    assert [case.digest() for case in small_grid(name)(3)] == [case.digest() for case in first]
    assert [case.digest() for case in small_grid(name)(4)] != [case.digest() for case in first]


@pytest.mark.parametrize("name", sorted(REAL_GRID_POINTS))
def test_the_real_grid_yields_each_point_once_and_legal(name: str) -> None:
    check = get_target(name).check
    count = 0
    for case in paging_baselines(name).grid(0):
        check(case)
        count += 1
    assert count == REAL_GRID_POINTS[name]


def test_the_real_paged_decode_grid_starts_with_legal_flashinfer_shapes() -> None:
    grid = paging_baselines("paged_decode").grid(0)
    for case in itertools.islice(grid, len(baselines.DECODE_HEADS) * len(baselines.DECODE_WINDOWS)):  # B = 1
        get_target("paged_decode").check(case)
        q, k_cache = case.arrays["q"], case.arrays["k_cache"]
        assert q.shape[0] == 1 and q.shape[2] == baselines.DECODE_HEAD_DIM
        assert k_cache.shape[1] == baselines.DECODE_PAGE_SIZES[0]
        assert (k_cache.shape[2], q.shape[1]) in baselines.DECODE_HEADS
        assert case.params["sliding_window"] in baselines.DECODE_WINDOWS


def test_a_grid_trial_on_the_allocator_bug_reports_levels_that_agree() -> None:
    bug = bug_model("alloc_extend", "bug-page-past-capacity")
    runner = CaseRunner("alloc_extend", "bug-page-past-capacity", DEVICE)
    trial = Baselines("alloc_extend", paging_baselines("alloc_extend").given, small_grid("alloc_extend"))
    result = run_grid(trial, runner, bug, seconds=20.0, seed=0)
    assert 0 < result["cases"] <= SMALL_GRID_POINTS["alloc_extend"]
    assert result["reached"] or not result["triggered"]
    for earlier, later in (("reached", "triggered"), ("triggered", "detected")):
        if result[earlier] and result[later]:
            assert result[f"{later}_s"] >= result[f"{earlier}_s"]
    if result["detected"]:  # the model is exact: the failing case triggered it
        assert result["triggered"]
        assert result["signature"].startswith("divergence:") and result["shrunk_size"] == result["first_size"]
