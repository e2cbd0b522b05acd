"""What a corpus file may hold: one place that checks every field of ``finding.json`` and every
``.npz`` header before anything reads further, and that turns names into safe path components.

A corpus is input moefuzz did not write itself as often as input it did (a pull request adds
reproducers; an artifact is downloaded from CI). So a corpus file is treated as hostile until
checked: every field's JSON type is checked, every count is bounded (a finding asking for a
billion replay runs would stall CI), every array's dtype, shape and decompressed size is read
from its ``.npy`` header and bounded *before* the data is decompressed, nothing is unpickled
(``allow_pickle=False`` always), and a symlink, FIFO or device where a corpus file should be is
refused, never followed. Every refusal is one :class:`~moefuzz.errors.CorpusError` naming the
file and the field.

Names of targets and kernels come from plugins, which are code the user chose to run, but they
still become directory names: :func:`safe_component` maps any name to one path component that
cannot climb out of the corpus (``../x`` becomes ``x-<hash>``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from moefuzz.errors import CorpusError
from moefuzz.model.case import ALLOWED_DTYPES

#: Largest ``finding.json`` read, in bytes.
MAX_FINDING_BYTES = 16 * 2**20
#: Most launches a finding may record (``found.runs``); the bound of ``moefuzz run --perturb``.
MAX_RUNS = 1000
#: Most arrays in one case.
MAX_CASE_ARRAYS = 64
#: Most dimensions of one case array.
MAX_NDIM = 8
#: Most bytes a case's arrays may take once decompressed (all arrays together); also the largest
#: ``.npz`` file read.
MAX_CASE_BYTES = 256 * 2**20
#: Longest name (array, param, target, kernel) kept as it is in a path.
MAX_NAME = 100
#: Largest absolute value of an integer field (a count, an index).
MAX_INT = 2**64
#: Bound of a seed: any integer Python reads from JSON (at most 4300 digits); a seed costs no work,
#: and seeds are derived from the user's ``--seed`` by products and sums.
MAX_SEED = 10**4300

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_CASE_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.npz")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RATE = re.compile(r"(\d{1,4})/(\d{1,4})")


def safe_component(name: str) -> str:
    """``name`` as one path component that stays inside its parent directory.

    A name of letters, digits, ``_``, ``.`` and ``-`` that does not start with ``.`` or ``-`` and
    has at most :data:`MAX_NAME` characters is kept as it is (every built-in target and kernel
    name); any other becomes its safe characters plus 8 hex digits of its sha256, so two
    different names never share a directory: ``../x`` -> ``x-<hash>``.
    """
    if _SAFE_COMPONENT.fullmatch(name):
        return name
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).lstrip(".-")[:80] or "_"
    return f"{slug}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def check_regular_file(path: Path, what: str, max_bytes: int) -> os.stat_result:
    """``lstat`` of a corpus file that moefuzz is about to read: a plain file (not a symlink, a
    FIFO, a device or a directory) of at most ``max_bytes``.

    Raises:
        FileNotFoundError: no such file (the caller says what was missing).
        CorpusError: anything else than a plain file, or a larger one.
    """
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise CorpusError(f"{what} path={str(path)!r} is a symlink; corpus files are never followed")
    if not stat.S_ISREG(info.st_mode):
        raise CorpusError(f"{what} path={str(path)!r} is not a plain file")
    if info.st_size > max_bytes:
        raise CorpusError(f"{what} path={str(path)!r} has {info.st_size} bytes, above the bound {max_bytes}")
    return info


def parse_document(data: bytes, where: Path) -> dict[str, Any]:
    """Parse and check a ``finding.json``'s bytes (see :func:`check_document`).

    Raises:
        CorpusError: not UTF-8 JSON, nested too deep, or a field :func:`check_document` refuses.
    """
    try:
        document = json.loads(data.decode("utf-8"))
        json.dumps(document, ensure_ascii=False).encode("utf-8")  # lone surrogates are refused here
    except UnicodeError as exc:
        raise CorpusError(f"corrupt finding path={str(where)!r}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise CorpusError(f"corrupt finding path={str(where)!r}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:  # integers of too many digits, nesting too deep
        raise CorpusError(f"corrupt finding path={str(where)!r}: not JSON ({type(exc).__name__})") from None
    return check_document(document, where)


def check_document(document: object, where: Path) -> dict[str, Any]:
    """Check every field of a parsed ``finding.json``; return it unchanged.

    Required: ``format`` ``"moefuzz-finding"``, ``format_version`` 1, ``target``, ``kernel``,
    ``kind`` (strings) and ``case`` (a case manifest: ``file`` a plain ``.npz`` name, ``sha256``,
    ``params`` identifiers to JSON scalars, ``arrays`` identifiers to ``{dtype, shape}`` within
    :data:`MAX_CASE_ARRAYS`, :data:`MAX_NDIM` and :data:`MAX_CASE_BYTES`). Optional, type-checked
    when present: ``id``, ``detail``, ``signature``, ``message``, ``explanation`` (strings),
    ``mismatch``, ``original_case``, ``environment`` (strings to strings), ``found`` (``runs`` in
    1..:data:`MAX_RUNS`, ``failures`` in 0..runs, ``launch_rate`` ``failures/runs``, ...), ``shrink``, ``sanitizer``.

    Raises:
        CorpusError: the first field that breaks these rules, named as ``field=value``.
    """
    from moefuzz.store.corpus import FORMAT, FORMAT_VERSION

    check = _Checker(where)
    if not isinstance(document, dict):
        raise CorpusError(f"path={str(where)!r} is not a moefuzz finding (not a JSON object)")
    if document.get("format") != FORMAT:
        raise CorpusError(f"path={str(where)!r} is not a moefuzz finding (format={document.get('format')!r})")
    if document.get("format_version") != FORMAT_VERSION or isinstance(document.get("format_version"), bool):
        version = document.get("format_version")
        raise CorpusError(f"path={str(where)!r} has format_version={version!r}; this moefuzz reads {FORMAT_VERSION}")
    for name in ("target", "kernel", "kind"):
        check.string(document, name, required=True, max_len=MAX_NAME * 2)
    for name in ("id", "detail", "signature", "message", "explanation"):
        check.string(document, name)
    check.mismatch(document.get("mismatch"))
    check.manifest(document.get("case"), "case", required=True)
    check.manifest(document.get("original_case"), "original_case")
    environment = check.mapping(document, "environment")
    for key in environment:
        check.string(environment, key, prefix="environment.")
    check.found(check.mapping(document, "found"))
    check.shrink(check.mapping(document, "shrink"))
    sanitizer = document.get("sanitizer", [])
    if not isinstance(sanitizer, list) or not all(isinstance(entry, dict) for entry in sanitizer):
        check.fail("sanitizer", sanitizer, "is not a list of objects")
    return document


def read_case_arrays(file: Path, expected: dict[str, Any]) -> dict[str, np.ndarray]:
    """Read the arrays of a case ``.npz`` after checking, from each ``.npy`` header, that it
    holds exactly the arrays of the manifest ``expected`` (``{name: {dtype, shape}}``, already
    bounded by :func:`check_document`), with their dtypes and shapes: no array is decompressed
    past what its manifest allows, and nothing is unpickled.

    Raises:
        CorpusError: a missing, non-plain, oversized or corrupt file, or arrays that differ
            from the manifest.
    """
    try:
        check_regular_file(file, "case file", MAX_CASE_BYTES)
    except FileNotFoundError:
        raise CorpusError(f"missing case file path={str(file)!r}") from None
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            names = [member.filename.removesuffix(".npy") for member in members]
            if len(set(names)) != len(names) or set(names) != set(expected):
                raise CorpusError(
                    f"case file path={str(file)!r} holds arrays {sorted(names)[:MAX_CASE_ARRAYS]}, "
                    f"manifest says {sorted(expected)}"
                )
            for member, name in zip(members, names, strict=True):
                want = expected[name]
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
                    else:
                        raise CorpusError(f"case file path={str(file)!r}: array {name} has .npy version {version}")
                if dtype.str not in ALLOWED_DTYPES or dtype.str != want["dtype"] or list(shape) != want["shape"]:
                    raise CorpusError(
                        f"case file path={str(file)!r}: array {name} is {dtype.str}{list(shape)}, "
                        f"manifest says {want['dtype']}{want['shape']}"
                    )
                with archive.open(member) as handle:
                    arrays[name] = np.lib.format.read_array(handle, allow_pickle=False)
    except CorpusError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, OSError, zlib.error
        raise CorpusError(f"corrupt case file path={str(file)!r}: {type(exc).__name__}: {exc}") from None
    return arrays


class _Checker:
    """Field checks of one ``finding.json``; each failure is one CorpusError naming the field."""

    def __init__(self, where: Path) -> None:
        self.where = where

    def fail(self, field: str, value: object, problem: str) -> NoReturn:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise CorpusError(f"corrupt finding path={str(self.where)!r}: {field}={shown} {problem}")

    def string(
        self, holder: dict[str, Any], name: str, required: bool = False, max_len: int | None = None, prefix: str = ""
    ) -> None:
        if name not in holder:
            if required:
                raise CorpusError(f"corrupt finding path={str(self.where)!r}: no field {prefix}{name}")
            return
        value = holder[name]
        if not isinstance(value, str):
            self.fail(prefix + name, value, "is not a string")
        if max_len is not None and len(value) > max_len:
            self.fail(prefix + name, value, f"is longer than {max_len} characters")

    def integer(self, holder: dict[str, Any], name: str, low: int, high: int, prefix: str = "") -> int | None:
        if name not in holder:
            return None
        value = holder[name]
        if type(value) is not int:
            self.fail(prefix + name, value, "is not an integer")
        if not low <= value <= high:
            self.fail(prefix + name, value, f"is outside the bounds {low}..{high}")
        return int(value)

    def number(self, holder: dict[str, Any], name: str, prefix: str = "", finite: bool = True) -> None:
        if name not in holder:
            return
        value = holder[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self.fail(prefix + name, value, "is not a number")
        if finite and not (math.isfinite(value) and abs(value) <= MAX_INT):
            self.fail(prefix + name, value, "is not a finite number")

    def mapping(self, holder: dict[str, Any], name: str) -> dict[str, Any]:
        value = holder.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, value, "is not an object")
        return value

    def int_list(self, holder: dict[str, Any], name: str, prefix: str) -> None:
        value = holder.get(name, [])
        if not isinstance(value, list) or not all(type(v) is int and abs(v) <= MAX_INT for v in value):
            self.fail(prefix + name, value, "is not a list of integers")

    def mismatch(self, value: object) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.fail("mismatch", value, "is not an object or null")
        for name in ("output", "index", "tri", "ref", "count", "checked"):
            if name not in value:
                raise CorpusError(f"corrupt finding path={str(self.where)!r}: no field mismatch.{name}")
        self.string(value, "output", prefix="mismatch.")
        for name in ("index", "count", "checked"):
            self.integer(value, name, 0, MAX_INT, prefix="mismatch.")
        for name in ("tri", "ref"):
            self.number(value, name, prefix="mismatch.", finite=False)

    def manifest(self, value: object, field: str, required: bool = False) -> None:
        if value is None and not required:
            return
        if not isinstance(value, dict):
            self.fail(field, value, "is not a case manifest object")
        prefix = f"{field}."
        file = value.get("file")
        if not isinstance(file, str) or not _CASE_FILE.fullmatch(file):
            self.fail(prefix + "file", file, "is not the name of an .npz beside finding.json")
        if "sha256" in value and not (isinstance(value["sha256"], str) and _SHA256.fullmatch(value["sha256"])):
            self.fail(prefix + "sha256", value["sha256"], "is not a hex sha256")
        params = value.get("params", {})
        if not isinstance(params, dict) or len(params) > MAX_CASE_ARRAYS:
            self.fail(prefix + "params", params, f"is not an object of at most {MAX_CASE_ARRAYS} params")
        for name, scalar in params.items():
            if not _IDENTIFIER.fullmatch(name):
                self.fail(prefix + "params", name, "is not a parameter name (an identifier)")
            if not isinstance(scalar, (int, float, bool, str)):
                self.fail(f"{prefix}params.{name}", scalar, "is not a JSON scalar")
            if isinstance(scalar, int) and not isinstance(scalar, bool) and abs(scalar) > MAX_INT:
                self.fail(f"{prefix}params.{name}", scalar, "is too large")
        arrays = value.get("arrays")
        if not isinstance(arrays, dict) or len(arrays) > MAX_CASE_ARRAYS:
            self.fail(prefix + "arrays", arrays, f"is not an object of at most {MAX_CASE_ARRAYS} arrays")
        total = 0
        for name, spec in arrays.items():
            where = f"{prefix}arrays.{name}"
            if not _IDENTIFIER.fullmatch(name):
                self.fail(prefix + "arrays", name, "is not an array name (an identifier)")
            if not isinstance(spec, dict) or spec.get("dtype") not in ALLOWED_DTYPES:
                self.fail(where, spec, f"is not {{dtype, shape}} with a dtype of {sorted(ALLOWED_DTYPES)}")
            shape = spec.get("shape")
            if (
                not isinstance(shape, list)
                or len(shape) > MAX_NDIM
                or not all(type(n) is int and 0 <= n <= MAX_CASE_BYTES for n in shape)
            ):
                self.fail(where + ".shape", shape, f"is not a list of at most {MAX_NDIM} sizes of 0..{MAX_CASE_BYTES}")
            total += math.prod(shape) * np.dtype(spec["dtype"]).itemsize
            if total > MAX_CASE_BYTES:
                self.fail(where + ".shape", shape, f"takes the case above {MAX_CASE_BYTES} bytes")

    def found(self, found: dict[str, Any]) -> None:
        prefix = "found."
        runs = self.integer(found, "runs", 1, MAX_RUNS, prefix)
        self.integer(found, "failures", 0, runs if runs is not None else MAX_RUNS, prefix)
        for name in ("seed", "plan_seed"):
            self.integer(found, name, -MAX_SEED, MAX_SEED, prefix)
        for name in ("execs", "stream_index"):
            self.integer(found, name, 0, MAX_INT, prefix)
        self.number(found, "elapsed_s", prefix)
        self.string(found, "at", prefix=prefix)
        self.rate(found, "launch_rate", prefix)
        if "nondeterministic" in found and not isinstance(found["nondeterministic"], bool):
            self.fail(prefix + "nondeterministic", found["nondeterministic"], "is not true or false")
        perturbation = found.get("perturbation")
        if perturbation is not None and not isinstance(perturbation, dict):
            self.fail(prefix + "perturbation", perturbation, "is not an object or null")

    def shrink(self, shrink: dict[str, Any]) -> None:
        prefix = "shrink."
        for name in ("size", "original_size"):
            self.int_list(shrink, name, prefix)
        for name in ("candidates", "accepted"):
            self.integer(shrink, name, 0, MAX_INT, prefix)
        self.number(shrink, "seconds", prefix)
        if "complete" in shrink and not isinstance(shrink["complete"], bool):
            self.fail(prefix + "complete", shrink["complete"], "is not true or false")
        self.rate(shrink, "rate", prefix)

    def rate(self, holder: dict[str, Any], name: str, prefix: str) -> None:
        if name in holder:
            rate = holder[name]
            match = _RATE.fullmatch(rate) if isinstance(rate, str) else None
            if match is None or not int(match.group(1)) <= int(match.group(2)) <= MAX_RUNS:
                self.fail(prefix + name, rate, f"is not 'failures/runs' with runs <= {MAX_RUNS}")
