"""The corpus: saved reproducers, as data only (JSON + ``.npz``), written so that no crash can hide one.

Layout::

    corpus/<target>/<finding-id>/finding.json         # what failed, how, where; see Finding
    corpus/<target>/<finding-id>/case-<sha12>.npz      # the (shrunk) case's arrays
    corpus/<target>/<finding-id>/original-<sha12>.npz  # the case as first found
    corpus/<target>/.moefuzz.lock                      # held by whoever writes under <target>

``finding-id`` is ``<kernel>--<signature slug>``: one reproducer per kernel and failure
signature, so a campaign that meets the same bug again does not grow the corpus. Target and
kernel names pass through :func:`~moefuzz.store.schema.safe_component` before they become
directories. Arrays are read with ``allow_pickle=False`` after their headers are checked; the
format is versioned (``format_version``) and every field is checked by :mod:`moefuzz.store.schema`.

Crash safety: a new finding is written complete into ``<target>/.pending-*``, every file
fsync'ed, then the directory is renamed into place and its parent fsync'ed: a finding directory
without its ``finding.json`` is never created. An update (shrinking, sanitizer table) writes the
new case files, then renames a new ``finding.json`` over the old one, then removes the case
files no longer named: ``finding.json`` only ever names complete files. Writers hold the
target's ``.moefuzz.lock`` (:mod:`filelock`) for each save, so concurrent campaigns on one corpus
keep every finding complete. :func:`scan_target` (a campaign's start-up) removes what interrupted
writers left (``.pending-*`` directories, ``.*.tmp`` files) and reports, without counting it as
known, any directory that holds no valid finding. Readers never follow a symlink in the corpus,
and writers never write or delete through one. An ``OSError`` while saving (a full disk) is a
:class:`~moefuzz.errors.StorageError`.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moefuzz.errors import CaseError, CorpusError, StorageError
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch
from moefuzz.store.files import (
    LOCK_FILE,
    atomic_write,
    fsync_dir,
    is_plain_file,
    is_temporary,
    locked,
    make_dirs,
    refuse_symlink,
    remove,
    write_file,
)
from moefuzz.store.schema import (
    MAX_FINDING_BYTES,
    check_regular_file,
    parse_document,
    read_case_arrays,
    safe_component,
)

FORMAT = "moefuzz-finding"
FORMAT_VERSION = 1
FINDING_FILE = "finding.json"
#: Prefix of the directory a new finding is written into before it is renamed into place.
PENDING_PREFIX = ".pending-"


@dataclass
class Finding:
    """A failure worth keeping: the case that shows it and what it showed.

    Attributes:
        target, kernel: what ran.
        kind, detail, message: the outcome (see :mod:`moefuzz.model.outcome`).
        case: the smallest failing case known.
        original_case: the case as the campaign first met it.
        mismatch: for divergences, the first differing entry of ``case``.
        explanation: the target's human reading of the mismatch (token, k, expert...).
        environment: versions of python, torch, triton, numpy and the device it failed on.
        found: campaign facts (``seed``, ``elapsed_s``, ``execs``, ``at``).
        shrink: shrinker facts (``seconds``, ``candidates``, ``accepted``, ``size``...).
        sanitizer: what each compute-sanitizer tool said about the case (see
            :mod:`moefuzz.execute.sanitize`), one dict per tool; empty until ``moefuzz sanitize``.
    """

    target: str
    kernel: str
    kind: str
    detail: str
    message: str
    case: Case
    original_case: Case
    mismatch: Mismatch | None = None
    explanation: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    found: dict[str, Any] = field(default_factory=dict)
    shrink: dict[str, Any] = field(default_factory=dict)
    sanitizer: list[dict[str, Any]] = field(default_factory=list)

    @property
    def signature(self) -> str:
        return f"{self.kind}:{self.detail}" if self.detail else self.kind

    @property
    def finding_id(self) -> str:
        """``<kernel>--<signature slug>``, one safe path component (see
        :func:`~moefuzz.store.schema.safe_component`)."""
        slug = re.sub(r"[^A-Za-z0-9_]+", "-", self.signature).strip("-")
        return f"{safe_component(self.kernel)}--{slug}"


def finding_dir(corpus: Path, finding: Finding) -> Path:
    """``corpus/<target>/<finding-id>``, the target's name made a safe path component."""
    return corpus / safe_component(finding.target) / finding.finding_id


