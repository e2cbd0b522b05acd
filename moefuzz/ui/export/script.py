"""Writing a finding as a standalone Python script for a bug report.

The script is: a header (what failed, where, how to run it), the body of
:mod:`moefuzz.ui.export.runtime` (the launch context, poisoned outputs, the plain comparison), then
the case as data: params, arrays inline as numpy literals (or from an ``.npz`` beside the script
when large), the output shapes and dtypes, and the checks read off the contract
(:mod:`moefuzz.ui.export.checks`). It imports torch, triton (through the kernel), numpy and the
kernel's and oracle's own modules; never moefuzz.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moefuzz.model.case import Case
from moefuzz.model.target import OutputSpec
from moefuzz.ui.export.checks import OutputCheck

#: Arrays with at most this many entries are written inline; larger ones go to the ``.npz``.
INLINE_MAX_ENTRIES = 4096
RUNTIME_FILE = Path(__file__).with_name("runtime.py")
IMPORTS_END = "# -- end of imports --"
LINE_WIDTH = 100


@dataclass(frozen=True)
class ScriptParts:
    """Everything the script says besides the case.

    Attributes:
        header: comment lines (without ``#``) for the top of the script: target, kernel,
            signature, versions, the case in one line.
        kernel_entry, oracle_entry: ``"module:function"`` the script imports.
        recorded: the failure moefuzz recorded, printed next to a divergence.
        script_name: the script's file name, for its usage line.
        npz_name: file name of the ``.npz`` beside the script, for the large arrays.
    """

    header: Sequence[str]
    kernel_entry: str
    oracle_entry: str
    recorded: str
    script_name: str
    npz_name: str


def render_script(
    parts: ScriptParts,
    case: Case,
    output_specs: Mapping[str, OutputSpec],
    checks: Mapping[str, OutputCheck],
    inline_max: int = INLINE_MAX_ENTRIES,
) -> tuple[str, dict[str, np.ndarray]]:
    """The script's text, and the arrays that go to the ``.npz`` (empty: no ``.npz`` needed)."""
    runtime = RUNTIME_FILE.read_text()
    imports, _, body = runtime.partition(IMPORTS_END)
    imports = imports[imports.index("from __future__") :]
    lines = ["#!/usr/bin/env python3", '"""' + _docstring(parts).rstrip() + '\n"""', ""]
    lines += [f"# {comment_safe(line)}".rstrip() for line in parts.header]
    lines += ["", imports.rstrip(), "", body.strip("\n"), "", ""]
    lines.append("# -- the case " + "-" * 86)
    lines.append(f"PARAMS = {dict(case.params)!r}")
    large: dict[str, np.ndarray] = {}
    lines.append("INPUTS = {")
    for name, array in case.arrays.items():
        literal = inline_literal(array) if array.size <= inline_max else None
        lines.append(f"    # {comment_safe(name)}: {array.dtype} {list(array.shape)}")
        if literal is None:
            large[name] = array
            lines.append(f"    {name!r}: from_npz({name!r}, {parts.npz_name!r}),")
        else:
            lines.append(textwrap.indent(f"{name!r}: {literal},", "    "))
    lines.append("}")
    lines.append("# Output buffers: (shape, torch dtype), filled with poison before the launch.")
    lines.append("OUTPUTS = {")
    lines += [f"    {name!r}: ({list(spec.shape)!r}, {spec.dtype!r})," for name, spec in output_specs.items()]
    lines.append("}")
    lines.append("# What is compared, read off moefuzz's contract for this case at export time:")
    lines += [f"#   {comment_safe(f'{name}: {check.describe()}')}" for name, check in checks.items()]
    lines.append("CHECKS = {")
    lines += [f"    {name!r}: {check.to_literal()!r}," for name, check in checks.items()]
    lines.append("}")
    lines += [
        "",
        'if __name__ == "__main__":',
        "    sys.exit(",
        "        main(",
        "            sys.argv[1:],",
        f"            kernel={parts.kernel_entry!r},",
        f"            oracle={parts.oracle_entry!r},",
        "            params=PARAMS,",
        "            inputs=INPUTS,",
        "            outputs=OUTPUTS,",
        "            checks=CHECKS,",
        f"            recorded={parts.recorded!r},",
        "        )",
        "    )",
        "",
    ]
    return "\n".join(lines), large


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The ``.npz`` of ``arrays`` (compressed, plain numeric data: loads with ``allow_pickle=False``)."""
    buffer = io.BytesIO()
    contiguous: dict[str, Any] = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    np.savez_compressed(buffer, **contiguous)
    return buffer.getvalue()


def inline_literal(array: np.ndarray) -> str | None:
    """``np.array([...], dtype=np.X).reshape(...)`` rebuilding ``array`` bit for bit, or ``None``
    when no literal does (a NaN with a payload)."""
    flat = array.reshape(-1).tolist()
    values = ", ".join(_scalar(v) for v in flat)
    wrapped = textwrap.fill(values, LINE_WIDTH - 8, break_long_words=False, break_on_hyphens=False)
    literal = f"np.array(\n    [\n{textwrap.indent(wrapped, '        ')}\n    ],\n    dtype={array.dtype.name!r},\n)"
    if array.ndim != 1:
        literal += f".reshape({tuple(array.shape)!r})"
    # What the literal evaluates to: repr() round-trips ints, bools and floats, except NaN payloads.
    rebuilt = np.array([float("nan") if v != v else v for v in flat], dtype=array.dtype)
    if rebuilt.tobytes() != np.ascontiguousarray(array).tobytes():
        return None
    return literal


def _scalar(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
    return repr(value)


def comment_safe(text: str) -> str:
    """``text`` fit for one line of a comment or a docstring: every character that is not
    printable (a newline, a NUL, a line or paragraph separator) becomes its ``repr`` escape, a
    backslash is doubled and ``"`` is written ``\\"``, so finding text can end neither the comment
    nor the docstring, nor form an escape there."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char.isprintable():
            out.append(char)
        else:
            out.append(repr(char)[1:-1])
    return "".join(out)


def _docstring(parts: ScriptParts) -> str:
    title = comment_safe(parts.header[0]) if parts.header else ""
    return f"""Reproducer written by `moefuzz export`: {title}

Standalone: needs torch, triton, numpy and the kernel's own package on sys.path (for moefuzz's
built-in targets, the root of a moefuzz checkout, for `targets`); moefuzz is not imported.

    python3 {parts.script_name} [--device auto|cuda|cpu] [--kernel module:function]

Without a GPU (or with --device cpu) it sets TRITON_INTERPRET=1 before triton is imported, so
Triton kernels run in the interpreter on the CPU. Exit status: 0 when the kernel's outputs equal
the oracle's on every checked entry, 1 when they differ; a crashing kernel crashes the script."""
