"""Quality: the fuzzer finds the -1 padding bug from scratch and shrinks it to one padded row;
the correct kernel survives. Real campaigns on moefuzz's Triton kernels (the interpreter
without a GPU). The out-of-bounds twin of the bug is found as what it is on a GPU, a read
before expert_map, only where the interpreter's checker (moefuzz.execute.oob) runs: on the CPU."""

from __future__ import annotations

import pytest
import torch

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.store.corpus import load_finding
from moefuzz.store.replay import replay_findings
from moefuzz.strategies.dispatch import padded_rows
from tests.campaign_checks import assert_correct_kernel_survives, assert_reproducers_fail_on_their_bug_and_pass_on

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bug_campaign(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    config = CampaignConfig(
        "moe_permute", "bug-sentinel-minus-one", duration_s=15, corpus=corpus, seed=1, shrink_budget_s=60
    )
    return corpus, run_campaign(config)


def test_bug_sentinel_minus_one_is_found_from_an_empty_corpus_as_wrong_offsets(bug_campaign):
    _, status = bug_campaign
    signatures = {finding.signature for _, finding in status.findings}
    assert signatures == {"divergence:expert_first_token_offset"}
    _, finding = status.findings[0]
    assert finding.found["execs"] <= 30


def test_the_seed_bug_shrinks_to_one_minus_one_padded_row_over_the_last_expert(bug_campaign):
    _, status = bug_campaign
    path, _ = status.findings[0]
    finding = load_finding(path)
    case = finding.case
    ids, expert_map = case.arrays["topk_ids"], case.arrays["expert_map"]
    assert ids.shape == (1, 1) and ids[0, 0] == -1 == case.params["sentinel"]
    assert padded_rows(case.arrays["num_tokens_per_rank"], case.params["max_tokens_per_rank"]).all()
    assert case.params["num_experts"] <= 2 and expert_map[-1] >= 0
    assert case.arrays["hidden_states"].shape[1] == 1
    assert finding.shrink["complete"] and finding.shrink["seconds"] < 30
    assert "expert_map[-1] would wrap to expert_map[" in finding.explanation


def test_the_saved_reproducer_fails_on_the_bug_model_and_passes_on_the_correct_kernel(bug_campaign):
    corpus, _ = bug_campaign
    assert_reproducers_fail_on_their_bug_and_pass_on([corpus])


def test_the_correct_kernel_survives_a_campaign(tmp_path):
    assert_correct_kernel_survives("moe_permute", tmp_path, duration_s=30, min_execs=20, seed=2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the read before expert_map is refused only by the interpreter")
def test_the_out_of_bounds_twin_is_found_as_a_load_before_expert_map_and_shrunk_to_one_padded_row(tmp_path):
    config = CampaignConfig(
        "moe_permute", "bug-sentinel-minus-one-oob", duration_s=15, corpus=tmp_path, seed=1, shrink_budget_s=60
    )
    status = run_campaign(config)
    assert {finding.signature for _, finding in status.findings} == {"crash:out-of-bounds-load"}
    path, finding = status.findings[0]
    assert finding.found["execs"] <= 30
    assert "in kernel _count_kernel" in finding.message
    assert "the first is expert_map[-1], 1 element before its start" in finding.message
    case = load_finding(path).case
    assert case.arrays["topk_ids"].tolist() == [[-1]] and case.params["num_experts"] <= 2
    assert status.worker_restarts == 0  # the refused load never happened: no worker was lost
    on_fixed = replay_findings([tmp_path], kernel="triton", device="cpu")
    assert on_fixed and not any(r.outcome.failed for r in on_fixed)