def save_finding(corpus: Path | None, finding: Finding, directory: Path | None = None) -> Path:
    """Write (or update) a finding so that a crash at any moment leaves the old one or the new
    one, complete; return its directory.

    The directory is ``corpus/<target>/<finding-id>`` unless ``directory`` is given (to update a
    finding where it lies; its ``finding.json`` is accepted too). A new finding is written into a
    ``.pending-*`` directory beside it and renamed into place; an existing one gets its case files
    first and ``finding.json`` last, each by rename. Files and directories are fsync'ed. The
    target directory's lock is held throughout.

    Raises:
        CorpusError: the finding directory or its parent is a symlink (nothing is written).
        StorageError: the disk refused a write (full, read-only, gone) or the lock was not
            released within :data:`LOCK_TIMEOUT_S`; nothing half-written is left to be counted.
    """
    if directory is None:
        if corpus is None:
            raise ValueError("save_finding needs a corpus or a directory")
        directory = finding_dir(corpus, finding)
    elif directory.name == FINDING_FILE and not directory.is_dir():
        directory = directory.parent
    parent = directory.parent
    try:
        make_dirs(parent)
        with locked(parent):
            refuse_symlink(directory, "finding directory")
            if directory.is_dir():
                _update_in_place(directory, finding)
            else:
                _write_new(directory, finding)
    except (CorpusError, StorageError):
        raise
    except OSError as exc:
        raise StorageError(
            f"cannot save finding to path={str(directory)!r}: {exc.strerror or exc}; nothing half-saved was kept"
        ) from None
    return directory


def load_finding(path: Path) -> Finding:
    """Read a finding from its directory or its ``finding.json``, after
    :mod:`moefuzz.store.schema` has checked every field and every array header.

    Raises:
        CorpusError: unreadable, not JSON, wrong format or version, a field of the wrong type
            or out of bounds, a symlink or non-plain file, a case file that is missing, corrupt,
            holds non-numeric data or does not match its manifest.
    """
    file = path / FINDING_FILE if path.is_dir() else path
    refuse_symlink(file.parent, "finding directory")
    try:
        check_regular_file(file, "finding", MAX_FINDING_BYTES)
        data = file.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"no finding at path={str(path)!r} (expected {FINDING_FILE})") from None
    except OSError as exc:
        raise CorpusError(f"cannot read path={str(file)!r}: {exc.strerror or exc}") from None
    document = parse_document(data, file)
    mismatch = document.get("mismatch")
    case = _read_case(file.parent, document["case"])
    original = _read_case(file.parent, document["original_case"]) if document.get("original_case") else case
    return Finding(
        target=document["target"],
        kernel=document["kernel"],
        kind=document["kind"],
        detail=document.get("detail", ""),
        message=document.get("message", ""),
        case=case,
        original_case=original,
        mismatch=Mismatch.from_json(mismatch) if mismatch else None,
        explanation=document.get("explanation", ""),
        environment=dict(document.get("environment", {})),
        found=dict(document.get("found", {})),
        shrink=dict(document.get("shrink", {})),
        sanitizer=[dict(entry) for entry in document.get("sanitizer", [])],
    )


def iter_finding_paths(paths: Iterable[Path]) -> list[Path]:
    """Expand files and corpus directories into finding directories, sorted, deduplicated.

    A directory named like a finding (``<kernel>--<signature>``) without a ``finding.json`` is an
    error, not skipped; ``.pending-*`` directories and other hidden entries (leftovers of an
    interrupted save, the lock file) are never findings and are passed over.

    Raises:
        CorpusError: a path that does not exist, a directory holding no finding, a finding
            directory without its ``finding.json``, or a symlink below a given directory.
    """
    found: set[Path] = set()
    for path in paths:
        if not os.path.lexists(path):
            raise CorpusError(f"no such path={str(path)!r}")
        if not path.is_dir():
            found.add(path.parent if path.name == FINDING_FILE else path)
            continue
        hits = []
        for root, dirs, files in os.walk(path):
            here = Path(root)
            dirs[:] = sorted(name for name in dirs if not name.startswith("."))
            for name in dirs:
                if (here / name).is_symlink():
                    raise CorpusError(f"path={str(here / name)!r} is a symlink; corpus directories are never followed")
            if FINDING_FILE in files or FINDING_FILE in dirs:
                hits.append(here)
                dirs.clear()
            elif "--" in here.name and here != path:
                raise CorpusError(_incomplete(here))
        if not hits:
            if "--" in path.name:
                raise CorpusError(_incomplete(path))
            raise CorpusError(f"no findings under path={str(path)!r}")
        found.update(hits)
    return sorted(found)


@dataclass
class CorpusScan:
    """What :func:`scan_target` found under ``corpus/<target>``.

    Attributes:
        known: names of the finding directories that hold a valid finding (a campaign counts a
            failure with one of these ids as known, not new).
        problems: one line per directory that holds no valid finding (a missing or corrupt
            ``finding.json``, a missing case file, a symlink); never counted as known. A
            campaign that meets the same failure again rewrites such a directory complete.
        removed: leftovers of interrupted saves that were removed (``.pending-*`` directories,
            ``.*.tmp`` files).
    """

    known: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


