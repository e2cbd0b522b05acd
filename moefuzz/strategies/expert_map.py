"""Expert maps: the global -> local expert ids of one expert-parallel rank, with holes.

Serving engines that split E experts over R ranks hand each rank an ``expert_map`` [E] int32:
``expert_map[g]`` is the local id of global expert g on this rank, or -1 when another rank owns it
(vLLM ``determine_expert_map``, its ``round_robin`` placement, EPLB's arbitrary placements). The
local ids are 0..E_local-1, each exactly once, in any order.

A placement starts from a :class:`~moefuzz.strategies.RoutingTable`, whose skews (``all_local``,
``none_local``...) were drawn against the contiguous split [start_expert, end_expert). It chooses
which global ids the rank owns and renumbers the table's ids with one bijection of [0, E) that
carries the contiguous local range onto them, so a skew keeps its meaning under every placement.
Sentinels (-1, ids >= E) are left as they are. Nothing here shrinks: targets shrink the concrete
map with their own passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from moefuzz.strategies.routing import RoutingTable

#: Which global ids a rank owns: vLLM's contiguous split, its ``round_robin`` placement (rank r
#: owns r, r + R, r + 2R...), a random subset of the same size (EPLB-like), or none at all.
PLACEMENTS = ("linear", "round_robin", "scattered", "none")
#: How local ids are numbered: by ascending global id, or by a random permutation.
LOCAL_ORDERS = ("ascending", "shuffled")


@dataclass(frozen=True)
class ExpertPlacement:
    """A routing table renumbered for one placement, and that placement's expert map.

    Attributes:
        topk_ids: [T, K] int32, the table's ids renumbered (sentinels unchanged).
        expert_map: [E] int32; -1 for experts of other ranks, else the local id.
        placement: one of :data:`PLACEMENTS`.
        local_order: one of :data:`LOCAL_ORDERS`.
    """

    topk_ids: np.ndarray
    expert_map: np.ndarray
    placement: str
    local_order: str

    @property
    def num_local_experts(self) -> int:
        return int((self.expert_map >= 0).sum())


def local_experts(
    rng: np.random.Generator, num_experts: int, start: int, end: int, ep_rank: int, ep_size: int, placement: str
) -> np.ndarray:
    """The global ids rank ``ep_rank`` of ``ep_size`` owns under ``placement``, ascending.

    ``linear`` is [start, end); ``round_robin`` and ``scattered`` own as many experts as that
    range (``round_robin`` because the contiguous split gives the first E % R ranks one more, as
    striding does); ``none`` owns nothing.
    """
    if placement == "linear":
        return np.arange(start, end)
    if placement == "round_robin":
        return np.arange(ep_rank, num_experts, ep_size)
    if placement == "scattered":
        return np.sort(rng.choice(num_experts, size=end - start, replace=False))
    if placement == "none":
        return np.zeros(0, dtype=np.int64)
    raise ValueError(f"placement={placement!r} is not one of {PLACEMENTS}")


def build_expert_map(num_experts: int, owned: np.ndarray, local_ids: np.ndarray) -> np.ndarray:
    """[num_experts] int32: ``local_ids[i]`` at global id ``owned[i]``, -1 elsewhere."""
    expert_map = np.full(num_experts, -1, dtype=np.int32)
    expert_map[owned] = local_ids
    return expert_map


def place_experts(table: RoutingTable, placement: str, local_order: str, seed: int) -> ExpertPlacement:
    """Renumber ``table`` for ``placement`` and build the rank's expert map (deterministic in
    ``seed``). The bijection sends [start_expert, end_expert) onto the owned ids in order and the
    other experts onto the rest in order; ``none`` keeps the ids and maps everything to -1."""
    rng = np.random.default_rng(seed)
    num_experts = table.num_experts
    owned = local_experts(
        rng, num_experts, table.start_expert, table.end_expert, table.ep_rank, table.ep_size, placement
    )
    ids = table.topk_ids.astype(np.int64)
    if placement != "none":
        linear = np.arange(table.start_expert, table.end_expert)
        relabel = np.empty(num_experts, dtype=np.int64)
        relabel[linear] = owned
        relabel[np.setdiff1d(np.arange(num_experts), linear)] = np.setdiff1d(np.arange(num_experts), owned)
        valid = (ids >= 0) & (ids < num_experts)
        ids = np.where(valid, relabel[np.clip(ids, 0, num_experts - 1)], ids)
    local_ids = np.arange(owned.size) if local_order == "ascending" else rng.permutation(owned.size)
    return ExpertPlacement(
        topk_ids=np.ascontiguousarray(ids, dtype=np.int32),
        expert_map=build_expert_map(num_experts, owned, local_ids),
        placement=placement,
        local_order=local_order,
    )


@st.composite
def expert_placements(draw: st.DrawFn, table: RoutingTable) -> ExpertPlacement:
    """Expert maps with holes for ``table``'s rank, and the table renumbered to match.

    Generates:
        :class:`ExpertPlacement` values under each of :data:`PLACEMENTS` and
        :data:`LOCAL_ORDERS`; E_local equals the table's end_expert - start_expert except for
        ``none`` (E_local = 0).
    """
    placement = draw(st.sampled_from(PLACEMENTS), label="placement")
    local_order = draw(st.sampled_from(LOCAL_ORDERS), label="local_order")
    seed = draw(st.integers(0, 2**32 - 1), label="placement_seed")
    return place_experts(table, placement, local_order, seed)
