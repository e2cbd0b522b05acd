"""Schedule perturbation: plans, poison patterns, failure rates, flaky shrinking and replay."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.execute.launch import INT_POISON, poisoned
from moefuzz.execute.perturb import (
    PLAIN,
    POISONS,
    Perturbation,
    Rate,
    plan_perturbations,
    rate_floor,
    runs_for_confidence,
)
from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.runtime.worker import CaseRunner
from moefuzz.store.corpus import load_finding
from moefuzz.store.replay import confident_runs, replay_findings

KNOBS = {"num_warps": (1, 2, 4, 8)}


def test_a_plan_starts_with_the_plain_launch_and_varies_knobs_and_poisons() -> None:
    plan = plan_perturbations(KNOBS, 10, seed=3)
    assert plan[0] == PLAIN
    assert {p.poison for p in plan} == set(POISONS)
    assert all(p.config["num_warps"] in KNOBS["num_warps"] for p in plan[1:])
    assert plan == plan_perturbations(KNOBS, 10, seed=3)
    assert plan_perturbations(KNOBS, 14, seed=3)[:10] == plan  # a longer plan extends, it does not reshuffle


def test_a_plan_of_one_run_is_the_plain_launch_and_zero_runs_are_refused() -> None:
    assert plan_perturbations(KNOBS, 1, seed=0) == [PLAIN]
    with pytest.raises(ValueError, match="runs=0"):
        plan_perturbations(KNOBS, 0, seed=0)


def test_a_perturbation_round_trips_through_json_and_refuses_unknown_poisons() -> None:
    perturbation = Perturbation({"num_warps": 8}, "nan", 17)
    assert Perturbation.from_json(json.loads(json.dumps(perturbation.to_json()))) == perturbation
    assert perturbation.label() == "num_warps=8 poison=nan"
    with pytest.raises(ValueError, match="poison='zeros'"):
        Perturbation({}, "zeros")


@pytest.mark.parametrize(
    ("pattern", "int32", "float32"),
    [
        ("default", INT_POISON, None),
        ("max", 2**31 - 1, 3.4028234663852886e38),
        ("minus_one", -1, -1.0),
        ("nan", INT_POISON, None),
    ],
)
def test_poison_patterns_fill_int_and_float_buffers(pattern: str, int32: int, float32: float | None) -> None:
    cpu = torch.device("cpu")
    assert poisoned((3,), torch.int32, cpu, pattern).tolist() == [int32] * 3
    floats = poisoned((2,), torch.float32, cpu, pattern)
    assert torch.isnan(floats).all() if float32 is None else floats.tolist() == [float32] * 2


def test_the_random_poison_is_random_but_reproducible_from_its_seed() -> None:
    cpu = torch.device("cpu")
    first = poisoned((64,), torch.int32, cpu, "random", seed=5)
    assert torch.equal(first, poisoned((64,), torch.int32, cpu, "random", seed=5))
    assert not torch.equal(first, poisoned((64,), torch.int32, cpu, "random", seed=6))
    assert first.unique().numel() > 32


def test_confidence_needs_more_runs_for_rarer_bugs() -> None:
    assert runs_for_confidence(1.0) == 1
    assert runs_for_confidence(0.2) == 31  # 0.8**31 < 1e-3 < 0.8**30
    assert runs_for_confidence(0.01) == 688
    assert 0.8**31 < 1e-3 < 0.8**30


def test_the_shrink_floor_is_half_the_finding_rate() -> None:
    assert rate_floor(Rate(2, 5)) == pytest.approx(0.2)
    assert rate_floor(Rate(1, 1)) == 0.5
    assert Rate(2, 5).flaky and not Rate(5, 5).flaky and not Rate(0, 5).flaky


def _duplicate_case() -> Case:
    ids = np.array([[0, 1], [1, 2], [2, 0], [0, 1], [3, 3]], dtype=np.int32)
    return Case({"token_selected_experts": ids}, {"num_experts": 4, "start_expert": 0, "end_expert": 4})


def test_a_plan_counts_the_runs_that_fail_and_flags_the_disagreement(fake_targets: str) -> None:
    runner = CaseRunner("fake_sort", "stale-read-on-duplicate", "cpu")
    plan = plan_perturbations(KNOBS, 10, seed=0)
    outcome = runner.run_plan(_duplicate_case(), plan)
    assert outcome.kind == "divergence" and outcome.runs == 10
    assert outcome.rate == Rate(4, 10)  # poisons max and random, twice each
    assert outcome.nondeterministic
    assert outcome.perturbation is not None and outcome.perturbation["poison"] in ("max", "random")
    assert runner.run_plan(_duplicate_case(), [PLAIN]).kind == "pass"


def test_a_deterministic_failure_fails_every_run_and_is_not_called_nondeterministic(fake_targets: str) -> None:
    outcome = CaseRunner("fake_sort", "miscount-duplicates", "cpu").run_plan(
        _duplicate_case(), plan_perturbations(KNOBS, 5, seed=0)
    )
    assert outcome.rate == Rate(5, 5) and not outcome.nondeterministic


@pytest.fixture(scope="module")
def flaky_campaign(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    corpus = tmp_path_factory.mktemp("flaky") / "corpus"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOEFUZZ_TARGETS", str(Path(__file__).with_name("fake_targets.py")))
        limits = Limits(max_tokens=64, max_topk=4, max_experts=16)
        plain = run_campaign(
            CampaignConfig("fake_sort", "stale-read-on-duplicate", 6.0, corpus / "plain", device="cpu", limits=limits)
        )
        perturbed = run_campaign(
            CampaignConfig(
                "fake_sort", "stale-read-on-duplicate", 8.0, corpus / "perturbed", device="cpu", limits=limits,
                perturb_runs=5, shrink_budget_s=30.0,
            )
        )  # fmt: skip
    return plain, perturbed


def test_a_plain_campaign_misses_a_schedule_dependent_bug_that_a_perturbed_one_finds(flaky_campaign) -> None:
    plain, perturbed = flaky_campaign
    assert plain.execs > 20 and not plain.findings
    assert perturbed.findings and perturbed.launches == 5 * perturbed.execs
    path = perturbed.findings[0][0]
    saved = load_finding(path)
    assert saved.found["runs"] == 5 and saved.found["failures"] == 2 and saved.found["nondeterministic"]


def test_a_flaky_finding_shrinks_while_keeping_its_rate(flaky_campaign) -> None:
    _, perturbed = flaky_campaign
    saved = load_finding(perturbed.findings[0][0])
    assert saved.shrink["rate"] == "2/5"
    assert saved.case.arrays["token_selected_experts"].shape[0] == 5  # the fake's T >= 5 edge


def test_replay_of_a_flaky_finding_runs_enough_times_and_reports_the_rate(flaky_campaign, fake_targets: str) -> None:
    _, perturbed = flaky_campaign
    path = perturbed.findings[0][0]
    assert confident_runs(load_finding(path)) == runs_for_confidence(0.4) == 14
    (still,) = replay_findings([path], device="cpu")
    assert still.outcome.runs == 14 and still.outcome.rate.failures == 5
    (fixed,) = replay_findings([path], kernel="correct", device="cpu")
    assert fixed.outcome.kind == "pass" and fixed.outcome.runs == 14
