"""Ground truth of three_step_sort's bug model for the benchmarks: where each bug lives and when it fires.

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

#: three_step_sort's single-program path takes T <= BLOCK_TOKENS (moefuzz_targets/three_step_sort/kernels.py).
THREE_STEP_MIN_TOKENS = 257


def _earlier_duplicate(ids: np.ndarray) -> np.ndarray:
    """[T, K] bool: ids[t, k] == ids[t, k'] for some k' < k (a repeat inside the token's top-k)."""
    if ids.shape[0] == 0 or ids.shape[1] < 2:
        return np.zeros(ids.shape, dtype=bool)
    same = ids[:, :, None] == ids[:, None, :]  # [T, K, K]: same[t, k, k'] = ids[t, k] == ids[t, k']
    return np.tril(same, k=-1).any(axis=2)


# Models flashinfer-ai/flashinfer#3011 (vllm-project/vllm#39244; seed
# flashinfer-three-step-sort-duplicate-topk.txt): blockExpertPrefixSumKernel `break`s after the
# first k of a token that matches an expert, so past 256 tokens a repeated expert counts once.
def duplicate_topk_reached(case: Case) -> bool:
    """T > 256: ``_launch`` sends ``token_selected_experts`` [T, K] int32 to the three-step path
    (``_block_rank_kernel`` / ``_scatter_kernel`` with DROP_DUPLICATES) only when
    ``num_tokens > BLOCK_TOKENS`` = 256; the fused kernel below it is correct."""
    return case.arrays["token_selected_experts"].shape[0] >= THREE_STEP_MIN_TOKENS


def duplicate_topk_triggered(case: Case) -> bool:
    """T > 256 and exists (t, k' < k): ids[t, k] == ids[t, k'] with s <= ids[t, k] < e.

    From ``_local_experts`` with DROP_DUPLICATES: an item whose id equals an earlier k's of the
    same token is not local, so N (``expert_first_token_offset[-1]``) drops by one per repeat.
    Exact: the count is always compared. ``token_selected_experts`` [T, K] int32, s, e =
    ``start_expert``, ``end_expert``.
    """
    if not duplicate_topk_reached(case):
        return False
    ids = case.arrays["token_selected_experts"]
    start, end = int(case.params["start_expert"]), int(case.params["end_expert"])
    local = (ids >= start) & (ids < end)
    return bool((_earlier_duplicate(ids) & local).any())


def duplicate_topk_minimum() -> Case:
    """(T, K, E, duplicates, distinct rows, E_local, sum |ids|) = (257, 2, 1, 1, 2, 1, 256).

    T = 257 is the first three-step size, K = 2 the fewest slots a repeat needs, E = E_local = 1
    (expert 0, local); one token [0, 0] and 256 alike rows [0, -1] (the cheapest distinct pair:
    sum |ids| = 1 each). The committed corpus reproducer is (257, 2, 3, 1, 2, 1, 260), shrunk before
    the routing layouts had a sentinel; with it the shrinker reaches this minimum."""
    ids = np.zeros((THREE_STEP_MIN_TOKENS, 2), dtype=np.int32)
    ids[:, 1] = -1
    ids[-1] = (0, 0)
    return Case({"token_selected_experts": ids}, {"num_experts": 1, "start_expert": 0, "end_expert": 1})


BUG_MODELS: tuple[BugModel, ...] = (
    BugModel(
        "three_step_sort",
        "bug-duplicate-topk",
        duplicate_topk_reached,
        duplicate_topk_triggered,
        duplicate_topk_minimum(),
    ),
)
