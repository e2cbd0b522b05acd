"""A corpus of hostile or broken files: each is refused with one line and exit 2 by ``replay``
and ``show``, before any worker starts, and nothing in or outside the corpus is touched; names
that would climb out of the corpus do not."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fake_corpus import build_fake_corpus

from moefuzz.errors import CorpusError
from moefuzz.model.case import Case
from moefuzz.store.corpus import FINDING_FILE, Finding, finding_dir, iter_finding_paths, load_finding, save_finding
from moefuzz.store.schema import MAX_FINDING_BYTES, safe_component
from moefuzz.ui.cli import main

Mutation = Callable[[Path, Path], None]


def edit(change: Callable[[dict], None]) -> Mutation:
    def mutate(directory: Path, outside: Path) -> None:
        document = json.loads((directory / FINDING_FILE).read_text())
        change(document)
        (directory / FINDING_FILE).write_text(json.dumps(document))

    return mutate


def set_field(path: str, value: object) -> Mutation:
    *parents, last = path.split(".")

    def change(document: dict) -> None:
        holder = document
        for name in parents:
            holder = holder.setdefault(name, {})
        holder[last] = value

    return edit(change)


def npz_header_claims(shape: tuple[int, ...]) -> Mutation:
    """The case file's .npy header claims ``shape`` (a billion entries) over a few bytes of data."""

    def mutate(directory: Path, outside: Path) -> None:
        npz = next(directory.glob("case-*.npz"))
        with zipfile.ZipFile(npz, "w") as archive, archive.open("token_selected_experts.npy", "w") as handle:
            np.lib.format.write_array_header_1_0(handle, {"descr": "<i4", "fortran_order": False, "shape": shape})
            handle.write(b"\0" * 40)

    return mutate


def symlinked_finding(directory: Path, outside: Path) -> None:
    shutil.rmtree(directory)
    directory.symlink_to(outside / "finding", target_is_directory=True)


def symlinked_case_file(directory: Path, outside: Path) -> None:
    npz = next(directory.glob("case-*.npz"))
    shutil.copy(npz, outside / "case.npz")
    npz.unlink()
    npz.symlink_to(outside / "case.npz")


def fifo_finding(directory: Path, outside: Path) -> None:
    (directory / FINDING_FILE).unlink()
    os.mkfifo(directory / FINDING_FILE)


def oversized_finding(directory: Path, outside: Path) -> None:
    with (directory / FINDING_FILE).open("r+b") as handle:
        handle.truncate(MAX_FINDING_BYTES + 1)


def deeply_nested(directory: Path, outside: Path) -> None:
    (directory / FINDING_FILE).write_text("[" * 100_000 + "]" * 100_000)


def no_finding_json(directory: Path, outside: Path) -> None:
    (directory / FINDING_FILE).unlink()


