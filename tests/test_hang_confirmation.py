"""A hang is saved only if the case hangs again with a longer timeout: a first launch stuck in a
busy compiler is not a bug of the kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.model.target import Limits

LIMITS = Limits(max_tokens=32, max_topk=4, max_experts=8)


@pytest.mark.slow
def test_a_case_that_hangs_once_and_then_finishes_is_counted_not_saved(
    fake_targets: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOEFUZZ_FAKE_FIRST_COMPILE_MARKER", str(tmp_path / "compiled"))
    status = run_campaign(
        CampaignConfig(
            "fake_sort", "slow-first-compile", 6.0, tmp_path / "corpus", device="cpu", case_timeout_s=1.5, limits=LIMITS
        )
    )
    assert (tmp_path / "compiled").exists()  # the slow first launch happened
    assert status.unconfirmed_hangs == 1
    assert not status.findings and not (tmp_path / "corpus").exists()


@pytest.mark.slow
def test_a_case_that_hangs_again_with_four_times_the_timeout_is_saved_as_a_hang(
    fake_targets: str, tmp_path: Path
) -> None:
    status = run_campaign(
        CampaignConfig(
            "fake_sort", "hang-on-duplicate", 3.0, tmp_path / "corpus", device="cpu", case_timeout_s=1.0,
            shrink_budget_s=1.0, limits=LIMITS,
        )
    )  # fmt: skip
    assert [finding.signature for _, finding in status.findings] == ["hang"]
    assert status.unconfirmed_hangs == 0
