"""Quality: the fuzzer finds the seed bug from scratch and shrinks it; the correct kernel survives.

These run real campaigns on moefuzz's Triton kernels (in the interpreter without a GPU), so
they take a few minutes; they are the tests that say moefuzz does its job.
"""

from pathlib import Path

import numpy as np
import pytest

from benchmarks.bug_models import bug_model
from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.shrinking.routing import later_duplicates
from moefuzz.store.corpus import load_finding
from moefuzz.store.replay import replay_findings
from moefuzz_targets.three_step_sort import TARGET
from tests.campaign_checks import assert_correct_kernel_survives, assert_reproducers_fail_on_their_bug_and_pass_on

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bug_campaign(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    config = CampaignConfig(
        "three_step_sort", "bug-duplicate-topk", duration_s=40, corpus=corpus, seed=1, shrink_budget_s=150
    )
    return corpus, run_campaign(config)


def test_bug_duplicate_topk_is_found_from_an_empty_corpus(bug_campaign):
    _, status = bug_campaign
    assert len(status.findings) >= 1
    signatures = {finding.signature for _, finding in status.findings}
    assert signatures <= {
        "divergence:expert_first_token_offset",
        "divergence:permuted_row_to_unpermuted_row",
        "divergence:permuted_token_selected_experts",
        "divergence:unpermuted_row_to_permuted_row",
    }


def test_the_seed_bug_shrinks_to_just_past_256_tokens_with_one_repeated_expert(bug_campaign):
    _, status = bug_campaign
    path, _ = status.findings[0]
    finding = load_finding(path)
    ids = finding.case.arrays["token_selected_experts"]
    start, end = finding.case.params["start_expert"], finding.case.params["end_expert"]
    local_repeats = later_duplicates(ids) & (ids >= start) & (ids < end)
    assert 257 <= ids.shape[0] <= 260
    assert ids.shape[1] <= 3
    assert local_repeats.sum() == 1
    assert finding.case.params["num_experts"] <= 4
    assert "token" in finding.explanation
    # the bug model's hand minimum: one [0, 0] and 256 rows of expert 0 beside the -1 sentinel
    minimum = bug_model("three_step_sort", "bug-duplicate-topk").minimum_case
    assert finding.shrink["size"] == list(TARGET.size(minimum)) == [257, 2, 1, 1, 2, 1, 256]


def test_the_saved_reproducer_fails_on_the_bug_model_and_passes_on_the_correct_kernel(bug_campaign):
    corpus, _ = bug_campaign
    assert_reproducers_fail_on_their_bug_and_pass_on([corpus])


def test_the_correct_kernel_survives_a_campaign(tmp_path):
    assert_correct_kernel_survives("three_step_sort", tmp_path, duration_s=45, min_execs=10, seed=2)


def test_committed_reproducers_pass_on_the_correct_kernel():
    committed = ROOT / "corpus" / "three_step_sort"
    results = replay_findings([committed], kernel="triton", device="auto")
    assert results and not any(r.outcome.failed for r in results)
    assert all(np.asarray(r.finding.case.arrays["token_selected_experts"]).ndim == 2 for r in results)
