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


def repeated_in_row(ids: np.ndarray) -> bool:
    """Some token of ``ids`` [T, K] names one expert twice in its top-k (sentinels included)."""
    if ids.ndim != 2 or ids.shape[1] < 2 or not ids.size:
        return False
    ordered = np.sort(ids, axis=1)
    return bool((ordered[:, 1:] == ordered[:, :-1]).any())


def routing_points(
    ids: str, local_experts: Callable[[Case], int], local_ids: Callable[[Case], np.ndarray]
) -> list[Point]:
    """Edges every routing-table target shares (array ``ids`` [T, K] of global ids): a duplicate
    past T = 256, a wide dense rank, ids that are not local (other ranks' experts, sentinels)."""

    def late_duplicate(case: Case) -> bool:
        return case.arrays[ids].shape[0] > 256 and repeated_in_row(case.arrays[ids])

    def not_local(case: Case) -> bool:
        local = local_ids(case)
        return bool(local.size) and bool(((local < 0) | (local >= local_experts(case))).any())

    return [
        Point("T>256 with a repeated expert", late_duplicate, "the three-step sort's duplicate top-k bug"),
        dense_point("E_local>512, >=90% populated", local_ids, local_experts, 513),
        Point("some ids not local", not_local),
    ]


def _alignment_edge(ids: np.ndarray) -> bool:
    """Some expert holds 127, 128 or 129 items."""
    counts = np.bincount(ids[ids >= 0].astype(np.int64), minlength=1)
    return bool(np.isin(counts, (127, 128, 129)).any())


def received_points(ids: str, max_experts: int, experts_param: str = "num_experts") -> list[Point]:
    """Edges of an EP rank's received table (array ``ids`` [N, K] of local ids or -1, E local in
    param ``experts_param``): E local past 512 and at ``max_experts`` with >= 90 % of the experts
    populated, every slot -1, an expert either side of the 128 alignment."""
    experts = param(experts_param)

    def table(case: Case) -> np.ndarray:
        return case.arrays[ids]

    return [
        dense_point("E_local>512, >=90% populated", table, experts, 513, note="a prefix sized for 512 experts"),
        dense_point(f"E_local={max_experts}, >=90% populated", table, experts, max_experts),
        Point("all slots -1", lambda case: bool(table(case).size) and bool((table(case) < 0).all())),
        Point("an expert with 127/128/129 items", lambda case: _alignment_edge(table(case)), "either side of 128"),
    ]
