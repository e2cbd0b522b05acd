"""Ground truth of moe_permute's bug models for the benchmarks: where each bug lives and when it fires.

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


# Both model vllm-project/vllm#42034 (seed vllm-one-sided-padding-sentinel.txt): the one-sided
# dispatch pads each source rank with -1 and preprocessTopkIdKernel reads expert_map[topk_id]
# without a guard.
def sentinel_reached(case: Case) -> bool:
    """E_local > 0 and some ``topk_ids`` [R * M, K] int32 entry is negative: ``_block_items``
    looks a negative id up in ``expert_map`` [E] int32 unguarded (WRAP or READ_NEGATIVE_IDS);
    ``_launch`` runs no kernel when E_local = 0."""
    return bool((case.arrays["expert_map"] >= 0).any() and (case.arrays["topk_ids"] < 0).any())


def sentinel_wrap_triggered(case: Case) -> bool:
    """Exists (t, k): -E <= topk_ids[t, k] < 0 and expert_map[topk_ids[t, k] + E] >= 0.

    From ``_block_items`` with WRAP_NEGATIVE_IDS: ``ids + E`` for a negative id, then the lookup
    for 0 <= ids + E < E; a local entry makes the pad a local item, N grows. Exact (the offsets'
    last entry N is always compared). A -1 pad reads the map's last entry, expert_map[E - 1].
    """
    ids = case.arrays["topk_ids"].astype(np.int64)
    expert_map = case.arrays["expert_map"]
    num_experts = expert_map.shape[0]
    wrapped = ids[(ids < 0) & (ids >= -num_experts)] + num_experts
    return bool((expert_map[wrapped] >= 0).any())


def sentinel_oob_triggered(case: Case) -> bool:
    """E_local > 0 and some topk_ids[t, k] < 0: the same as :func:`sentinel_reached`.

    From ``_block_items`` with READ_NEGATIVE_IDS: ``known`` keeps every id < E, so a negative id
    loads ``expert_map[id]``, before the buffer; the interpreter's checker refuses it
    (``crash:out-of-bounds-load``). Exact on the CPU, where a load before the map lands in no
    buffer of the launch (one that did would read that buffer's int32 instead, unseen); on a
    GPU the load is undefined.
    """
    return sentinel_reached(case)


def sentinel_minimum() -> Case:
    """(T, K, E, E_local, real tokens, H, duplicates, distinct real rows, sum |real ids|) =
    (1, 1, 1, 1, 0, 1, 0, 0, 0): one rank of one padded row ``[[-1]]``, expert_map = [0], H = 1.
    Both bug models fail it (the wrap reads expert_map[0] = 0; the read loads expert_map[-1]).
    Equal to the corpus reproducer of bug-sentinel-minus-one."""
    return Case(
        {
            "topk_ids": np.full((1, 1), -1, dtype=np.int32),
            "num_tokens_per_rank": np.zeros(1, dtype=np.int32),
            "expert_map": np.zeros(1, dtype=np.int32),
            "hidden_states": np.zeros((1, 1), dtype=np.float32),
        },
        {"num_experts": 1, "num_local_experts": 1, "max_tokens_per_rank": 1, "sentinel": -1},
    )


BUG_MODELS: tuple[BugModel, ...] = (
    BugModel(
        "moe_permute",
        "bug-sentinel-minus-one",
        sentinel_reached,
        sentinel_wrap_triggered,
        sentinel_minimum(),
    ),
    BugModel(
        "moe_permute",
        "bug-sentinel-minus-one-oob",
        sentinel_reached,
        sentinel_oob_triggered,
        sentinel_minimum(),
    ),
)
