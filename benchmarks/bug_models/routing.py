"""Ground truth of the routing targets' bug models: where each bug lives and when it fires.

One :class:`~benchmarks.bug_models.BugModel` per ``bug-*`` kernel of three_step_sort,
moe_align_block_size, moe_permute, ep_gather and ep_scatter. Each predicate is read off the bug
kernel's code in ``moefuzz_targets/<target>/kernels.py`` (the function named in its docstring) and is
plain numpy on ``case.arrays`` / ``case.params``::

    target                kernel                       reached                  triggered
    three_step_sort       bug-duplicate-topk           T > 256                  + a token repeats a local expert
    moe_align_block_size  bug-negative-id              some id == -1            + no map, or expert_map[E-1] >= 0
    moe_permute           bug-sentinel-minus-one       E_local > 0, an id < 0   + expert_map[id + E] >= 0, -E <= id
    moe_permute           bug-sentinel-minus-one-oob   E_local > 0, an id < 0   = reached
    ep_gather             bug-minus-one-slot           a -1 slot                + in-range index, nonzero term
    ep_scatter            bug-stale-start-loc          every case               + some item (a GPU race)
    ep_scatter            bug-wide-local-experts       E local > 512            + an item below expert E - 1

Each ``minimum_case`` is the smallest failing case in its target's own size order
(``get_target(name).size``), worked out from the condition; none is larger than the reproducer
the fuzzer shrank to (``corpus/<target>/``, docs/gpu-results.md).
"""

from __future__ import annotations

from moefuzz_targets.ep_gather import bug_models as _ep_gather
from moefuzz_targets.ep_gather.bug_models import (
    GATHER_SLOTS_PER_STEP,
    minus_one_slot_minimum,
    minus_one_slot_reached,
    minus_one_slot_triggered,
)
from moefuzz_targets.ep_scatter import bug_models as _ep_scatter
from moefuzz_targets.ep_scatter.bug_models import stale_start_minimum, stale_start_reached, stale_start_triggered
from moefuzz_targets.moe_align_block_size import bug_models as _moe_align_block_size
from moefuzz_targets.moe_align_block_size.bug_models import (
    negative_id_minimum,
    negative_id_reached,
    negative_id_triggered,
)
from moefuzz_targets.moe_permute import bug_models as _moe_permute
from moefuzz_targets.moe_permute.bug_models import (
    sentinel_minimum,
    sentinel_oob_triggered,
    sentinel_reached,
    sentinel_wrap_triggered,
)
from moefuzz_targets.shared.ground_truth import BugModel
from moefuzz_targets.three_step_sort import bug_models as _three_step_sort
from moefuzz_targets.three_step_sort.bug_models import (
    THREE_STEP_MIN_TOKENS,
    duplicate_topk_minimum,
    duplicate_topk_reached,
    duplicate_topk_triggered,
)

BUG_MODELS: tuple[BugModel, ...] = (
    *_three_step_sort.BUG_MODELS,
    *_moe_align_block_size.BUG_MODELS,
    *_moe_permute.BUG_MODELS,
    *_ep_gather.BUG_MODELS,
    *_ep_scatter.BUG_MODELS,
)

__all__ = [
    "BUG_MODELS",
    "GATHER_SLOTS_PER_STEP",
    "THREE_STEP_MIN_TOKENS",
    "BugModel",
    "duplicate_topk_minimum",
    "duplicate_topk_reached",
    "duplicate_topk_triggered",
    "minus_one_slot_minimum",
    "minus_one_slot_reached",
    "minus_one_slot_triggered",
    "negative_id_minimum",
    "negative_id_reached",
    "negative_id_triggered",
    "sentinel_minimum",
    "sentinel_oob_triggered",
    "sentinel_reached",
    "sentinel_wrap_triggered",
    "stale_start_minimum",
    "stale_start_reached",
    "stale_start_triggered",
]
