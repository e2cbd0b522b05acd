"""The routing targets' baselines (moefuzz_targets/<target>/baselines.py): legal cases, and one trial.

Each target's plain ``@given`` strategy draws only cases its contract accepts; each grid yields
legal cases whose tokens route to distinct experts, the same ones for the same seed; and the
``given`` driver runs a budgeted trial against three_step_sort's ``bug-duplicate-topk`` and
reports Magma's levels consistently. Kernels run under the Triton interpreter without a GPU
(tests/conftest.py).
"""

from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

from benchmarks.baselines import Baselines, all_baselines, run_given
from benchmarks.baselines.routing import BASELINES, GRID_EXPERTS, GRID_TOKENS, GRID_TOPK
from benchmarks.bug_models import bug_model
from moefuzz.model.case import Case
from moefuzz.model.registry import get_target
from moefuzz.runtime.worker import CaseRunner

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
#: Token cap of the given strategies in these tests (the real default is 2048).
TEST_MAX_TOKENS = 40
#: Grid points checked per target: a prefix, since building a whole grid takes up to a minute.
GRID_PREFIX = 12
#: Budget of the end-to-end trial: detection takes 12-16 s in the interpreter (seeds 0 and 1), the
#: rest goes to Hypothesis's shrinking; 45 s keeps this file under a minute on two cores.
TRIAL_SECONDS = 45.0
#: The [T, K] table of expert ids of each target.
ROUTING_TABLE = {
    "three_step_sort": "token_selected_experts",
    "moe_align_block_size": "topk_ids",
    "moe_permute": "topk_ids",
    "ep_scatter": "recv_topk",
    "ep_gather": "recv_topk",
}


def name(baselines: Baselines) -> str:
    return baselines.target


def distinct_per_token(ids: np.ndarray) -> bool:
    """No token of ``ids`` [T, K] repeats an expert (-1 slots, other ranks' experts, aside)."""
    for row in ids:
        experts = row[row >= 0]
        if np.unique(experts).size != experts.size:
            return False
    return True


def test_every_routing_target_has_its_two_baselines() -> None:
    assert sorted(b.target for b in BASELINES) == sorted(ROUTING_TABLE)
    assert all(all_baselines()[b.target] is b for b in BASELINES)


@pytest.mark.parametrize("baselines", BASELINES, ids=name)
def test_the_plain_given_strategy_draws_only_legal_cases(baselines: Baselines) -> None:
    target = get_target(baselines.target)
    sizes: set[tuple[int, ...]] = set()

    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(baselines.given(max_tokens=TEST_MAX_TOKENS))
    def test_case(case: Case) -> None:
        target.check(case)
        assert case.arrays[ROUTING_TABLE[baselines.target]].shape[0] <= TEST_MAX_TOKENS
        sizes.add(target.size(case))

    test_case()
    assert len(sizes) > 5  # the strategy varies the case, not one fixed example


@pytest.mark.parametrize("baselines", BASELINES, ids=name)
def test_the_given_strategy_at_its_default_real_sizes_draws_a_legal_case(baselines: Baselines) -> None:
    target = get_target(baselines.target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # .example() outside a test
        case = baselines.given().example()
    target.check(case)


@pytest.mark.parametrize("baselines", BASELINES, ids=name)
def test_the_grid_yields_legal_cases_with_distinct_experts_per_token(baselines: Baselines) -> None:
    target = get_target(baselines.target)
    table = ROUTING_TABLE[baselines.target]
    cases = list(itertools.islice(baselines.grid(0), GRID_PREFIX))
    assert len(cases) == GRID_PREFIX
    for case in cases:
        target.check(case)
        assert distinct_per_token(case.arrays[table]), case.describe()
    assert len({case.digest() for case in cases}) == GRID_PREFIX


@pytest.mark.parametrize("baselines", BASELINES, ids=name)
def test_the_grid_is_the_same_for_a_seed_and_differs_across_seeds(baselines: Baselines) -> None:
    def digests(seed: int) -> list[str]:
        return [case.digest() for case in itertools.islice(baselines.grid(seed), 6)]

    assert digests(3) == digests(3)
    assert digests(3) != digests(4)


def test_the_three_step_sort_grid_reaches_the_three_step_path_only_with_distinct_experts() -> None:
    """Every point once (T x K x E: every K <= every E); the points past 256 tokens reach the
    bug's path, and the router's distinct experts never trigger it."""
    baselines = next(b for b in BASELINES if b.target == "three_step_sort")
    bug = bug_model("three_step_sort", "bug-duplicate-topk")
    cases = list(baselines.grid(0))
    assert len(cases) == len(GRID_TOKENS) * len(GRID_TOPK) * len(GRID_EXPERTS)
    assert sorted({case.arrays["token_selected_experts"].shape[0] for case in cases}) == sorted(GRID_TOKENS)
    assert any(bug.reached(case) for case in cases)
    assert not any(bug.triggered(case) for case in cases)


def test_a_given_trial_on_the_duplicate_topk_bug_reports_consistent_levels() -> None:
    baselines = next(b for b in BASELINES if b.target == "three_step_sort")
    capped = Baselines(baselines.target, functools.partial(baselines.given, max_tokens=300), baselines.grid)
    runner = CaseRunner("three_step_sort", "bug-duplicate-topk", DEVICE)
    bug = bug_model("three_step_sort", "bug-duplicate-topk")
    result = run_given(capped, runner, bug, seconds=TRIAL_SECONDS, seed=0)
    assert {"reached", "triggered", "detected", "cases", "seconds"} <= result.keys()
    assert result["cases"] > 0
    assert result["seconds"] < TRIAL_SECONDS + 15  # the budget ends the run (a case may be in flight)
    assert result["reached"] or not result["triggered"]
    assert result["triggered"] or not result["detected"]  # the model is exact: no failure untriggered
    if result["triggered"]:
        assert result["triggered_s"] >= result["reached_s"]
    if result["detected"]:
        assert result["detected_s"] >= result["triggered_s"]
        assert result["signature"].startswith("divergence:")
        assert result["first_size"][0] > 256 and result["shrunk_size"][0] > 256