def scan_target(corpus: Path, target: str) -> CorpusScan:
    """The findings of ``target`` in ``corpus``, each loaded and checked; under the target's
    lock, leftovers of interrupted saves are removed first.

    Raises:
        CorpusError: ``corpus/<target>`` is a symlink.
        StorageError: the lock was not released within :data:`LOCK_TIMEOUT_S`, or a leftover
            could not be removed.
    """
    directory = corpus / safe_component(target)
    scan = CorpusScan()
    if not os.path.lexists(directory):
        return scan
    refuse_symlink(directory, "target directory")
    try:
        with locked(directory):
            for entry in sorted(directory.iterdir()):
                if entry.name == LOCK_FILE:
                    continue
                if entry.name.startswith(PENDING_PREFIX) or is_temporary(entry):
                    remove(entry)
                    scan.removed.append(entry)
                elif entry.name.startswith("."):
                    continue
                elif entry.is_symlink():
                    scan.problems.append(f"path={str(entry)!r} is a symlink; corpus directories are never followed")
                elif entry.is_dir():
                    for leftover in entry.iterdir():
                        if is_temporary(leftover):
                            remove(leftover)
                            scan.removed.append(leftover)
                    try:
                        load_finding(entry)
                    except CorpusError as exc:
                        scan.problems.append(str(exc))
                    else:
                        scan.known.add(entry.name)
    except OSError as exc:
        raise StorageError(f"cannot clean corpus path={str(directory)!r}: {exc.strerror or exc}") from None
    return scan


# -- internals ------------------------------------------------------------------------------
def _document(finding: Finding, case_file: str, original_file: str) -> bytes:
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "id": finding.finding_id,
        "target": finding.target,
        "kernel": finding.kernel,
        "kind": finding.kind,
        "detail": finding.detail,
        "signature": finding.signature,
        "message": finding.message,
        "mismatch": finding.mismatch.to_json() if finding.mismatch else None,
        "explanation": finding.explanation,
        "case": _case_manifest(finding.case, case_file),
        "original_case": _case_manifest(finding.original_case, original_file),
        "environment": finding.environment,
        "found": finding.found,
        "shrink": finding.shrink,
        "sanitizer": finding.sanitizer,
    }
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()


def _case_manifest(case: Case, file_name: str) -> dict[str, Any]:
    return {
        "file": file_name,
        "sha256": case.digest(),
        "params": dict(case.params),
        "arrays": {n: {"dtype": a.dtype.str, "shape": list(a.shape)} for n, a in case.arrays.items()},
    }


def _case_file(stem: str, case: Case) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {n: np.ascontiguousarray(a) for n, a in case.arrays.items()}
    np.savez_compressed(buffer, **arrays)
    return f"{stem}-{case.digest()[:12]}.npz", buffer.getvalue()


def _write_new(directory: Path, finding: Finding) -> None:
    """Write the finding complete into a pending directory beside ``directory``, then rename it
    into place; on any failure the pending directory is removed."""
    pending = directory.parent / f"{PENDING_PREFIX}{directory.name[:60]}-{secrets.token_hex(4)}"
    os.mkdir(pending)
    try:
        case_file, case_data = _case_file("case", finding.case)
        original_file, original_data = _case_file("original", finding.original_case)
        write_file(pending / case_file, case_data)
        write_file(pending / original_file, original_data)
        write_file(pending / FINDING_FILE, _document(finding, case_file, original_file))
        fsync_dir(pending)
        os.rename(pending, directory)
    except BaseException:
        shutil.rmtree(pending, ignore_errors=True)
        raise
    fsync_dir(directory.parent)


def _update_in_place(directory: Path, finding: Finding) -> None:
    """New case files, then ``finding.json`` by rename, then the case files it no longer names."""
    names = []
    for stem, case in (("case", finding.case), ("original", finding.original_case)):
        name, data = _case_file(stem, case)
        names.append(name)
        if not is_plain_file(directory / name):
            atomic_write(directory / name, data)
    atomic_write(directory / FINDING_FILE, _document(finding, names[0], names[1]))
    for stale in directory.glob("*.npz"):
        if stale.name not in names:
            stale.unlink(missing_ok=True)
    fsync_dir(directory)


def _read_case(directory: Path, manifest: dict[str, Any]) -> Case:
    file = directory / manifest["file"]
    arrays = read_case_arrays(file, manifest["arrays"])
    try:
        case = Case(arrays, dict(manifest.get("params", {})))
    except CaseError as exc:
        raise CorpusError(f"case file path={str(file)!r}: {exc}") from None
    if manifest.get("sha256") and case.digest() != manifest["sha256"]:
        raise CorpusError(f"case file path={str(file)!r} does not match its sha256 in finding.json")
    return case


def _incomplete(directory: Path) -> str:
    return (
        f"incomplete finding path={str(directory)!r}: no {FINDING_FILE} (a save an older moefuzz did not "
        "finish, or a deleted file); delete the directory or restore the file"
    )
