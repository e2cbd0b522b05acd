"""Showing a finding in human terms: what ran, the input's shapes, the failing rows, the diff."""

from __future__ import annotations

import numpy as np

from moefuzz.model.outcome import Outcome
from moefuzz.store.corpus import Finding

#: Rows of an array shown in full before eliding.
MAX_ROWS = 12


def render_finding(finding: Finding, rerun: Outcome | None = None) -> str:
    """A plain-text report of ``finding`` (and of a fresh run of it, when given)."""
    lines = [
        f"finding   {finding.finding_id}",
        f"target    {finding.target}   kernel {finding.kernel}",
        f"failure   {finding.signature}",
        f"message   {finding.message}",
    ]
    if finding.explanation:
        lines += [f"where     {part}" for part in finding.explanation.splitlines()]
    env = finding.environment
    if env:
        lines.append(
            f"found on  {env.get('device_name', env.get('device', '?'))}, torch {env.get('torch', '?')}, "
            f"triton {env.get('triton', '?')}, python {env.get('python', '?')}"
        )
    if finding.shrink.get("size"):
        lines.append(
            f"shrunk    size {tuple(finding.shrink['size'])} from {tuple(finding.shrink.get('original_size', []))} "
            f"in {finding.shrink.get('seconds', '?')} s, {finding.shrink.get('candidates', '?')} candidates"
        )
    lines.append("input")
    for name, value in finding.case.params.items():
        lines.append(f"  {name} = {value!r}")
    for name, array in finding.case.arrays.items():
        lines.append(f"  {name}: {array.dtype} {list(array.shape)}")
        lines += ["    " + row for row in _rows(array, finding)]
    if rerun is not None:
        lines.append(f"rerun     {rerun.signature}: {rerun.message or 'outputs equal the oracle'}")
    return "\n".join(lines)


def _rows(array: np.ndarray, finding: Finding) -> list[str]:
    """The rows of a 2-D array: all if few, else the first, the last, the unusual ones (rows
    that differ from the most common row) and the row of the mismatch when it can be told."""
    if array.ndim != 2:
        flat = array.reshape(-1)
        text = np.array2string(flat[:64], separator=", ", max_line_width=100)
        return [text + (" ..." if flat.size > 64 else "")]
    if array.shape[0] <= MAX_ROWS:
        return [f"[{i}] {row.tolist()}" for i, row in enumerate(array)]
    uniq, inverse, counts = np.unique(array, axis=0, return_inverse=True, return_counts=True)
    common = int(np.argmax(counts))
    unusual = [int(i) for i in np.flatnonzero(inverse.reshape(-1) != common)]
    shown = sorted({0, array.shape[0] - 1, *unusual[:MAX_ROWS]})
    out = [f"(rows equal to {uniq[common].tolist()} unless listed: {int(counts[common])} of {array.shape[0]})"]
    out += [f"[{i}] {array[i].tolist()}" for i in shown]
    if len(unusual) > MAX_ROWS:
        out.append(f"... {len(unusual) - MAX_ROWS} more unusual rows")
    return out
