"""The CLI end to end: exit codes, saved and shrunk findings, replay, bad input."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moefuzz.store.corpus import load_finding

ROOT = Path(__file__).resolve().parent.parent


def moefuzz(*args, cwd, env_extra=None, timeout=300):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "moefuzz.ui.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def fake_env(fake_targets):
    return {"MOEFUZZ_TARGETS": fake_targets}


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_campaign_saves_and_shrinks_a_divergence_apart_from_the_committed_corpus_and_exits_1(tmp_path, fake_env):
    name = "miscount-duplicates--divergence-expert_first_token_offset"
    committed = tmp_path / "corpus" / "fake_sort" / name  # the regression corpus already holds it
    committed.mkdir(parents=True)
    result = moefuzz(
        "run", "--target", "fake_sort", "--kernel", "miscount-duplicates", "--time", "6s",
        "--device", "cpu", "--shrink-time", "30s", cwd=tmp_path, env_extra=fake_env,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    # Without --corpus it is a discovery in moefuzz-corpus/, not a match of the committed corpus/.
    directory = tmp_path / "moefuzz-corpus" / "fake_sort" / name
    assert f"saved moefuzz-corpus/fake_sort/{name}" in result.stdout
    assert list(committed.iterdir()) == []
    assert "Triton interpreter" in result.stdout
    finding = load_finding(directory)
    assert finding.case.arrays["token_selected_experts"].shape == (5, 2)
    assert finding.shrink["complete"] is True
    assert finding.original_case.arrays["token_selected_experts"].shape[0] >= 5


def test_a_crashing_kernel_does_not_stop_the_campaign(tmp_path, fake_env):
    result = moefuzz(
        "run", "--target", "fake_sort", "--kernel", "abort-on-duplicate", "--time", "8s",
        "--device", "cpu", "--shrink-time", "5s", cwd=tmp_path, env_extra=fake_env,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    finding = load_finding(tmp_path / "moefuzz-corpus" / "fake_sort" / "abort-on-duplicate--crash-SIGABRT")
    assert finding.kind == "crash" and "SIGABRT" in finding.message
    # It went on fuzzing after the crash: later crashes matched the saved finding.
    assert "matched findings already in moefuzz-corpus" in result.stdout


def test_a_correct_kernel_survives_a_campaign_and_exits_0(tmp_path, fake_env):
    result = moefuzz(
        "run", "--target", "fake_sort", "--kernel", "correct", "--time", "5s", "--device", "cpu",
        cwd=tmp_path, env_extra=fake_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "moefuzz-corpus").exists()


def test_replay_fails_on_the_buggy_kernel_and_passes_on_the_correct_one(tmp_path, fake_env):
    moefuzz(
        "run", "--target", "fake_sort", "--kernel", "miscount-duplicates", "--time", "4s",
        "--device", "cpu", "--shrink-time", "20s", cwd=tmp_path, env_extra=fake_env,
    )  # fmt: skip
    buggy = moefuzz("replay", "moefuzz-corpus", "--device", "cpu", cwd=tmp_path, env_extra=fake_env)
    assert buggy.returncode == 1 and "FAIL" in buggy.stdout and "0 passed, 1 failed" in buggy.stdout
    fixed = moefuzz(
        "replay", "moefuzz-corpus", "--kernel", "correct", "--device", "cpu", cwd=tmp_path, env_extra=fake_env
    )
    assert fixed.returncode == 0 and "1 passed, 0 failed" in fixed.stdout


def test_show_prints_shapes_rows_and_the_diff(tmp_path, fake_env):
    moefuzz(
        "run", "--target", "fake_sort", "--kernel", "miscount-duplicates", "--time", "4s",
        "--device", "cpu", "--shrink-time", "20s", cwd=tmp_path, env_extra=fake_env,
    )  # fmt: skip
    path = next((tmp_path / "moefuzz-corpus" / "fake_sort").glob("[!.]*"))  # not the lock file
    shown = moefuzz("show", str(path), "--rerun", "--device", "cpu", cwd=tmp_path, env_extra=fake_env)
    assert shown.returncode == 0, shown.stderr
    assert "token_selected_experts: int32 [5, 2]" in shown.stdout
    assert "tri_expert_first_token_offset=" in shown.stdout and "ref_expert_first_token_offset=" in shown.stdout
    assert "rerun     divergence:expert_first_token_offset" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--target", "nope", "--time", "1s"), "unknown target='nope'"),
        (("run", "--target", "three_step_sort", "--kernel", "nope", "--time", "1s"), "no kernel='nope'"),
        (("run", "--target", "three_step_sort", "--time", "5x"), "bad duration='5x'"),
        (("replay", "missing-dir"), "no such path="),
        (("show", "missing-dir"), "no finding at path="),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path, args, message):
    result = moefuzz(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_corrupt_corpus_file_is_a_clear_error_and_the_corpus_is_untouched(tmp_path, fake_env):
    moefuzz(
        "run", "--target", "fake_sort", "--kernel", "miscount-duplicates", "--time", "4s",
        "--device", "cpu", "--shrink-time", "10s", cwd=tmp_path, env_extra=fake_env,
    )  # fmt: skip
    path = next((tmp_path / "moefuzz-corpus" / "fake_sort").glob("[!.]*"))  # not the lock file
    (path / "finding.json").write_text('{"format": "moefuzz-finding", "format_version": 1, "case": ')
    before = snapshot(tmp_path / "moefuzz-corpus")
    for command in (("replay", "moefuzz-corpus"), ("shrink", str(path)), ("show", str(path))):
        result = moefuzz(*command, "--device", "cpu", cwd=tmp_path, env_extra=fake_env)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "corrupt finding" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(tmp_path / "moefuzz-corpus") == before


def test_targets_lists_each_target_with_its_kernels_and_bug_models(tmp_path):
    result = moefuzz("targets", cwd=tmp_path)
    assert result.returncode == 0
    assert "three_step_sort:" in result.stdout
    assert "triton" in result.stdout and "bug-duplicate-topk" in result.stdout and "bug model" in result.stdout
