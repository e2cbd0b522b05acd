"""Input domain of three_step_sort (see :mod:`moefuzz.model.domain`): T, K, E, E local, and the
edges of its bug class (a repeated expert in one token's top-k past T = 256)."""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.model.domain import Dimension, Domain
from moefuzz.strategies.domains import TOKEN_VALUES, columns, param, routing_points, rows
from moefuzz_targets.three_step_sort.contract import MAX_EXPERTS, MAX_TOKENS, MAX_TOPK

IDS = "token_selected_experts"


def _ids(case: Case) -> np.ndarray:
    return case.arrays[IDS]


def _local_experts(case: Case) -> int:
    return int(case.params["end_expert"]) - int(case.params["start_expert"])


def _local_ids(case: Case) -> np.ndarray:
    return _ids(case) - int(case.params["start_expert"])


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
