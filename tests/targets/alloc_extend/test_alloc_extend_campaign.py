"""Quality: the fuzzer finds the full-last-page decode bug from scratch and shrinks it to one
request whose new token lands one page past the cache; the correct kernel survives. Real
campaigns on moefuzz's Triton kernels (the interpreter without a GPU)."""

from __future__ import annotations

import pytest

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.store.corpus import load_finding
from moefuzz_targets.alloc_extend.contract import valid_free_pages
from tests.campaign_checks import assert_correct_kernel_survives, assert_reproducers_fail_on_their_bug_and_pass_on

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bug_campaign(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    config = CampaignConfig(
        "alloc_extend", "bug-page-past-capacity", duration_s=10, corpus=corpus, seed=1, shrink_budget_s=30
    )
    return corpus, run_campaign(config)


def test_bug_page_past_capacity_is_found_from_an_empty_corpus(bug_campaign):
    _, status = bug_campaign
    assert {finding.signature for _, finding in status.findings} == {"divergence:out_indices"}
    _, finding = status.findings[0]
    assert finding.found["execs"] <= 40


def test_the_bug_shrinks_to_one_decode_token_one_page_past_the_cache(bug_campaign):
    _, status = bug_campaign
    path, _ = status.findings[0]
    finding = load_finding(path)
    case = finding.case
    assert case.arrays["prefix_lens"].tolist() == [1] and case.arrays["seq_lens"].tolist() == [2]
    assert (case.params["page_size"], case.params["num_pages"]) == (1, 3)
    assert case.arrays["last_loc"].tolist() == [2] and valid_free_pages(case).tolist() == [1]
    assert finding.shrink["complete"] and finding.shrink["seconds"] < 20
    assert finding.explanation.startswith("request 0 got slot 3 = page 3 of page_size 1, past num_pages=3")
    assert "the last page of the cache, full: the prefix ends on a page boundary" in finding.explanation


def test_the_saved_reproducer_fails_on_the_bug_model_and_passes_on_the_correct_kernel(bug_campaign):
    corpus, _ = bug_campaign
    assert_reproducers_fail_on_their_bug_and_pass_on([corpus])


def test_the_correct_kernel_survives_a_campaign(tmp_path):
    assert_correct_kernel_survives("alloc_extend", tmp_path, duration_s=15, min_execs=20, seed=2)
