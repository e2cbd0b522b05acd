"""Ground truth of moe_align_block_size's bug model for the benchmarks: where each bug lives and when it fires.

Magma's levels as numpy predicates on a case, no kernel run (see
:class:`~moefuzz_targets.shared.ground_truth.BugModel`): ``reached`` (the case takes the bug's
code path in ``kernels.py``), ``triggered`` (the case meets the bug's condition), and the smallest
failing case known, by hand. ``benchmarks.bug_models`` collects them; the engine never imports
this module.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz_targets.shared.ground_truth import BugModel


# Models vLLM's moe_align_block_size small-batch kernel before its -1 guard: the only check is
# `expert_id >= num_experts`, so a -1 padding id indexes tokens_cnts[(tid + 1) * E + id], the
# expert E-1 counter of the previous thread's row.
def negative_id_reached(case: Case) -> bool:
    """Some ``topk_ids`` [M, K] int32 entry is -1: it passes the unguarded ``ids < num_experts``
    test of ``_experts`` (NEGATIVE_ID_BUG) instead of being skipped."""
    return bool((case.arrays["topk_ids"] == -1).any())


def negative_id_triggered(case: Case) -> bool:
    """Exists (t, k): topk_ids[t, k] == -1, and no ``expert_map`` or expert_map[E - 1] >= 0.

    From ``_experts`` with NEGATIVE_ID_BUG: ``ids = where(ids < 0, ids + E, ids)`` turns -1 into
    expert E - 1, then the map (if any) keeps it when ``expert_map[E - 1]`` is local. The item
    then fills a slot of that expert's segment, so sorted_token_ids (compared as a set per
    segment) holds its flat index where the contract has the pad M * K. Exact.
    ``expert_map``: [E] int32, optional; E = ``num_experts``.
    """
    if not negative_id_reached(case):
        return False
    expert_map = case.arrays.get("expert_map")
    return expert_map is None or int(expert_map[int(case.params["num_experts"]) - 1]) >= 0


def negative_id_minimum() -> Case:
    """(M, K, E, duplicates, distinct rows, -, sum |ids|, has map, E_local, block_size, pad) =
    (1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0): ``topk_ids = [[-1]]``, E = 1, block_size 1, no map; the
    kernel pads the -1 to one slot, the contract to none. Equal to the corpus reproducer."""
    return Case(
        {"topk_ids": np.full((1, 1), -1, dtype=np.int32)},
        {"num_experts": 1, "block_size": 1, "pad_sorted_ids": False},
    )


BUG_MODELS: tuple[BugModel, ...] = (
    BugModel(
        "moe_align_block_size",
        "bug-negative-id",
        negative_id_reached,
        negative_id_triggered,
        negative_id_minimum(),
    ),
)
