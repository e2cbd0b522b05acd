"""Faults injected while findings are saved: SIGKILL at random moments, a full disk, a file-size
limit through the CLI, two writers on one corpus. After each, every finding reported saved loads,
and nothing half-saved is counted as known (docs/reliability.md lists the trials)."""

from __future__ import annotations

import errno
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from moefuzz.errors import StorageError
from moefuzz.model.case import Case
from moefuzz.store import files as corpus_files
from moefuzz.store.corpus import LOCK_FILE, PENDING_PREFIX, Finding, load_finding, save_finding, scan_target

ROOT = Path(__file__).resolve().parent.parent
WRITER = Path(__file__).with_name("corpus_writer.py")
KILL_TRIALS = 24


def start_writer(corpus: Path, seed: int, saves: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, str(WRITER), str(corpus), str(seed), str(saves)], stdout=out)


def wait_ready(log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not log.read_text().startswith("ready"):
        assert process.poll() is None and time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.01)


def reported_saves(log: Path) -> dict[str, set[str]]:
    """Finding id -> case digests the writer reported saved (only complete lines count)."""
    saved: dict[str, set[str]] = {}
    for line in log.read_text().splitlines(keepends=True):
        if line.startswith("saved ") and line.endswith("\n"):
            _, finding_id, digest = line.split()
            saved.setdefault(finding_id, set()).add(digest)
    return saved


def assert_whole(corpus: Path, saved: dict[str, set[str]]) -> list[Path]:
    """Every finding directory loads, every reported one is there, a scan counts exactly them as
    known and leaves no leftover of an interrupted save; return the leftovers it removed."""
    target = corpus / "fake_sort"
    directories = {p.name for p in target.iterdir() if not p.name.startswith(".")}
    assert set(saved) <= directories
    for name in directories:
        assert load_finding(target / name).finding_id == name
    scan = scan_target(corpus, "fake_sort")
    assert scan.problems == []
    assert scan.known == directories
    hidden = [p for p in target.rglob(".*") if p.name != LOCK_FILE]
    assert hidden == []
    return scan.removed


def make_finding(tokens: int, original_tokens: int | None = None) -> Finding:
    ids = (np.arange(tokens * 2, dtype=np.int32).reshape(tokens, 2) * 7) % 5
    original = (np.arange((original_tokens or tokens) * 2, dtype=np.int32).reshape(-1, 2) * 3) % 5
    params = {"num_experts": 5, "start_expert": 0, "end_expert": 5}
    return Finding(
        "fake_sort",
        "miscount-duplicates",
        "divergence",
        "expert_first_token_offset",
        "expert_first_token_offset[1]: ...",
        Case({"token_selected_experts": ids}, params),
        Case({"token_selected_experts": original}, params),
    )


@pytest.mark.slow
def test_sigkill_at_random_moments_of_saving_never_leaves_a_half_saved_finding_counted(tmp_path):
    corpus = tmp_path / "corpus"
    rng = random.Random(1717)
    saved: dict[str, set[str]] = {}
    cleaned = 0
    for trial in range(KILL_TRIALS):
        log = tmp_path / f"writer-{trial}.log"
        writer = start_writer(corpus, trial, 1_000_000, log)
        wait_ready(log, writer)
        time.sleep(rng.uniform(0.0, 0.15))
        writer.send_signal(signal.SIGKILL)
        assert writer.wait() == -signal.SIGKILL
        for finding_id, digests in reported_saves(log).items():
            saved.setdefault(finding_id, set()).update(digests)
        cleaned += bool(assert_whole(corpus, saved))
    assert saved, "no writer saved anything before it was killed"
    # A finding updated again after its last reported save holds a later case, never a broken one.
    for finding_id in saved:
        assert load_finding(corpus / "fake_sort" / finding_id).case.digest()


