"""Input domain of three_step_sort (see :mod:`moefuzz.model.domain`): T, K, E, E local, and the
edges of its bug class (a repeated expert in one token's top-k past T = 256)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moefuzz.model.case import Case
from moefuzz.model.domain import Dimension, Domain, Point
from moefuzz.strategies.domains import TOKEN_VALUES, columns, dense_point, param, rows
from moefuzz_targets.three_step_sort.contract import MAX_EXPERTS, MAX_TOKENS, MAX_TOPK

IDS = "token_selected_experts"


def _ids(case: Case) -> np.ndarray:
    return case.arrays[IDS]


def _local_experts(case: Case) -> int:
    return int(case.params["end_expert"]) - int(case.params["start_expert"])


def _local_ids(case: Case) -> np.ndarray:
    return _ids(case) - int(case.params["start_expert"])


def repeated_in_row(ids: np.ndarray) -> bool:
    """Some token names one expert twice in its top-k (sentinels included)."""
    if ids.shape[1] < 2 or not ids.size:
        return False
    ordered = np.sort(ids, axis=1)
    return bool((ordered[:, 1:] == ordered[:, :-1]).any())


def routing_points(
    ids: str, local_experts: Callable[[Case], int], local_ids: Callable[[Case], np.ndarray]
) -> list[Point]:
    """Edges every routing-table target shares: a duplicate past T = 256, a wide dense rank, ids
    that are not local (other ranks' experts, sentinels)."""

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


DOMAIN = Domain(
    dimensions=(
        Dimension("T", rows(IDS), 0, MAX_TOKENS, TOKEN_VALUES, cap="max_tokens"),
        Dimension("K", columns(IDS), 1, MAX_TOPK, cap="max_topk"),
        Dimension("E", param("num_experts"), 1, MAX_EXPERTS, (256, 512), cap="max_experts"),
        Dimension(
            "E_local",
            _local_experts,
            1,
            MAX_EXPERTS,
            (256, 512),
            cap="max_experts",
            note="0 (s = e) is legal, not drawn",
        ),
    ),
    edges=tuple(routing_points(IDS, _local_experts, _local_ids)),
)
