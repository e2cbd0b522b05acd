"""The coverage-guided engine: libFuzzer's bytes through the same campaign, isolation, shrinking
and corpus as the default engine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moefuzz.atheris_engine import libfuzzer_args
from moefuzz.campaign import CampaignConfig, run_campaign
from moefuzz.corpus import load_finding
from moefuzz.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent


def test_libfuzzer_gets_the_seed_plus_one_and_no_timeout_or_memory_limit():
    args = libfuzzer_args(CampaignConfig("three_step_sort", None, 10, Path("corpus"), seed=0, engine="atheris"))
    assert "-seed=1" in args  # libFuzzer reads -seed=0 as "pick a random seed"
    assert {"-timeout=0", "-rss_limit_mb=0", "-len_control=0", "-max_len=1024"} <= set(args)


def test_an_unknown_engine_is_a_usage_error_naming_it(tmp_path):
    with pytest.raises(UsageError, match=r"unknown engine='afl'"):
        run_campaign(CampaignConfig("three_step_sort", None, 1, tmp_path, engine="afl"))


def test_the_atheris_engine_without_atheris_installed_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "atheris" else real_find_spec(name, *a)
    )
    with pytest.raises(UsageError, match=r"pip install 'moefuzz\[atheris\]'"):
        run_campaign(CampaignConfig("three_step_sort", None, 1, tmp_path, engine="atheris"))
    assert not (tmp_path / "three_step_sort").exists()


@pytest.mark.slow
def test_the_atheris_engine_finds_shrinks_and_saves_a_bug_then_prints_the_summary(tmp_path, fake_targets):
    pytest.importorskip("atheris", reason="atheris is not installed: pip install 'moefuzz[atheris]'")
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable, "-m", "moefuzz.cli", "run", "--target", "fake_sort", "--kernel", "miscount-duplicates",
            "--time", "8s", "--shrink-time", "30s", "--device", "cpu", "--engine", "atheris",
        ],
        cwd=tmp_path,
        env={**os.environ, "MOEFUZZ_TARGETS": fake_targets},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    directory = tmp_path / "corpus" / "fake_sort" / "miscount-duplicates--divergence-expert_first_token_offset"
    assert f"saved corpus/fake_sort/{directory.name}" in result.stdout
    assert "engine atheris: libFuzzer cov " in result.stdout
    assert "strategy functions instrumented (kernel code not seen)" in result.stdout
    finding = load_finding(directory)
    assert finding.case.arrays["token_selected_experts"].shape == (5, 2)  # as small as the default engine's
    assert finding.shrink["complete"] is True
    # 8 s of fuzzing + one shrink of at most 30 s + start-up: the budget holds though Fuzz() never returns.
    assert seconds < 8 + 30 + 90