@pytest.mark.slow
def test_two_writers_on_one_corpus_keep_every_finding_complete(tmp_path):
    corpus = tmp_path / "corpus"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    writers = [start_writer(corpus, seed, 80, log) for seed, log in zip((1, 2), logs, strict=True)]
    for writer in writers:
        assert writer.wait(timeout=300) == 0
    saved = reported_saves(logs[0])
    for finding_id, digests in reported_saves(logs[1]).items():
        saved.setdefault(finding_id, set()).update(digests)
    assert assert_whole(corpus, saved) == []
    for finding_id in saved:
        directory = corpus / "fake_sort" / finding_id
        finding = load_finding(directory)
        assert finding.case.digest() in saved[finding_id]  # the last save of one writer, whole
        assert len(list(directory.glob("*.npz"))) == 2  # no case file left unnamed or missing


@pytest.mark.parametrize("update", [False, True], ids=["new", "update"])
@pytest.mark.parametrize("failing_write", [0, 1, 2])
def test_a_full_disk_during_a_save_is_a_storage_error_and_keeps_nothing_half_saved(
    tmp_path, monkeypatch, update, failing_write
):
    first = make_finding(3)
    if update:
        save_finding(tmp_path, first)
    second = make_finding(4, original_tokens=6)
    real_write, writes = corpus_files.write_fd, []

    def full_disk(fd: int, data: bytes) -> None:
        writes.append(len(data))
        if len(writes) - 1 == failing_write:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(fd, data)

    monkeypatch.setattr(corpus_files, "write_fd", full_disk)
    with pytest.raises(StorageError, match="No space left on device"):
        save_finding(tmp_path, second)
    monkeypatch.undo()
    scan = scan_target(tmp_path, "fake_sort")
    assert scan.problems == [] and scan.removed == []
    assert not [
        p
        for p in (tmp_path / "fake_sort").rglob("*")
        if p.name.startswith((PENDING_PREFIX, ".")) and p.name != LOCK_FILE
    ]
    if update:
        assert scan.known == {first.finding_id}
        assert load_finding(tmp_path / "fake_sort" / first.finding_id).case.digest() == first.case.digest()
    else:
        assert scan.known == set()
    # The disk has room again: the same save goes through.
    save_finding(tmp_path, second)
    assert load_finding(tmp_path / "fake_sort" / second.finding_id).case.digest() == second.case.digest()


def test_a_scan_removes_what_an_interrupted_save_left_and_reports_a_directory_without_a_finding(tmp_path):
    directory = save_finding(tmp_path, make_finding(3))
    target = directory.parent
    (target / f"{PENDING_PREFIX}x--y-0123").mkdir()
    (target / f"{PENDING_PREFIX}x--y-0123" / "finding.json").write_text("{}")
    (directory / ".finding.json.abcd.tmp").write_text("half")
    (target / "k9--crash-SIGSEGV").mkdir()  # what an older moefuzz left when killed mid-save
    (target / "k9--crash-SIGSEGV" / "case-000000000000.npz").write_bytes(b"")
    scan = scan_target(tmp_path, "fake_sort")
    assert scan.known == {directory.name}
    assert len(scan.problems) == 1 and "k9--crash-SIGSEGV" in scan.problems[0]
    assert sorted(p.name for p in scan.removed) == [".finding.json.abcd.tmp", f"{PENDING_PREFIX}x--y-0123"]
    assert sorted(p.name for p in target.iterdir()) == [LOCK_FILE, "k9--crash-SIGSEGV", directory.name]


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (1200, 1200))


@pytest.mark.slow
def test_a_campaign_whose_finding_cannot_be_written_exits_3_and_counts_nothing_known(tmp_path, fake_targets):
    # Files above 1200 bytes cannot be written (RLIMIT_FSIZE): the case files fit, finding.json not.
    result = subprocess.run(
        [sys.executable, "-m", "moefuzz", "run", "--target", "fake_sort", "--kernel", "miscount-duplicates",
         "--time", "3s", "--device", "cpu", "--shrink-time", "5s"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("moefuzz: error:")]
    assert len(errors) == 1 and "cannot save finding" in errors[0] and "Traceback" not in result.stderr
    scan = scan_target(tmp_path / "moefuzz-corpus", "fake_sort")
    assert scan.known == set() and scan.problems == [] and scan.removed == []
    assert [p.name for p in (tmp_path / "moefuzz-corpus" / "fake_sort").iterdir()] == [LOCK_FILE]