HOSTILE: dict[str, tuple[Mutation, str]] = {
    "runs-not-an-integer": (set_field("found.runs", "abc"), "found.runs='abc' is not an integer"),
    "runs-unbounded": (set_field("found.runs", 10**12), "found.runs=1000000000000 is outside the bounds 1..1000"),
    "runs-a-bool": (set_field("found.runs", True), "found.runs=True is not an integer"),
    "failures-above-runs": (
        edit(lambda d: d["found"].update(runs=4, failures=9)),
        "found.failures=9 is outside the bounds 0..4",
    ),
    "rate-unbounded": (set_field("shrink.rate", "1/99999999"), "shrink.rate='1/99999999'"),
    "mismatch-index-a-string": (
        set_field("mismatch", {"output": "x", "index": "0", "tri": 1, "ref": 2, "count": 1, "checked": 1}),
        "mismatch.index='0'",
    ),
    "kind-not-a-string": (set_field("kind", ["divergence"]), "kind=['divergence'] is not a string"),
    "format-version-a-bool": (set_field("format_version", True), "format_version=True"),
    "param-not-a-scalar": (set_field("case.params.num_experts", [3]), "case.params.num_experts=[3]"),
    "array-name-a-path": (
        edit(lambda d: d["case"]["arrays"].update({"../x": {"dtype": "<i4", "shape": [1]}})),
        "is not an array name",
    ),
    "case-file-outside": (set_field("case.file", "../../outside/case.npz"), "is not the name of an .npz"),
    "manifest-above-the-size-cap": (
        set_field("case.arrays.token_selected_experts", {"dtype": "<i4", "shape": [65536, 65536]}),
        "takes the case above",
    ),
    "object-dtype-in-manifest": (
        set_field("case.arrays.token_selected_experts", {"dtype": "|O", "shape": [5, 2]}),
        "is not {dtype, shape}",
    ),
    "npz-header-claims-a-billion-entries": (
        npz_header_claims((10**9,)),
        "array token_selected_experts is <i4[1000000000]",
    ),
    "lone-surrogate": (set_field("message", "\ud800"), "not UTF-8 text"),
    "nested-too-deep": (deeply_nested, "not JSON"),
    "oversized-finding-json": (oversized_finding, "above the bound"),
    "finding-json-a-fifo": (fifo_finding, "is not a plain file"),
    "symlinked-case-file": (symlinked_case_file, "is a symlink"),
    "symlinked-finding-directory": (symlinked_finding, "is a symlink"),
    "no-finding-json": (no_finding_json, "incomplete finding"),
}


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root``, symlinks not followed: file bytes, link targets, kinds."""
    seen: dict[str, object] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            if path.is_symlink():
                seen[str(path)] = ("link", os.readlink(path))
            elif path.is_file():
                seen[str(path)] = path.read_bytes()
            else:
                seen[str(path)] = "dir" if path.is_dir() else "other"
    return seen


def cli(*args: str):
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()
    return runner.invoke(main, list(args))


@pytest.fixture
def hostile_corpus(tmp_path, fake_targets, monkeypatch):
    """(corpus, the finding directory to spoil, a directory outside the corpus); starting a
    worker fails the test."""
    corpus = tmp_path / "corpus"
    directory, _ = build_fake_corpus(corpus)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copytree(directory, outside / "finding")
    (outside / "precious.txt").write_text("keep me")

    def no_worker(self):
        raise AssertionError("a worker started for a hostile corpus")

    monkeypatch.setattr("moefuzz.runtime.isolation.Executor.start", no_worker)
    return corpus, directory, outside


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_finding_is_one_line_exit_2_nothing_run_nothing_touched(hostile_corpus, tmp_path, name):
    corpus, directory, outside = hostile_corpus
    mutate, message = HOSTILE[name]
    mutate(directory, outside)
    before = snapshot(tmp_path)
    for command in (("replay", str(corpus), "--device", "cpu"), ("show", str(directory))):
        result = cli(*command)
        assert result.exit_code == 2, (command, result.output, result.exception)
        assert result.stdout == ""
        assert result.stderr.startswith("moefuzz: error: ") and result.stderr.count("\n") == 1, result.stderr
        if command[0] == "replay" or name != "no-finding-json":  # show names the missing file itself
            assert message in result.stderr, result.stderr
    assert snapshot(tmp_path) == before


def test_shrink_and_sanitize_never_write_through_a_symlinked_finding(hostile_corpus, tmp_path):
    _, directory, outside = hostile_corpus
    symlinked_finding(directory, outside)
    before = snapshot(tmp_path)
    for command in (("shrink", str(directory), "--device", "cpu"), ("sanitize", str(directory / FINDING_FILE))):
        result = cli(*command)
        assert result.exit_code == 2 and "is a symlink" in result.stderr, (command, result.output)
    finding = load_finding(outside / "finding")
    with pytest.raises(CorpusError, match="is a symlink"):
        save_finding(None, finding, directory)
    assert snapshot(tmp_path) == before


def test_a_symlinked_target_directory_is_neither_written_nor_scanned(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "fake_sort").symlink_to(outside, target_is_directory=True)
    finding = Finding("fake_sort", "k", "crash", "SIGSEGV", "", Case({"x": np.zeros(2)}), Case({"x": np.zeros(2)}))
    with pytest.raises(CorpusError, match="is a symlink"):
        save_finding(tmp_path / "corpus", finding)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("target", "kernel"),
    [("fake_sort", "../x"), ("fake_sort", "../../../../tmp/x"), ("../../t", "k"), ("a/b", ".."), ("t", "-rf")],
)
def test_target_and_kernel_names_never_climb_out_of_the_corpus(tmp_path, target, kernel):
    corpus = tmp_path / "corpus"
    case = Case({"x": np.arange(3, dtype=np.int32)})
    directory = save_finding(corpus, Finding(target, kernel, "crash", "SIGSEGV", "", case, case))
    assert directory == finding_dir(corpus, Finding(target, kernel, "crash", "SIGSEGV", "", case, case))
    assert directory.parent.parent == corpus and directory.resolve().parent.parent == corpus.resolve()
    assert not directory.name.startswith((".", "-")) and not directory.parent.name.startswith((".", "-"))
    assert [p for p in tmp_path.iterdir()] == [corpus]
    loaded = load_finding(directory)
    assert (loaded.target, loaded.kernel) == (target, kernel)


def test_safe_names_keep_every_plain_name_and_tell_apart_the_rest():
    assert safe_component("bug-duplicate-topk") == "bug-duplicate-topk"
    assert safe_component("triton.v2") == "triton.v2"
    assert safe_component("a/b") != safe_component("a?b")
    assert "/" not in safe_component("../x") and safe_component("..") not in ("..", ".")


def test_replay_refuses_a_symlink_anywhere_below_the_corpus(hostile_corpus):
    corpus, _, outside = hostile_corpus
    (corpus / "elsewhere").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CorpusError, match="is a symlink"):
        iter_finding_paths([corpus])


def test_every_field_a_campaign_writes_passes_the_checks(tmp_path):
    case = Case({"x": np.arange(6, dtype=np.int32).reshape(3, 2)}, {"num_experts": 4, "mode": "a", "flag": True})
    found = {
        "at": "2026-12-03T00:00:00+00:00", "seed": 10**30, "plan_seed": 10**30 * 1_000_003 + 5, "elapsed_s": 1.5,
        "execs": 9, "runs": 1000, "failures": 3, "launch_rate": "3/8", "nondeterministic": True,
        "perturbation": {"config": {"num_warps": 8}, "poison": "nan", "seed": 1, "stress": False}, "stream_index": 4,
    }  # fmt: skip
    shrink = {"size": [3, 2], "original_size": [9, 2], "candidates": 5, "accepted": 2, "seconds": 0.5,
              "complete": True, "passes": {"truncate_tokens": [3, 1]}, "rate": "2/24"}  # fmt: skip
    sanitizer = [{"tool": "memcheck", "errors": None, "exit_code": 0, "first": [], "seconds": 1.0}]
    finding = Finding("t", "k", "crash", "SIGSEGV", "m", case, case, found=found, shrink=shrink, sanitizer=sanitizer)
    loaded = load_finding(save_finding(tmp_path, finding))
    assert (loaded.found, loaded.shrink, loaded.sanitizer) == (found, shrink, finding.sanitizer)
