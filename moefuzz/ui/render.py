"""Showing a finding in human terms: what ran, the input's shapes, the failing rows, the diff.

An array of more than :data:`SUMMARY_ENTRIES` entries is summarised (unless ``full``): shape,
dtype, min and max, distinct rows, per-expert counts for a routing table (an integer array whose
name says it holds expert ids), and the rows the failure names (tokens, requests or rows the
explanation and message mention), each cut to :data:`ROW_ENTRIES` entries.
"""

from __future__ import annotations

import re

import numpy as np

from moefuzz.model.outcome import Outcome
from moefuzz.store.corpus import Finding

#: Rows of an array shown in full before eliding.
MAX_ROWS = 12
#: Arrays with more entries than this are summarised unless ``full``.
SUMMARY_ENTRIES = 256
#: Entries of one row shown in a summary.
ROW_ENTRIES = 16
#: Names of arrays that hold expert ids (routing tables): their summary counts items per expert.
ROUTING_NAMES = ("topk", "selected_experts", "expert_ids")
#: Where an explanation or message names a row: ``token t=256``, ``request 3``, ``row 17``.
_NAMED_ROWS = re.compile(r"\b(?:token t=|t=|request |row |\[)(\d+)")


def render_finding(finding: Finding, rerun: Outcome | None = None, full: bool = False) -> str:
    """A plain-text report of ``finding`` (and of a fresh run of it, when given); arrays over
    :data:`SUMMARY_ENTRIES` entries are summarised unless ``full``."""
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
        if full:
            rows = array.reshape(array.shape[0], -1) if array.ndim >= 2 else array.reshape(1, -1)
            lines += [
                f"    [{i}] {row.tolist()}" if array.ndim >= 2 else f"    {row.tolist()}" for i, row in enumerate(rows)
            ]
        elif array.size > SUMMARY_ENTRIES:
            lines += ["    " + row for row in summary(name, array, finding)]
        else:
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


def named_rows(finding: Finding) -> list[int]:
    """Row numbers the failure names (its explanation and message), in order, at most
    :data:`MAX_ROWS`."""
    text = f"{finding.explanation}\n{finding.message}"
    found: list[int] = []
    for match in _NAMED_ROWS.finditer(text):
        row = int(match.group(1))
        if row not in found:
            found.append(row)
    return found[:MAX_ROWS]


def _cut(row: np.ndarray) -> str:
    values = row.reshape(-1)
    text = str(values[:ROW_ENTRIES].tolist())
    return text[:-1] + f", ... {values.size - ROW_ENTRIES} more]" if values.size > ROW_ENTRIES else text


def summary(name: str, array: np.ndarray, finding: Finding) -> list[str]:
    """A few lines about a large array: min/max, distinct rows, per-expert counts of a routing
    table, and the rows the failure names (see the module doc)."""
    flat = array.reshape(-1)
    finite = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    low = finite.min().item() if finite.size else None
    high = finite.max().item() if finite.size else None
    nans = f", {flat.size - finite.size} non-finite" if finite.size < flat.size else ""
    out = [f"(summary of {flat.size} entries; --full prints them) min {low} max {high}{nans}"]
    if array.ndim >= 2 and array.shape[0]:
        rows2d = array.reshape(array.shape[0], -1)
        uniq, counts = np.unique(rows2d, axis=0, return_counts=True)
        common = int(np.argmax(counts))
        most = f"; most common ({int(counts[common])}x) {_cut(uniq[common])}" if counts[common] > 1 else ""
        out.append(f"{uniq.shape[0]} distinct rows of {array.shape[0]}{most}")
    if array.dtype.kind in "iu" and any(part in name for part in ROUTING_NAMES):
        valid = flat[flat >= 0].astype(np.int64)
        per_expert = np.bincount(valid) if valid.size else np.zeros(0, dtype=np.int64)
        used = np.flatnonzero(per_expert)
        busiest = used[np.argsort(-per_expert[used], kind="stable")][:8]
        top = ", ".join(f"{int(e)}: {int(per_expert[e])}" for e in busiest)
        out.append(
            f"per expert: {used.size} experts hold {valid.size} items, {int((flat < 0).sum())} slots < 0; busiest {top}"
        )
    shown = [0, array.shape[0] - 1] if array.ndim >= 1 and array.shape[0] else []
    named = [r for r in named_rows(finding) if array.ndim >= 1 and r < array.shape[0]]
    for row in dict.fromkeys(named + shown):
        tag = " (named by the failure)" if row in named else ""
        out.append(f"[{row}] {_cut(array[row])}{tag}")
    return out
