"""Quality, on the CPU: campaigns over stream_overlap schedules find the worst-order doubles of
both missing fences from an empty corpus, shrink them to the shortest schedule, blame the right
fence, and the saved reproducers pass on the correct kernel.

The real bug models only race on a GPU (tests/targets/stream_overlap/test_stream_overlap_gpu.py); these doubles show on
the CPU what a lost race leaves in the host buffer (tests/targets/stream_overlap/stream_overlap_doubles.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.store.corpus import load_finding
from moefuzz.store.replay import replay_findings

pytestmark = pytest.mark.slow

DOUBLES = str(Path(__file__).resolve().parent / "stream_overlap_doubles.py")


def found_and_shrunk(tmp_path: Path, kernel: str):
    status = run_campaign(
        CampaignConfig("stream_overlap_worst_order", kernel, duration_s=6, corpus=tmp_path, seed=1, shrink_budget_s=40)
    )
    assert {finding.signature for _, finding in status.findings} == {"divergence:host_pages"}
    path, finding = status.findings[0]
    assert finding.found["execs"] <= 20
    return path, load_finding(path)


def test_a_copy_before_its_forward_shrinks_to_one_batch_and_blames_the_write_stream(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEFUZZ_TARGETS", DOUBLES)
    path, finding = found_and_shrunk(tmp_path, "copy-first")
    case = finding.case
    assert case.arrays["batch_pages"].tolist() == [[0]] and case.arrays["page_fills"].tolist() == [[1]]
    assert case.params["page_size"] == 1 and case.params["slot_size"] == 1
    assert case.arrays["kernel_lengths"].tolist() == [0]  # a serial double needs no spin
    assert finding.shrink["complete"]
    assert "tri 0 = 0: no forward had written this slot yet" in finding.explanation
    assert "the copy did not wait for the forward" in finding.explanation
    replayed = replay_findings([path], kernel="triton", device="cpu")
    assert replayed and not any(r.outcome.failed for r in replayed)


def test_a_forward_before_the_previous_copy_shrinks_to_two_batches_on_one_page(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEFUZZ_TARGETS", DOUBLES)
    path, finding = found_and_shrunk(tmp_path, "forward-first")
    case = finding.case
    assert case.arrays["batch_pages"].tolist() == [[0], [0]] and case.arrays["page_fills"].tolist() == [[1], [1]]
    assert case.params["page_size"] == 1 and case.params["slot_size"] == 1
    assert "tri 2 = batch 1's value of slot 0" in finding.explanation
    assert "the forward did not wait for the copy" in finding.explanation
    replayed = replay_findings([path], kernel="triton", device="cpu")
    assert replayed and not any(r.outcome.failed for r in replayed)
