"""Quality: the fuzzer finds both paged_decode bug models from scratch and shrinks them to one
request, one head and a position or two; it survives the trailing-pages bug's crashes; the
correct kernel survives a campaign. Real campaigns on moefuzz's Triton kernels (the interpreter
without a GPU)."""

from __future__ import annotations

import pytest

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.store.corpus import load_finding
from moefuzz.store.replay import replay_findings
from tests.campaign_checks import assert_correct_kernel_survives

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def window_campaign(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    config = CampaignConfig(
        "paged_decode", "bug-window-off-by-one", duration_s=6, corpus=corpus, seed=0, shrink_budget_s=30
    )
    return corpus, run_campaign(config)


def test_bug_window_off_by_one_is_found_from_an_empty_corpus(window_campaign):
    _, status = window_campaign
    assert [finding.signature for _, finding in status.findings] == ["divergence:o"]
    assert status.findings[0][1].found["execs"] <= 10


def test_the_window_bug_shrinks_to_one_head_two_positions_and_a_window_of_one(window_campaign):
    path, _ = window_campaign[1].findings[0]
    finding = load_finding(path)
    case = finding.case
    # (B, Hq, Hkv, sum L, D, page_size, num_pages, max_pages, window on, W, nonzero garbage)
    # the bug model's hand minimum: two pages, no poison page 0 (moefuzz_targets/paged_decode/bug_models.py)
    assert finding.shrink["size"] == [1, 1, 1, 2, 1, 1, 2, 2, 1, 1, 0]
    assert case.arrays["page_table"].tolist() == [[0, 1]]
    assert case.arrays["cache_seqlens"].tolist() == [2] and case.params["sliding_window"] == 1
    assert finding.shrink["complete"] and finding.shrink["seconds"] < 20
    assert "request 0 head 0 (kv head 0) dim 0: |tri-ref|=" in finding.explanation
    assert "window W=1 of L=2 attends positions 1..1; position 0 (page_table[0, 0]=0, slot 0)" in finding.explanation


@pytest.fixture(scope="module")
def trailing_campaign(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    # seed 4 draws a case whose garbage names NaN pages first, a wild id (2**31 - 1) third
    config = CampaignConfig(
        "paged_decode", "bug-trailing-pages", duration_s=14, corpus=corpus, seed=4, shrink_budget_s=8
    )
    return corpus, run_campaign(config)


def test_bug_trailing_pages_is_found_and_the_campaign_survives_its_crashes(trailing_campaign):
    _, status = trailing_campaign
    signatures = [finding.signature for _, finding in status.findings]
    assert signatures[0] == "divergence:o" and status.findings[0][1].found["execs"] == 1
    # wild ids: an illegal memory access on a GPU; in the interpreter moefuzz.execute.oob refuses the
    # load before it happens, so the worker lives on
    assert signatures[1:] == ["crash:out-of-bounds-load"]
    crash = status.findings[1][1]
    assert crash.found["execs"] == 3
    assert crash.shrink["size"] < crash.shrink["original_size"]
    assert "page_table[0, " in crash.explanation and "a kernel that loads it faults" in crash.explanation


def test_the_trailing_bug_shrinks_to_one_position_and_the_garbage_page_it_reads(trailing_campaign):
    path, _ = trailing_campaign[1].findings[0]
    finding = load_finding(path)
    case = finding.case
    # (B, Hq, Hkv, sum L, D, page_size, num_pages, max_pages, window on, W, nonzero garbage)
    assert finding.shrink["size"] == [1, 1, 1, 1, 1, 1, 2, 2, 0, 0, 0]
    assert case.arrays["page_table"].tolist() == [[1, 0]] and case.arrays["cache_seqlens"].tolist() == [1]
    assert "tri_o is NaN: the kernel read a slot no attended position holds" in finding.explanation
    assert "page_table[0] = [1] | garbage [0 (NaN page)]" in finding.explanation


def test_saved_reproducers_fail_on_the_bug_models_and_pass_on_the_correct_kernel(window_campaign, trailing_campaign):
    corpora = [window_campaign[0], trailing_campaign[0]]
    on_bug = replay_findings(corpora, kernel=None, device="auto")
    assert on_bug and all(result.outcome.failed for result in on_bug)
    on_fixed = replay_findings(corpora, kernel="triton", device="auto")
    assert len(on_fixed) == len(on_bug) and not any(result.outcome.failed for result in on_fixed)


def test_the_correct_kernel_survives_a_campaign(tmp_path):
    assert_correct_kernel_survives("paged_decode", tmp_path, duration_s=12, min_execs=8, seed=2)
