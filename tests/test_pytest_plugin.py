"""The pytest plugin turns each reproducer of a corpus into a test that replays it."""

import os
from pathlib import Path

import pytest
from fake_corpus import build_fake_corpus

ROOT = Path(__file__).resolve().parent.parent
FAKE_TARGETS = str(ROOT / "tests" / "fake_targets.py")

pytest_plugins = ["pytester"]


@pytest.fixture
def corpus(pytester, monkeypatch):
    # The plugin comes from -p alone, whether or not its pytest11 entry point is installed.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("MOEFUZZ_TARGETS", raising=False)
    monkeypatch.setenv("COLUMNS", "300")  # room for the failure's message in the short summary
    return build_fake_corpus(pytester.path / "corpus")


def replay(pytester, *args):
    return pytester.runpytest(
        "-p", "moefuzz.ui.pytest_plugin", "-p", "no:cacheprovider", "--moefuzz-corpus", "corpus",
        f"--moefuzz-targets={FAKE_TARGETS}", "--moefuzz-device", "cpu", *args,
    )  # fmt: skip


def test_a_reproducer_that_still_fails_fails_with_its_report_and_a_fixed_one_passes(pytester, corpus):
    failing, passing = corpus
    result = replay(pytester, "-v", "-rf")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*collected 2 items",
            f"corpus/fake_sort/{passing.name}/finding.json::replay PASSED*",
            f"corpus/fake_sort/{failing.name}/finding.json::replay FAILED*",
            f"FAILED corpus/fake_sort/{failing.name}/finding.json::replay - *divergence:expert_first_token_offset: *",
        ],
        consecutive=False,
    )
    text = result.stdout.str()
    assert "tri_expert_first_token_offset=" in text and "ref_expert_first_token_offset=" in text
    assert "rerun     divergence:expert_first_token_offset" in text  # the report of `moefuzz show --rerun`


def test_kernel_override_and_marker_select_what_replays(pytester, corpus):
    result = replay(pytester, "--moefuzz-kernel", "correct", "-m", "moefuzz", "-v")
    result.assert_outcomes(passed=2)
    only_the_fixed = replay(pytester, "-k", "correct", "--collect-only", "-q")
    only_the_fixed.stdout.fnmatch_lines(
        ["corpus/fake_sort/correct--*/finding.json::replay", "*1/2 tests collected (1 deselected)*"]
    )


def test_a_missing_corpus_is_a_usage_error(pytester, corpus):
    result = replay(pytester, "--moefuzz-corpus", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--moefuzz-corpus: no such path='nowhere'*"])


def test_the_pyproject_pytest11_entry_point_loads_the_plugin_without_p(pytester, monkeypatch):
    tomllib = pytest.importorskip("tomllib")
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    assert entry_points == {"moefuzz": "moefuzz.ui.pytest_plugin"}
    # Installed as pip would: a dist-info on the path whose entry_points.txt declares it.
    info = pytester.mkdir("site") / "moefuzz_declared-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: moefuzz-declared\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[pytest11]\nmoefuzz = moefuzz.ui.pytest_plugin\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path / "site"), str(ROOT)]))
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    build_fake_corpus(pytester.path / "corpus")
    result = pytester.runpytest_subprocess("--moefuzz-corpus", "corpus", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines(["corpus/fake_sort/*/finding.json::replay", "2 tests collected*"])
