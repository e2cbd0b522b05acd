"""Quality: the fuzzer finds both page-table bug models from scratch and shrinks each to one
request on one table column that names the failing page; the correct kernel survives. Real
campaigns on moefuzz's Triton kernels (the interpreter without a GPU).

Seeds: both bug campaigns meet a divergence first (bug-trailing-entries can also segfault the
interpreter worker on a wild slot of a sliding-window layer, a ``crash:SIGSEGV`` finding whose
shrinking pays a worker per candidate: seed 2 does not meet one within the budget).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moefuzz.engine.campaign import CampaignConfig, CampaignStatus, run_campaign
from moefuzz.store.corpus import Finding, load_finding
from moefuzz.store.replay import replay_findings
from moefuzz_targets.page_table.contract import SWA_MAPPING
from tests.campaign_checks import assert_correct_kernel_survives

pytestmark = pytest.mark.slow


def campaign(tmp_path_factory, kernel: str, seed: int) -> tuple[Path, CampaignStatus]:
    corpus = tmp_path_factory.mktemp("corpus")
    config = CampaignConfig("page_table", kernel, duration_s=4, corpus=corpus, seed=seed, shrink_budget_s=60)
    return corpus, run_campaign(config)


def the_divergence(status: CampaignStatus) -> tuple[Path, Finding]:
    found = [(path, finding) for path, finding in status.findings if finding.signature == "divergence:page_table"]
    assert len(found) == 1, [finding.signature for _, finding in status.findings]
    path, finding = found[0]
    assert finding.found["execs"] <= 10
    return path, load_finding(path)


@pytest.fixture(scope="module")
def trailing(tmp_path_factory):
    return campaign(tmp_path_factory, "bug-trailing-entries", seed=2)


@pytest.fixture(scope="module")
def translate(tmp_path_factory):
    return campaign(tmp_path_factory, "bug-translate-page-ids", seed=2)


def test_bug_trailing_entries_shrinks_to_one_empty_request_whose_table_column_holds_garbage(trailing):
    _, finding = the_divergence(trailing[1])
    case = finding.case
    assert case.arrays["seq_lens"].tolist() == [0] and SWA_MAPPING not in case.arrays
    assert case.arrays["req_to_token"].shape == (1, 1)
    assert (case.params["max_pages"], case.params["page_size"]) == (1, 1)
    garbage = int(case.arrays["req_to_token"][0, 0])
    assert finding.explanation.startswith(f"request 0 page 0: tri={garbage} ref=0 (past seq_len=0")
    assert finding.shrink["complete"]


def test_bug_translate_page_ids_shrinks_to_one_window_token_of_a_small_page(translate):
    _, finding = the_divergence(translate[1])
    case = finding.case
    assert case.arrays["seq_lens"].tolist() == [1] and case.params["sliding_window"] == 1
    assert case.params["max_pages"] == 1 and case.params["page_size"] > 1
    assert case.arrays[SWA_MAPPING].shape == (2 * case.params["page_size"],)
    assert finding.explanation.startswith("request 0 page 0: tri=")
    assert "translating the page id instead reads full_to_swa_index_mapping[1]=" in finding.explanation
    assert finding.shrink["complete"]


def test_the_saved_reproducers_fail_on_their_bug_models_and_pass_on_the_correct_kernel(trailing, translate):
    paths = [the_divergence(trailing[1])[0], the_divergence(translate[1])[0]]
    on_bug = replay_findings(paths, kernel=None, device="auto")
    assert len(on_bug) == 2 and all(r.outcome.signature == "divergence:page_table" for r in on_bug)
    on_fixed = replay_findings(paths, kernel="triton", device="auto")
    assert len(on_fixed) == 2 and not any(r.outcome.failed for r in on_fixed)


def test_the_correct_kernel_survives_a_campaign(tmp_path):
    assert_correct_kernel_survives("page_table", tmp_path, duration_s=20, min_execs=20, seed=3)
