"""The coverage-guided engine: libFuzzer's bytes through the same campaign, isolation, shrinking
and corpus as the default engine."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from moefuzz.engine.atheris import libfuzzer_args, write_seed_inputs
from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.errors import UsageError
from moefuzz.store.corpus import load_finding

ROOT = Path(__file__).resolve().parent.parent


def test_libfuzzer_gets_the_seed_plus_one_a_day_per_input_and_no_memory_limit(tmp_path):
    config = CampaignConfig("three_step_sort", None, 10, Path("corpus"), seed=0, engine="atheris")
    args = libfuzzer_args(config, tmp_path, tmp_path / "corpus")
    assert "-seed=1" in args  # libFuzzer reads -seed=0 as "pick a random seed"
    # atheris reads -timeout=0 as zero seconds: a shrink inside one input would be killed
    assert {"-timeout=86400", "-rss_limit_mb=0", "-len_control=0", "-max_len=1024"} <= set(args)
    assert f"-artifact_prefix={tmp_path}/" in args
    assert args[-1] == str(tmp_path / "corpus")


def test_libfuzzer_starts_from_the_default_engines_first_random_inputs(tmp_path):
    import random

    write_seed_inputs(tmp_path, seed=3, count=2)
    source = random.Random(3)
    assert (tmp_path / "seed-00").read_bytes() == source.randbytes(1024)
    assert (tmp_path / "seed-01").read_bytes() == source.randbytes(1024)


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
def test_the_atheris_engine_finds_shrinks_and_saves_a_triton_bug_model_then_prints_the_summary(tmp_path):
    pytest.importorskip("atheris", reason="atheris is not installed: pip install 'moefuzz[atheris]'")
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable, "-m", "moefuzz.ui.cli", "run", "--target", "moe_align_block_size", "--kernel",
            "bug-negative-id", "--time", "12s", "--shrink-time", "25s", "--device", "cpu", "--engine", "atheris",
            "--seed", "1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert "saved moefuzz-corpus/moe_align_block_size/bug-negative-id--divergence-" in result.stdout
    assert "engine atheris: libFuzzer cov " in result.stdout
    assert "strategy functions instrumented (kernel code not seen)" in result.stdout
    findings = [load_finding(p.parent) for p in (tmp_path / "moefuzz-corpus").rglob("finding.json")]
    assert findings
    for finding in findings:
        # shrunk inside one libFuzzer input, which takes far longer than a second in the interpreter
        assert finding.shrink.get("seconds", 0) > 0
        assert finding.case.arrays["topk_ids"].shape[0] < finding.original_case.arrays["topk_ids"].shape[0] or (
            finding.shrink["complete"] is True
        )
        assert (finding.case.arrays["topk_ids"] == -1).any()
    assert not list(tmp_path.glob("crash-*"))  # libFuzzer's artifacts never land in the working directory
    # 12 s of fuzzing + at most 25 s per shrink + start-up: the budget holds though Fuzz() never returns.
    assert seconds < 12 + 25 * len(findings) + 120
