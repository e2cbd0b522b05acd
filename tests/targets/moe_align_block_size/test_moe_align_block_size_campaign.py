"""Quality: the fuzzer finds the -1 id bug from scratch and shrinks it; the correct kernel survives.

These run real campaigns on moefuzz's Triton kernel (in the interpreter without a GPU).
"""

from __future__ import annotations

import pytest

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.store.corpus import load_finding
from tests.campaign_checks import assert_correct_kernel_survives, assert_reproducers_fail_on_their_bug_and_pass_on

pytestmark = pytest.mark.slow

SIGNATURES = {
    "divergence:num_tokens_post_padded",
    "divergence:expert_ids",
    "divergence:sorted_token_ids",
}


@pytest.fixture(scope="module")
def bug_campaign(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    config = CampaignConfig(
        "moe_align_block_size", "bug-negative-id", duration_s=10, corpus=corpus, seed=1, shrink_budget_s=30
    )
    return corpus, run_campaign(config)


def test_bug_negative_id_is_found_from_an_empty_corpus(bug_campaign):
    _, status = bug_campaign
    assert len(status.findings) >= 1
    assert {finding.signature for _, finding in status.findings} <= SIGNATURES


def test_the_bug_shrinks_to_a_few_tokens_with_a_minus_one_and_no_map(bug_campaign):
    _, status = bug_campaign
    for path, _ in status.findings:
        finding = load_finding(path)
        case = finding.case
        ids = case.arrays["topk_ids"]
        assert ids.shape[0] <= 2 and ids.shape[1] == 1
        assert (ids == -1).sum() == 1
        assert case.params["num_experts"] == 1
        assert case.params["block_size"] <= 2
        assert case.params["pad_sorted_ids"] is False
        assert "expert_map" not in case.arrays
        assert "the -1 sentinel" in finding.explanation


def test_the_saved_reproducer_fails_on_the_bug_model_and_passes_on_the_correct_kernel(bug_campaign):
    corpus, _ = bug_campaign
    assert_reproducers_fail_on_their_bug_and_pass_on([corpus])


def test_the_correct_kernel_survives_a_campaign(tmp_path):
    assert_correct_kernel_survives("moe_align_block_size", tmp_path, duration_s=30, min_execs=50, seed=2)
