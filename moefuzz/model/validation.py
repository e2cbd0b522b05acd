"""Checks of a case against a contract's preconditions, shared by every target's ``check``.

Each raises :class:`~moefuzz.errors.CaseError` with a one-line message that names the offending
array or param as ``name=value!r``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from moefuzz.errors import CaseError
from moefuzz.model.case import Case


def require_array(case: Case, name: str, dtype: npt.DTypeLike, ndim: int) -> np.ndarray:
    """``case.arrays[name]``, which must exist with numpy ``dtype`` and ``ndim`` dimensions.

    Raises:
        CaseError: missing, or of another dtype or rank.
    """
    if name not in case.arrays:
        raise CaseError(f"case has no array {name} (arrays={sorted(case.arrays)!r})")
    array = case.arrays[name]
    if array.dtype != dtype:
        raise CaseError(f"{name} dtype={array.dtype.str!r}, not {np.dtype(dtype).name}")
    if array.ndim != ndim:
        raise CaseError(f"{name} ndim={array.ndim!r}, not {ndim}")
    return array


def require_int_param(case: Case, name: str, low: int | None = None, high: int | None = None) -> int:
    """``case.params[name]``, which must be an int (not a bool) within [low, high] when given.

    Raises:
        CaseError: missing, not an int, or out of range.
    """
    if name not in case.params:
        raise CaseError(f"case has no param {name} (params={sorted(case.params)!r})")
    value = case.params[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise CaseError(f"param {name}={value!r} is not an int")
    if (low is not None and value < low) or (high is not None and value > high):
        raise CaseError(f"param {name}={value!r} outside {low}..{high}")
    return value
