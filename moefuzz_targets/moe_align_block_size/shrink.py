"""Shrink passes and size order of moe_align_block_size cases.

The engine's routing passes cut tokens, top-k slots, duplicates and rows; this module adds what
they cannot know: the expert map (dropped whole, or carried along when experts are renumbered),
``block_size`` and ``pad_sorted_ids``. The size order is the routing order, then::

    (..., has expert_map, E_local, block_size, pad_sorted_ids)

so a reproducer keeps a map only when the failure needs one, and the smallest block that fails.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking.passes import Shrinker, ShrinkPass, smaller_sizes
from moefuzz.shrinking.routing import RoutingLayout, lower_experts, retire_experts, routing_passes, routing_size

#: The contract takes ids >= -1 and skips the -1 sentinel.
LAYOUT = RoutingLayout(ids="topk_ids", num_experts="num_experts", sentinel=-1)
_routing_size = routing_size(LAYOUT)


def size(case: Case) -> tuple[int, ...]:
    """The routing size of ``topk_ids``, then the map, E_local, block_size and padding."""
    expert_map = case.arrays.get("expert_map")
    return (
        *_routing_size(case),
        int(expert_map is not None),
        int((expert_map >= 0).sum()) if expert_map is not None else 0,
        int(case.params["block_size"]),
        int(bool(case.params["pad_sorted_ids"])),
    )


def drop_expert_map(shrinker: Shrinker) -> None:
    """Remove the expert map: every expert becomes local."""
    case = shrinker.current
    if "expert_map" in case.arrays:
        arrays = {name: array for name, array in case.arrays.items() if name != "expert_map"}
        shrinker.consider(Case(arrays, case.params))


def lower_block_size(shrinker: Shrinker) -> None:
    """Try block_size 1, then 2, 4, ... and B - 1, smallest first; keep the first that fails."""
    current = int(shrinker.current.params["block_size"])
    for block_size in smaller_sizes(current):
        if shrinker.consider(shrinker.current.replace(block_size=block_size)):
            return


def unpad_sorted_ids(shrinker: Shrinker) -> None:
    """Set pad_sorted_ids to False."""
    if shrinker.current.params["pad_sorted_ids"]:
        shrinker.consider(shrinker.current.replace(pad_sorted_ids=False))


def compact_experts(shrinker: Shrinker) -> None:
    """Renumber the experts in use to 0, 1, 2... in order and drop the unused ones from E, the
    expert map following along (see :func:`compacted`)."""
    shrinker.consider(compacted(shrinker.current))


def compacted(case: Case) -> Case:
    """``case`` with the experts in use renumbered 0, 1, 2... in order and the unused ones
    dropped from E, the expert map following along (its local ids renumbered 0..E_local-1 in
    their old order). Ids >= E become the new E; -1 stays."""
    ids = case.arrays["topk_ids"].astype(np.int64)
    num_experts = int(case.params["num_experts"])
    valid = (ids >= 0) & (ids < num_experts)
    used = np.unique(ids[valid])
    new_experts = max(1, int(used.size))
    remap = np.full(num_experts, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    new_ids = np.where(valid, remap[np.clip(ids, 0, num_experts - 1)], np.where(ids < 0, -1, new_experts))
    arrays = {"topk_ids": new_ids.astype(np.int32)}
    if "expert_map" in case.arrays:
        kept = case.arrays["expert_map"][used] if used.size else np.full(1, -1, np.int32)
        local = kept >= 0
        new_map = np.full(kept.size, -1, dtype=np.int32)
        new_map[local] = np.argsort(np.argsort(kept[local]))  # ranks: 0..E_local-1, old order kept
        arrays["expert_map"] = new_map
    return case.replace(arrays, num_experts=new_experts)


def widened(case: Case, experts: int) -> Case:
    """``case`` with E raised to ``experts`` by unused experts numbered after the others, the
    expert map following along: the added experts local (next local ids) when every expert is
    local, else not (-1)."""
    arrays = {}
    if "expert_map" in case.arrays:
        expert_map = case.arrays["expert_map"]
        added = experts - expert_map.size
        local = int((expert_map >= 0).sum())
        tail = np.arange(local, local + added) if local == expert_map.size else np.full(added, -1)
        arrays["expert_map"] = np.concatenate([expert_map, tail.astype(expert_map.dtype)])
    return case.replace(arrays, num_experts=experts)


def _passes() -> list[ShrinkPass]:
    """The engine's routing passes, their map-blind compaction (``compact_experts``, and the
    ones inside ``lower_experts`` and ``retire_experts``) replaced by the one above, and this
    target's own after the cheap cuts."""
    own_versions = {
        "compact_experts": ShrinkPass(compact_experts),
        "lower_experts": ShrinkPass(lambda s: lower_experts(s, LAYOUT, compacted, widened), "lower_experts"),
        "retire_experts": ShrinkPass(lambda s: retire_experts(s, LAYOUT, compacted), "retire_experts"),
    }
    passes = [own_versions.get(p.name, p) for p in routing_passes(LAYOUT)]
    own = [
        ShrinkPass(drop_expert_map),
        ShrinkPass(lower_block_size),
        ShrinkPass(unpad_sorted_ids),
    ]
    return passes[:2] + own + passes[2:]


PASSES = _passes()
