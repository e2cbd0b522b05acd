"""Quality: the fuzzer finds the -1-slot gather bug from scratch and shrinks it to one slot; the
correct kernel survives; the saved reproducer replays.

These run real campaigns on moefuzz's Triton kernel (in the interpreter without a GPU).
"""

from __future__ import annotations

import pytest

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.store.corpus import load_finding
from tests.campaign_checks import assert_correct_kernel_survives, assert_reproducers_fail_on_their_bug_and_pass_on

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bug_campaign(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    config = CampaignConfig("ep_gather", "bug-minus-one-slot", duration_s=15, corpus=corpus, seed=1, shrink_budget_s=40)
    return corpus, run_campaign(config)


def test_bug_minus_one_slot_is_found_from_an_empty_corpus(bug_campaign):
    _, status = bug_campaign
    assert len(status.findings) >= 1
    assert {finding.signature for _, finding in status.findings} == {"divergence:output_tensor"}


def test_the_bug_shrinks_to_one_token_with_one_minus_one_slot_over_one_row(bug_campaign):
    _, status = bug_campaign
    finding = load_finding(status.findings[0][0])
    arrays = finding.case.arrays
    assert arrays["recv_topk"].shape == (1, 1) and arrays["recv_topk"][0, 0] == -1
    assert arrays["input_tensor"].shape == (1, 1)
    assert arrays["input_index"].tolist() == [[0]]
    assert finding.case.params["num_experts"] == 1
    assert finding.shrink["complete"]
    assert "the -1 slot was gathered, not skipped" in finding.explanation


def test_the_saved_reproducer_fails_on_the_bug_model_and_passes_on_the_correct_kernel(bug_campaign):
    corpus, _ = bug_campaign
    assert_reproducers_fail_on_their_bug_and_pass_on([corpus])


def test_the_correct_kernel_survives_a_campaign(tmp_path):
    assert_correct_kernel_survives("ep_gather", tmp_path, duration_s=25, min_execs=20, seed=2)
