"""Ground truth of ep_gather's bug model for the benchmarks: where each bug lives and when it fires.

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

#: Slots of ep_gather's term check per numpy step: bounds the [slots, H] temporary.
GATHER_SLOTS_PER_STEP = 4096


# Models vLLM deep_gemm_utils' apply_expert_map without its `expert_id != -1` guard: -1 became
# expert_map[-1], passed the gather's `expert_id >= 0` test, and the slot was summed through an
# input_index entry the scatter never wrote.
def minus_one_slot_reached(case: Case) -> bool:
    """Some ``recv_topk`` [N, K] int32 slot is -1: ``_gather_kernel`` (GATHER_MINUS_ONE) drops
    its ``expert >= 0`` test there."""
    return bool((case.arrays["recv_topk"] == -1).any())


def minus_one_slot_triggered(case: Case) -> bool:
    """Exists (t, k, d): recv_topk[t, k] == -1, 0 <= input_index[t, k] < M and
    w[t, k] * input_tensor[input_index[t, k], d] (fp32) is nonzero or NaN.

    From ``_gather_kernel`` with GATHER_MINUS_ONE: ``take = token`` for every slot, then only the
    ``0 <= row < num_rows`` mask, so the -1 slot's term joins the fp32 sum. Exact one way: a case
    that fails triggers it. Not the other: a term small beside the token's other terms can round
    away in bf16 or fall within the contract's tolerance (RTOL * |ref| + ATOL_OF_SUM * s).
    ``input_tensor`` [M, H] float32, ``recv_topk_weight`` w and ``input_index`` [N, K].
    """
    topk, index = case.arrays["recv_topk"], case.arrays["input_index"]
    values = case.arrays["input_tensor"]
    slots = (topk == -1) & (index >= 0) & (index < values.shape[0])
    rows = index[slots]
    weights = case.arrays["recv_topk_weight"][slots].astype(np.float32)
    with np.errstate(all="ignore"):
        for first in range(0, rows.size, GATHER_SLOTS_PER_STEP):
            step = slice(first, first + GATHER_SLOTS_PER_STEP)
            terms = weights[step, None] * values[rows[step]]  # [slots, H] float32
            if ((terms != 0) | np.isnan(terms)).any():
                return True
    return False


def minus_one_slot_minimum() -> Case:
    """(N, K, E, duplicates, distinct rows, -, sum |ids|, H, M) = (1, 1, 1, 0, 1, 0, 1, 1, 1):
    one token whose only slot is -1, its input_index 0 naming the one stale row [1.0] with
    weight 1.0; the kernel returns 1, the contract 0. The corpus reproducer has the same size
    (its stale row is NaN)."""
    return Case(
        {
            "input_tensor": np.ones((1, 1), dtype=np.float32),
            "recv_topk": np.full((1, 1), -1, dtype=np.int32),
            "recv_topk_weight": np.ones((1, 1), dtype=np.float32),
            "input_index": np.zeros((1, 1), dtype=np.int32),
        },
        {"num_experts": 1},
    )


BUG_MODELS: tuple[BugModel, ...] = (
    BugModel(
        "ep_gather",
        "bug-minus-one-slot",
        minus_one_slot_reached,
        minus_one_slot_triggered,
        minus_one_slot_minimum(),
    ),
)
