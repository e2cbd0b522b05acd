"""A crash that fires in some launches only: its rate from relaunches, and a shrink that keeps a
candidate while the candidate still crashes at half the finding's rate (moefuzz.shrinking.flaky)."""

import itertools
import random

import pytest

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.execute.perturb import Rate
from moefuzz.model.target import Limits
from moefuzz.shrinking.flaky import cautious_rate, estimate_rate, keeps_rate
from moefuzz.store.corpus import iter_finding_paths
from tests.fake_targets import LAUNCH_COUNTER


def launches(pattern):
    """``launch()`` failing as ``pattern`` (a string of F and P) says, over and over."""
    cycle = itertools.cycle(pattern)
    return lambda: next(cycle) == "F"


def test_a_case_failing_in_every_confirming_relaunch_is_deterministic_after_five():
    calls = []

    def launch():
        calls.append(1)
        return True

    assert estimate_rate(launch) == Rate(6, 6)
    assert len(calls) == 5


def test_a_race_failing_in_four_relaunches_in_a_row_is_still_found_flaky():
    assert estimate_rate(launches("FFFFP")).flaky


def test_a_flaky_case_is_relaunched_eight_times_and_its_own_launch_counts():
    assert estimate_rate(launches("PPF")) == Rate(3, 9)
    assert estimate_rate(launches("P")) == Rate(1, 9)  # never 0: it failed once


def test_a_spent_budget_ends_the_relaunches_with_the_rate_seen_so_far():
    assert estimate_rate(launches("F"), stop=lambda: True) == Rate(1, 1)


def test_a_candidate_failing_at_the_findings_rate_is_kept_and_one_that_never_fails_is_dropped():
    kept, shown = keeps_rate(launches("FPP"), Rate(1, 3))
    assert kept and shown.failures >= 2
    kept, shown = keeps_rate(launches("P"), Rate(1, 3))
    assert not kept and shown.failures == 0 and shown.runs <= 10


def test_a_candidate_failing_far_below_half_the_findings_rate_is_dropped():
    assert not keeps_rate(launches("F" + "P" * 11), Rate(1, 2))[0]


def test_the_sequential_test_is_for_flaky_rates_only():
    with pytest.raises(ValueError, match="flaky"):
        keeps_rate(launches("F"), Rate(3, 3))


def test_a_crash_in_one_of_three_launches_is_found_saved_once_and_shrunk_to_its_hand_minimum(
    fake_targets, tmp_path, monkeypatch
):
    monkeypatch.setenv(LAUNCH_COUNTER, str(tmp_path / "launches"))
    config = CampaignConfig(
        "fake_sort", "abort-sometimes-on-duplicate", 20, tmp_path / "corpus", seed=3, device="cpu", workers=1,
        shrink_budget_s=60, max_findings=1, limits=Limits(max_tokens=16, max_topk=3, max_experts=4),
    )  # fmt: skip
    status = run_campaign(config)
    [(_, finding)] = status.findings
    assert finding.signature == "crash:SIGABRT"
    assert len(list(iter_finding_paths([tmp_path / "corpus"]))) == 1
    launch_rate = Rate(*map(int, finding.found["launch_rate"].split("/")))
    assert launch_rate.flaky
    assert finding.original_case.arrays["token_selected_experts"].shape[0] > 3
    # The hand minimum: three tokens (the double's T >= 3), one of them [0, 0], on one local expert.
    assert finding.shrink["complete"] and finding.shrink["size"] == [3, 2, 1, 1, 2, 1, 2]
    assert Rate(*map(int, finding.shrink["rate"].split("/"))).failures >= 1


def test_the_shrink_command_shrinks_a_flaky_crash_whose_first_run_passes(fake_targets, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from moefuzz.store.corpus import Finding, load_finding, save_finding
    from moefuzz.ui.cli import main
    from tests.fake_corpus import CASE

    counter = tmp_path / "launches"
    monkeypatch.setenv(LAUNCH_COUNTER, str(counter))
    finding = Finding("fake_sort", "abort-sometimes-on-duplicate", "crash", "SIGABRT", "worker killed", CASE, CASE)
    finding.found["launch_rate"] = "2/6"
    path = save_finding(tmp_path / "corpus", finding)
    result = CliRunner().invoke(main, ["shrink", str(path), "--time", "30s", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert int(counter.read_text()) >= 2  # the first launch passed: the shrink went on
    assert load_finding(path).case.arrays["token_selected_experts"].shape[0] == 3


def test_the_rate_candidates_are_tested_against_is_the_lower_bound_of_the_findings():
    assert cautious_rate(Rate(6, 9)) < 1 / 2 < Rate(6, 9).value  # a 1-in-3 race seen at 6/9 is tested below half
    assert cautious_rate(Rate(3, 9)) < 1 / 3
    assert cautious_rate(Rate(9, 9)) <= 1.0 and cautious_rate(Rate(0, 0)) == 0.0


def test_a_candidate_at_a_races_true_rate_is_kept_when_nine_launches_overestimated_it():
    rng = random.Random(7)  # seeded: the same launches every run

    def race():
        return rng.random() < 1 / 3

    kept = sum(keeps_rate(race, cautious_rate(Rate(6, 9)))[0] for _ in range(200))
    overestimated = sum(keeps_rate(race, Rate(6, 9))[0] for _ in range(200))
    assert kept >= 140 and overestimated <= 90  # against 6/9 itself it sits at the test's even point
    lost = sum(keeps_rate(lambda: False, cautious_rate(Rate(6, 9)))[0] for _ in range(20))
    assert lost == 0  # one that lost the bug is still dropped
