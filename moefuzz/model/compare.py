"""Comparing a kernel's outputs (``tri_*``) with the oracle's (``ref_*``).

Routing and paging outputs are integers: equality is exact (:func:`compare_exact`), and a
poisoned entry the kernel never wrote is a mismatch like any other. Float outputs (attention, a
weighted gather) are compared within a tolerance the contract states (:func:`compare_close`),
where a NaN, the float poison, is never close.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mismatch:
    """The first place where a kernel's output differs from the oracle's.

    Attributes:
        output: name of the output buffer, for example ``expert_first_token_offset``.
        index: flat index of the first differing entry.
        tri: the kernel's value there.
        ref: the oracle's value there.
        count: how many entries differ in this output.
        checked: how many entries of this output the contract specifies.
    """

    output: str
    index: int
    tri: int | float
    ref: int | float
    count: int
    checked: int

    def headline(self) -> str:
        """One line: ``output[index]: tri_=..., ref_=... (count of checked differ)``."""
        return (
            f"{self.output}[{self.index}]: tri_{self.output}={self.tri!r} "
            f"ref_{self.output}={self.ref!r} ({self.count} of {self.checked} entries differ)"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "output": self.output,
            "index": self.index,
            "tri": self.tri,
            "ref": self.ref,
            "count": self.count,
            "checked": self.checked,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Mismatch:
        return cls(
            output=str(data["output"]),
            index=int(data["index"]),  # type: ignore[call-overload]
            tri=data["tri"],  # type: ignore[arg-type]
            ref=data["ref"],  # type: ignore[arg-type]
            count=int(data["count"]),  # type: ignore[call-overload]
            checked=int(data["checked"]),  # type: ignore[call-overload]
        )


def compare_exact(output: str, tri: np.ndarray, ref: np.ndarray, where: np.ndarray | None = None) -> Mismatch | None:
    """Compare two arrays entry by entry, on the entries the contract specifies.

    Args:
        output: the output's name, for the report.
        tri: the kernel's output, any shape.
        ref: the oracle's output, the same number of entries.
        where: bool mask of the same shape; entries where it is False are unspecified by the
            contract and skipped. ``None`` checks every entry.

    Returns:
        The first mismatch (lowest flat index), or ``None`` when all checked entries are equal.
    """
    tri_flat = np.asarray(tri).reshape(-1)
    ref_flat = np.asarray(ref).reshape(-1)
    if tri_flat.shape != ref_flat.shape:
        return Mismatch(output, -1, int(tri_flat.size), int(ref_flat.size), -1, int(ref_flat.size))
    differs = tri_flat != ref_flat
    checked = int(ref_flat.size)
    if where is not None:
        mask = np.asarray(where, dtype=bool).reshape(-1)
        differs &= mask
        checked = int(mask.sum())
    bad = np.flatnonzero(differs)
    if bad.size == 0:
        return None
    first = int(bad[0])
    return Mismatch(output, first, tri_flat[first].item(), ref_flat[first].item(), int(bad.size), checked)


def compare_close(
    output: str,
    tri: np.ndarray,
    ref: np.ndarray,
    *,
    rtol: float,
    atol: float | np.ndarray,
    dtype: type[np.floating] = np.float64,
) -> Mismatch | None:
    """Compare two float arrays entry by entry: ``|tri - ref| <= atol + rtol * |ref|``.

    Args:
        output: the output's name, for the report.
        tri: the kernel's output, any shape and float dtype.
        ref: the oracle's output, the same number of entries.
        rtol: relative tolerance (a fraction of ``|ref|``).
        atol: absolute tolerance, a scalar or an array of ``ref``'s shape (a bound per entry).
        dtype: the numpy float type the difference and the bound are computed in.

    Returns:
        The first entry (lowest flat index) outside the tolerance, or where tri or ref is NaN
        (a never-written, NaN-poisoned entry included), with the kernel's and oracle's values
        there as stored; ``None`` when every entry is close. Different entry counts give the
        mismatch at index -1 that :func:`compare_exact` reports.
    """
    tri_flat = np.asarray(tri).reshape(-1)
    ref_flat = np.asarray(ref).reshape(-1)
    if tri_flat.shape != ref_flat.shape:
        return Mismatch(output, -1, int(tri_flat.size), int(ref_flat.size), -1, int(ref_flat.size))
    tri_values = tri_flat.astype(dtype)
    ref_values = ref_flat.astype(dtype)
    bound = np.reshape(atol, -1) if np.ndim(atol) else atol
    with np.errstate(invalid="ignore"):
        close = np.abs(tri_values - ref_values) <= bound + rtol * np.abs(ref_values)
    bad = np.flatnonzero(~close)  # NaN compares False, so it is bad
    if bad.size == 0:
        return None
    first = int(bad[0])
    return Mismatch(output, first, tri_flat[first].item(), ref_flat[first].item(), int(bad.size), int(ref_flat.size))
