"""What an exported script compares: the contract's comparison, read off by probing it.

A target's ``compare`` is code that needs moefuzz, so a standalone script cannot call it. Instead,
at export time, this module asks the contract three questions about each output of one case,
starting from the oracle's own outputs (``tri = ref``, which the contract accepts):

- which entries does it specify? Poison a block of entries (as the launch poisons a buffer the
  kernel never writes); if the contract still accepts, no entry of the block is specified, else
  halve the block. Ranges of specified entries come out in a few calls for the usual layouts.
- does it care about their order? Swap the first two specified entries that differ; if the
  contract accepts, the script compares the output's specified entries as sorted lists (weaker
  than a contract that sorts within segments, stated in the script).
- for floats, how close is close? Scale one specified non-zero entry by ``1 + 2**-k``, largest
  accepted ``k`` first; the accepted relative step becomes the script's ``rtol`` (measured at one
  entry: a contract whose tolerance has an absolute part is approximated).

The answers hold for this case only, which is all a reproducer needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from moefuzz.execute.poison import INT_POISON
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch

Compare = Callable[[Case, Mapping[str, np.ndarray], Mapping[str, np.ndarray]], "Mismatch | None"]

#: Outputs with more entries than this are not probed for specified entries: all are checked.
MAX_PROBED_ENTRIES = 1 << 14


@dataclass(frozen=True)
class OutputCheck:
    """How the script compares one output.

    Attributes:
        entries: flat ``[start, stop)`` ranges of the entries the contract specifies; ``None``
            for every entry.
        size: the output's number of entries.
        any_order: the contract accepts the specified entries in another order.
        rtol: for float outputs, the relative difference the contract accepts (0: exact).
        probed: False when the output was too large to probe (every entry is then checked).
    """

    entries: tuple[tuple[int, int], ...] | None
    size: int
    any_order: bool = False
    rtol: float = 0.0
    probed: bool = True

    def to_literal(self) -> dict[str, object]:
        """The dict the script's ``compare_output`` reads."""
        entries = None if self.entries is None else [list(r) for r in self.entries]
        return {"entries": entries, "any_order": self.any_order, "rtol": self.rtol}

    def describe(self) -> str:
        """``12 of 514 entries, in any order, rtol 0.0078125``."""
        count = self.size if self.entries is None else sum(stop - start for start, stop in self.entries)
        text = f"{count} of {self.size} entries"
        if not self.probed:
            text += " (too large to probe: all)"
        if self.any_order:
            text += ", in any order"
        if self.rtol:
            text += f", rtol {self.rtol:g}"
        return text


def derive_checks(compare: Compare, case: Case, ref: Mapping[str, np.ndarray]) -> dict[str, OutputCheck]:
    """The :class:`OutputCheck` of every output of ``ref``, from the contract's ``compare``.

    Raises:
        ValueError: the contract rejects the oracle's own outputs (a target bug).
    """
    if _rejects(compare, case, ref, {}):
        raise ValueError("the contract's compare rejects the oracle's own outputs")
    return {name: _check_output(compare, case, ref, name) for name in ref}


def _check_output(compare: Compare, case: Case, ref: Mapping[str, np.ndarray], name: str) -> OutputCheck:
    flat = np.ascontiguousarray(ref[name]).reshape(-1)
    if flat.size > MAX_PROBED_ENTRIES:
        return OutputCheck(None, flat.size, probed=False)

    def rejects_with(values: np.ndarray) -> bool:
        return _rejects(compare, case, ref, {name: values.reshape(ref[name].shape)})

    specified = np.zeros(flat.size, dtype=bool)
    candidate = flat.copy()
    blocks = [(0, flat.size)] if flat.size else []
    while blocks:
        start, stop = blocks.pop()
        candidate[start:stop] = _different(flat[start:stop])
        rejected = rejects_with(candidate)
        candidate[start:stop] = flat[start:stop]
        if not rejected:
            continue
        if stop - start == 1:
            specified[start] = True
            continue
        middle = (start + stop) // 2
        blocks += [(middle, stop), (start, middle)]
    entries = None if specified.all() else _ranges(specified)

    any_order = False
    where = np.flatnonzero(specified)
    values = flat[where]
    differ = np.flatnonzero(values[1:] != values[:-1])
    if differ.size:
        i, j = where[differ[0]], where[differ[0] + 1]
        swapped = flat.copy()
        swapped[[i, j]] = flat[[j, i]]
        any_order = not rejects_with(swapped)

    rtol = 0.0
    if flat.dtype.kind == "f":
        finite = where[np.isfinite(flat[where]) & (flat[where] != 0)]
        if finite.size:
            index = int(finite[0])
            for exponent in range(1, 31):
                step = 2.0**-exponent
                nudged = flat.copy()
                nudged[index] = flat[index] * (1 + step)
                if nudged[index] != flat[index] and not rejects_with(nudged):
                    rtol = step
                    break
    return OutputCheck(entries, flat.size, any_order, rtol)


def _rejects(compare: Compare, case: Case, ref: Mapping[str, np.ndarray], replaced: Mapping[str, np.ndarray]) -> bool:
    tri = {**ref, **replaced}
    try:
        return compare(case, tri, ref) is not None
    except Exception:  # a contract that cannot even read a poisoned entry does specify it
        return True


def _different(values: np.ndarray) -> np.ndarray:
    """``values`` with every entry changed: the launch poison where it differs, else another value."""
    if values.dtype.kind == "b":
        return ~values
    if values.dtype.kind == "f":
        return np.where(np.isnan(values), 0.0, np.nan).astype(values.dtype)
    poison = INT_POISON if np.iinfo(values.dtype).max >= INT_POISON else -1
    return np.where(values == poison, poison - 1, poison).astype(values.dtype)


def _ranges(mask: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The ``[start, stop)`` runs of True in a 1-D bool ``mask``."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return tuple((int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True))
