"""Checks every target's campaign tests share: the quality bar of a bug model and of a correct
kernel, stated once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from moefuzz.engine.campaign import CampaignConfig, CampaignStatus, run_campaign
from moefuzz.store.replay import replay_findings


def assert_reproducers_fail_on_their_bug_and_pass_on(paths: Sequence[Path], correct: str = "triton") -> None:
    """Every reproducer under ``paths`` still fails on the kernel it was found on, and passes on
    the target's ``correct`` kernel."""
    on_bug = replay_findings(list(paths), kernel=None, device="auto")
    assert on_bug and all(r.outcome.failed for r in on_bug)
    on_fixed = replay_findings(list(paths), kernel=correct, device="auto")
    assert on_fixed and not any(r.outcome.failed for r in on_fixed)


def assert_correct_kernel_survives(
    target: str, corpus: Path, duration_s: float, min_execs: int, seed: int = 2, kernel: str = "triton"
) -> CampaignStatus:
    """A campaign of ``duration_s`` seconds on ``kernel`` runs at least ``min_execs`` cases and
    finds nothing (no new finding, none matching the corpus)."""
    status = run_campaign(CampaignConfig(target, kernel, duration_s=duration_s, corpus=corpus, seed=seed))
    assert status.execs >= min_execs
    assert status.findings == [] and status.known == 0
    return status
