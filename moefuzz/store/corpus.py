"""The corpus: saved reproducers, as data only (JSON + ``.npz``), written atomically.

Layout::

    corpus/<target>/<finding-id>/finding.json         # what failed, how, where; see Finding
    corpus/<target>/<finding-id>/case-<sha12>.npz      # the (shrunk) case's arrays
    corpus/<target>/<finding-id>/original-<sha12>.npz  # the case as first found

``finding-id`` is ``<kernel>--<signature slug>``: one reproducer per kernel and failure
signature, so a campaign that meets the same bug again does not grow the corpus. Arrays are read
with ``allow_pickle=False``; the format is versioned (``format_version``) and a reader refuses
versions it does not know. Every write goes to a temporary name in the same directory, is
fsync'ed, then renamed over the final name: a reader sees the old file or the new one, never half
of one, and ``finding.json`` only ever names a case file that is complete.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moefuzz.errors import CaseError, CorpusError
from moefuzz.model.case import ALLOWED_DTYPES, Case
from moefuzz.model.compare import Mismatch

FORMAT = "moefuzz-finding"
FORMAT_VERSION = 1
FINDING_FILE = "finding.json"


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
        slug = re.sub(r"[^A-Za-z0-9_]+", "-", self.signature).strip("-")
        return f"{self.kernel}--{slug}"


def finding_dir(corpus: Path, finding: Finding) -> Path:
    """``corpus/<target>/<finding-id>``."""
    return corpus / finding.target / finding.finding_id


def save_finding(corpus: Path | None, finding: Finding, directory: Path | None = None) -> Path:
    """Write (or update) a finding atomically; return its directory.

    The directory is ``corpus/<target>/<finding-id>`` unless ``directory`` is given (to update a
    finding where it lies). The case files are written first, ``finding.json`` last, each by
    rename; case files no longer named by the new ``finding.json`` are removed afterwards.
    """
    if directory is None:
        if corpus is None:
            raise ValueError("save_finding needs a corpus or a directory")
        directory = finding_dir(corpus, finding)
    directory.mkdir(parents=True, exist_ok=True)
    case_file = _write_case(directory, "case", finding.case)
    original_file = _write_case(directory, "original", finding.original_case)
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
    atomic_write(directory / FINDING_FILE, (json.dumps(document, indent=2, sort_keys=False) + "\n").encode())
    for stale in directory.glob("*.npz"):
        if stale.name not in (case_file, original_file):
            stale.unlink(missing_ok=True)
    return directory


def load_finding(path: Path) -> Finding:
    """Read a finding from its directory or its ``finding.json``.

    Raises:
        CorpusError: unreadable, not JSON, wrong format or version, missing fields, a case file
            that is missing, corrupt, holds non-numeric data or does not match its manifest.
    """
    file = path / FINDING_FILE if path.is_dir() else path
    try:
        document = json.loads(file.read_text())
    except FileNotFoundError:
        raise CorpusError(f"no finding at path={str(path)!r} (expected {FINDING_FILE})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read path={str(file)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CorpusError(f"corrupt finding path={str(file)!r}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise CorpusError(f"path={str(file)!r} is not a moefuzz finding (format={found!r})")
    if document.get("format_version") != FORMAT_VERSION:
        version = document.get("format_version")
        raise CorpusError(f"path={str(file)!r} has format_version={version!r}; this moefuzz reads {FORMAT_VERSION}")
    try:
        mismatch = Mismatch.from_json(document["mismatch"]) if document.get("mismatch") else None
        case = _read_case(file.parent, document["case"])
        original = _read_case(file.parent, document.get("original_case") or document["case"])
        return Finding(
            target=str(document["target"]),
            kernel=str(document["kernel"]),
            kind=str(document["kind"]),
            detail=str(document.get("detail", "")),
            message=str(document.get("message", "")),
            case=case,
            original_case=original,
            mismatch=mismatch,
            explanation=str(document.get("explanation", "")),
            environment=dict(document.get("environment", {})),
            found=dict(document.get("found", {})),
            shrink=dict(document.get("shrink", {})),
            sanitizer=[dict(entry) for entry in document.get("sanitizer", [])],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorpusError(f"corrupt finding path={str(file)!r}: bad or missing field {exc}") from None


def iter_finding_paths(paths: Iterable[Path]) -> list[Path]:
    """Expand files and corpus directories into finding directories, sorted, deduplicated.

    Raises:
        CorpusError: a path that does not exist, or a directory holding no finding.
    """
    found: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise CorpusError(f"no such path={str(path)!r}")
        if path.is_file():
            found.add(path.parent if path.name == FINDING_FILE else path)
            continue
        hits = [p.parent for p in path.rglob(FINDING_FILE)]
        if not hits:
            raise CorpusError(f"no findings under path={str(path)!r}")
        found.update(hits)
    return sorted(found)


# -- internals ------------------------------------------------------------------------------
def _case_manifest(case: Case, file_name: str) -> dict[str, Any]:
    return {
        "file": file_name,
        "sha256": case.digest(),
        "params": dict(case.params),
        "arrays": {n: {"dtype": a.dtype.str, "shape": list(a.shape)} for n, a in case.arrays.items()},
    }


def _write_case(directory: Path, stem: str, case: Case) -> str:
    name = f"{stem}-{case.digest()[:12]}.npz"
    if not (directory / name).exists():
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {n: np.ascontiguousarray(a) for n, a in case.arrays.items()}
        np.savez_compressed(buffer, **arrays)
        atomic_write(directory / name, buffer.getvalue())
    return name


def _read_case(directory: Path, manifest: dict[str, Any]) -> Case:
    file = directory / str(manifest["file"])
    if file.parent != directory or not file.name.endswith(".npz"):
        raise CorpusError(f"case file={manifest['file']!r} must be an .npz beside finding.json")
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {name: np.array(data[name]) for name in data.files}
    except FileNotFoundError:
        raise CorpusError(f"missing case file path={str(file)!r}") from None
    except Exception as exc:  # zipfile, ValueError (pickled object arrays), OSError
        raise CorpusError(f"corrupt case file path={str(file)!r}: {type(exc).__name__}: {exc}") from None
    expected = manifest["arrays"]
    if set(arrays) != set(expected):
        raise CorpusError(
            f"case file path={str(file)!r} holds arrays {sorted(arrays)}, manifest says {sorted(expected)}"
        )
    for name, array in arrays.items():
        if (
            array.dtype.str not in ALLOWED_DTYPES
            or array.dtype.str != expected[name]["dtype"]
            or list(array.shape) != list(expected[name]["shape"])
        ):
            want = f"{expected[name]['dtype']}{expected[name]['shape']}"
            raise CorpusError(
                f"case file path={str(file)!r}: array {name} is {array.dtype.str}{list(array.shape)}, "
                f"manifest says {want}"
            )
    try:
        case = Case(arrays, dict(manifest["params"]))
    except CaseError as exc:
        raise CorpusError(f"case file path={str(file)!r}: {exc}") from None
    if manifest.get("sha256") and case.digest() != manifest["sha256"]:
        raise CorpusError(f"case file path={str(file)!r} does not match its sha256 in finding.json")
    return case


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half:
    a temporary file in the same directory, fsync'ed, then renamed over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
