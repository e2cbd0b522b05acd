"""Measures and edges shared by the built-in targets' input domains (:mod:`moefuzz.model.domain`).

Each function returns a ``measure(case) -> int`` or a ``hit(case) -> bool`` over a case's arrays
and params; they read shapes and small reductions only, so that counting coverage costs little
next to drawing a case.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moefuzz.model.case import Case
from moefuzz.model.domain import Point

#: T values where routing kernels change path or fill a block exactly, shared by every
#: routing target's domain (FlashInfer's fused sort takes T <= 256, vLLM switches at 1024).
TOKEN_VALUES = (1, 255, 256, 257, 1023, 1024, 1025)


def rows(name: str) -> Callable[[Case], int]:
    """Rows of array ``name`` (shape[0])."""
    return lambda case: int(case.arrays[name].shape[0])


def columns(name: str, axis: int = 1) -> Callable[[Case], int]:
    """Size of array ``name`` along ``axis``."""
    return lambda case: int(case.arrays[name].shape[axis])


def param(name: str) -> Callable[[Case], int]:
    """Integer param ``name``."""
    return lambda case: int(case.params[name])


def max_of(name: str) -> Callable[[Case], int]:
    """Largest entry of array ``name`` (0 when it is empty)."""
    return lambda case: int(case.arrays[name].max()) if case.arrays[name].size else 0


def populated_share(ids: Callable[[Case], np.ndarray], experts: Callable[[Case], int]) -> Callable[[Case], float]:
    """Share of the ``experts(case)`` experts that at least one id of ``ids(case)`` names (ids
    outside [0, E) not counted)."""

    def share(case: Case) -> float:
        num = experts(case)
        flat = ids(case).reshape(-1)
        flat = flat[(flat >= 0) & (flat < num)]
        return float(np.unique(flat).size) / num if num else 0.0

    return share


def dense_point(
    name: str,
    ids: Callable[[Case], np.ndarray],
    experts: Callable[[Case], int],
    at_least: int,
    share: float = 0.9,
    note: str = "",
) -> Point:
    """``E >= at_least`` with at least ``share`` of the experts populated."""
    populated = populated_share(ids, experts)
    return Point(name, lambda case: experts(case) >= at_least and populated(case) >= share, note)


def not_multiple(measure: Callable[[Case], int], of: int, name: str, note: str = "") -> Point:
    """The measure is not a multiple of ``of``."""
    return Point(name, lambda case: measure(case) % of != 0, note)


def param_is(name: str, value: object, label: str | None = None) -> Point:
    """Param ``name`` equals ``value``."""
    return Point(label or f"{name}={value}", lambda case: case.params.get(name) == value)
