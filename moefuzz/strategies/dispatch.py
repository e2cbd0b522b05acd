"""Routing tables as a rank receives them after a one-sided all-to-all dispatch.

In the one-sided dispatch of vLLM / FlashInfer (``FlashInferNVLinkOneSidedPrepareAndFinalize``)
each of R source ranks writes up to ``max_tokens_per_rank`` (M) tokens into the receiver's
buffer, and the receiver sees one [R * M, K] table of GLOBAL expert ids::

    rows [r * M, r * M + num_tokens_per_rank[r])   rank r's real tokens
    rows [r * M + num_tokens_per_rank[r], (r+1) * M) padding: whole rows of ``sentinel``

plus its ``expert_map`` [E] (global id -> local id, -1 for experts another rank owns). The
sentinel is -1 (the padding of vllm-project/vllm#42034, which an unguarded ``expert_map[id]``
reads as the map's last entry), E (the out-of-range id) or a valid global id this rank does not
own (the fix of that PR).

Hypothesis draws the structure (R, M, K, E, the expert placement and which rank receives, how
full each rank is, the sentinel kind, a seed); the real rows come from
:func:`~moefuzz.strategies.routing.build_routing_table`, relabelled so that its contiguous
"local" range becomes the placement's local experts, and numpy lays out the rest. Shrinking is
not done here (targets shrink concrete cases with layout-keeping passes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from moefuzz.strategies.expert_map import PLACEMENTS as EXPERT_MAP_PLACEMENTS
from moefuzz.strategies.expert_map import build_expert_map
from moefuzz.strategies.expert_map import local_experts as owned_experts
from moefuzz.strategies.routing import (
    DUPLICATE_MODES,
    EXPERT_EDGES,
    SKEWS,
    TOKEN_EDGES,
    RoutingTable,
    between,
    build_routing_table,
    edge_sizes,
    local_expert_range,
    wide_draws,
)

#: Source-rank counts R (EP sizes): single rank, odd, powers of two, and a wide EP deployment.
RANK_COUNTS = (1, 2, 3, 4, 8, 16, 64)
#: How global experts are spread over the R ranks: vLLM's ``linear`` (contiguous blocks) and
#: ``round_robin`` placements, and ``scattered`` (a random subset with shuffled local ids, as
#: after an EPLB rebalance).
PLACEMENTS = tuple(p for p in EXPERT_MAP_PLACEMENTS if p != "none")
#: Which rank receives: the owner of the LAST global expert (``expert_map[E - 1]`` is local: the
#: entry an unguarded ``expert_map[-1]`` reads), the owner of expert 0, or any rank.
RECEIVERS = ("last_expert", "first_expert", "any")
#: How many real tokens each source rank sent: all M (no padding), an uneven count with the
#: largest at M (the runtime max), some ranks empty (all padding), one row of padding in one
#: rank, or nothing at all (every row padding).
FILLS = ("full", "uneven", "empty_ranks", "one_short", "all_empty")
#: The padding id: -1, E (out of range), or the smallest global expert this rank does not own.
SENTINELS = ("minus_one", "num_experts", "non_local")


@dataclass(frozen=True)
class DispatchedTable:
    """The receiving rank's view of a one-sided dispatch.

    Attributes:
        topk_ids: [R * M, K] int32 global expert ids; padded rows are whole rows of ``sentinel``.
        num_tokens_per_rank: [R] int32, real tokens of each source rank, 0 <= count <= M.
        expert_map: [E] int32, local id of each global expert on the receiving rank or -1;
            the local ids are a permutation of 0..E_local-1.
        max_tokens_per_rank: M, the length every source rank is padded to.
        sentinel: the id of padded rows.
        ep_rank: the receiving rank's index among the R ranks.
        placement, receiver, fill, sentinel_kind: the drawn structure (see the module constants).
        routing: the routing table the real rows came from (before relabelling and padding).
    """

    topk_ids: np.ndarray
    num_tokens_per_rank: np.ndarray
    expert_map: np.ndarray
    max_tokens_per_rank: int
    sentinel: int
    ep_rank: int
    placement: str
    receiver: str
    fill: str
    sentinel_kind: str
    routing: RoutingTable

    @property
    def num_ranks(self) -> int:
        return int(self.num_tokens_per_rank.shape[0])

    @property
    def num_experts(self) -> int:
        return int(self.expert_map.shape[0])

    @property
    def num_local_experts(self) -> int:
        return int((self.expert_map >= 0).sum())

    @property
    def padded_rows(self) -> np.ndarray:
        """[R * M] bool: is the row padding?"""
        return padded_rows(self.num_tokens_per_rank, self.max_tokens_per_rank)


def padded_rows(num_tokens_per_rank: np.ndarray, max_tokens_per_rank: int) -> np.ndarray:
    """[R * M] bool: row ``r * M + i`` is padding when ``i >= num_tokens_per_rank[r]``."""
    counts = np.asarray(num_tokens_per_rank, dtype=np.int64)
    row_in_rank = np.tile(np.arange(max_tokens_per_rank), counts.size)
    return row_in_rank >= np.repeat(counts, max_tokens_per_rank)


def local_experts(
    num_experts: int, ep_rank: int, ep_size: int, placement: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """The global experts rank ``ep_rank`` of ``ep_size`` owns, in local-id order.

    The owned set is :func:`moefuzz.strategies.expert_map.local_experts`'s (``linear`` and
    ``round_robin`` as vLLM's ``determine_expert_map``, local id = position); ``scattered`` also
    numbers its experts in a random order drawn from ``rng``. Every placement gives a rank the
    same count, so a table drawn for the linear split can be relabelled onto any of them.
    """
    rng = rng or np.random.default_rng(0)
    start, end = local_expert_range(num_experts, ep_rank, ep_size)
    owned = owned_experts(rng, num_experts, start, end, ep_rank, ep_size, placement)
    return rng.permutation(owned) if placement == "scattered" else owned


def expert_map_of(num_experts: int, local: np.ndarray) -> np.ndarray:
    """[E] int32: ``expert_map[local[i]] = i``, -1 elsewhere."""
    return build_expert_map(num_experts, local, np.arange(local.size, dtype=np.int32))


def padding_sentinel(kind: str, expert_map: np.ndarray) -> int:
    """The pad id of ``kind`` (see :data:`SENTINELS`); ``non_local`` falls back to E when this
    rank owns every expert, as vLLM does without an expert map."""
    num_experts = int(expert_map.shape[0])
    if kind == "minus_one":
        return -1
    remote = np.flatnonzero(expert_map < 0)
    if kind == "non_local" and remote.size:
        return int(remote[0])
    return num_experts


def tokens_per_rank(rng: np.random.Generator, fill: str, num_ranks: int, max_tokens_per_rank: int) -> np.ndarray:
    """[R] int32 real-token counts, each in 0..M, shaped by ``fill`` (see :data:`FILLS`)."""
    m = max_tokens_per_rank
    counts = np.full(num_ranks, m, dtype=np.int64)
    if fill in ("uneven", "empty_ranks"):
        counts = rng.integers(0, m + 1, size=num_ranks)
        counts[rng.integers(num_ranks)] = m
    if fill == "empty_ranks":
        empty = rng.random(num_ranks) < rng.uniform(0.2, 0.8)
        empty[rng.integers(num_ranks)] = True
        counts[empty] = 0
    elif fill == "one_short" and m > 0:
        counts[rng.integers(num_ranks)] = m - 1
    elif fill == "all_empty":
        counts[:] = 0
    return counts.astype(np.int32)


def build_dispatched_table(
    *,
    num_ranks: int,
    max_tokens_per_rank: int,
    topk: int,
    num_experts: int,
    ep_rank: int,
    placement: str,
    receiver: str = "any",
    fill: str,
    sentinel_kind: str,
    skew: str = "uniform",
    duplicates: str = "none",
    seed: int,
) -> DispatchedTable:
    """Build the table a drawn structure describes (deterministic in ``seed``).

    Args:
        num_ranks: R >= 1 source ranks, also the EP size (R <= E).
        max_tokens_per_rank: M >= 0.
        topk: K >= 1.
        num_experts: E >= 1.
        ep_rank: the receiving rank, 0 <= ep_rank < R (``receiver`` only labels it).
        placement, fill, sentinel_kind: one of :data:`PLACEMENTS`, :data:`FILLS`,
            :data:`SENTINELS`; ``skew``, ``duplicates``: of the real rows, as in
            :func:`~moefuzz.strategies.routing.build_routing_table`.
        seed: seeds every random choice.

    Returns:
        The :class:`DispatchedTable`; arrays are C-contiguous int32.
    """
    rng = np.random.default_rng([seed, 1])  # a stream apart from the routing table's
    routing = build_routing_table(
        num_tokens=num_ranks * max_tokens_per_rank,
        topk=topk,
        num_experts=num_experts,
        ep_rank=ep_rank,
        ep_size=num_ranks,
        skew=skew,
        duplicates=duplicates,
        padding="none",
        sentinel=num_experts,
        seed=seed,
    )
    local = local_experts(num_experts, ep_rank, num_ranks, placement, rng)
    if placement == "scattered" and receiver != "any":
        wanted = num_experts - 1 if receiver == "last_expert" else 0
        if wanted not in local and local.size:
            local[rng.integers(local.size)] = wanted
    expert_map = expert_map_of(num_experts, local)
    # Relabel the linear split's local range onto `local`, and the other experts onto the rest,
    # so the skews that mean "local" or "not local" keep their meaning.
    start, end = routing.start_expert, routing.end_expert
    remote = np.flatnonzero(expert_map < 0)
    relabel = np.empty(num_experts, dtype=np.int64)
    relabel[start:end] = np.sort(local)
    relabel[np.r_[0:start, end:num_experts]] = remote
    ids = relabel[routing.topk_ids]
    sentinel = padding_sentinel(sentinel_kind, expert_map)
    counts = tokens_per_rank(rng, fill, num_ranks, max_tokens_per_rank)
    ids[padded_rows(counts, max_tokens_per_rank)] = sentinel
    return DispatchedTable(
        topk_ids=np.ascontiguousarray(ids, dtype=np.int32),
        num_tokens_per_rank=counts,
        expert_map=expert_map,
        max_tokens_per_rank=max_tokens_per_rank,
        sentinel=sentinel,
        ep_rank=ep_rank,
        placement=placement,
        receiver=receiver,
        fill=fill,
        sentinel_kind=sentinel_kind,
        routing=routing,
    )


def _receiving_rank(receiver: str, placement: str, num_experts: int, num_ranks: int, any_rank: int) -> int:
    """The rank ``receiver`` names under ``placement`` (``scattered`` places the wanted expert
    on whichever rank receives, so any rank will do)."""
    if receiver == "any" or placement == "scattered":
        return any_rank
    expert = num_experts - 1 if receiver == "last_expert" else 0
    if placement == "round_robin":
        return expert % num_ranks
    return next(r for r in range(num_ranks) if expert < local_expert_range(num_experts, r, num_ranks)[1])


@st.composite
def dispatched_tables(
    draw: st.DrawFn,
    *,
    max_tokens: int = 16384,
    max_topk: int = 8,
    max_experts: int = 512,
) -> DispatchedTable:
    """Tables as a rank receives them from a one-sided dispatch, with the padding bugs' shapes.

    Args:
        max_tokens: bound on R * M (M near :data:`~moefuzz.strategies.routing.TOKEN_EDGES`
            is favoured).
        max_topk: K is drawn from 1..max_topk.
        max_experts: E is drawn from 1..max_experts (near ``EXPERT_EDGES`` favoured).

    Generates:
        :class:`DispatchedTable` values: R from :data:`RANK_COUNTS` (R <= E), every
        :data:`PLACEMENTS` with the receiver of :data:`RECEIVERS`, per-rank fill of
        :data:`FILLS` (uneven counts, all-padding ranks, no padding at all), sentinels of
        :data:`SENTINELS`, and real rows of every routing skew and duplicate mode.
    """
    wide = draw(wide_draws(max_experts, max_topk), label="wide")
    if wide:  # one source rank, every expert local and routed to (see routing.wide_draws)
        num_experts, topk = wide
        num_ranks = 1
        least = min(max_tokens, -(-num_experts // topk))
        max_tokens_per_rank = draw(between(least, max_tokens), label="max_tokens_per_rank")
    else:
        num_experts = draw(edge_sizes(EXPERT_EDGES, 1, max_experts), label="num_experts")
        ranks = [r for r in RANK_COUNTS if r <= num_experts and r <= max(1, max_tokens)]
        num_ranks = draw(st.sampled_from(ranks), label="num_ranks")
        max_tokens_per_rank = draw(edge_sizes(TOKEN_EDGES, 0, max_tokens // num_ranks), label="max_tokens_per_rank")
        topk = draw(between(1, max_topk), label="topk")
    placement = draw(st.sampled_from(PLACEMENTS), label="placement")
    receiver = draw(st.sampled_from(RECEIVERS), label="receiver")
    any_rank = draw(st.integers(0, num_ranks - 1), label="ep_rank")
    fill = draw(st.sampled_from(FILLS), label="fill")
    sentinel_kind = draw(st.sampled_from(SENTINELS), label="sentinel")
    skew = "dense" if wide else draw(st.sampled_from(SKEWS), label="skew")
    duplicates = draw(st.sampled_from(DUPLICATE_MODES), label="duplicates")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return build_dispatched_table(
        num_ranks=num_ranks,
        max_tokens_per_rank=max_tokens_per_rank,
        topk=topk,
        num_experts=num_experts,
        ep_rank=_receiving_rank(receiver, placement, num_experts, num_ranks, any_rank),
        placement=placement,
        receiver=receiver,
        fill=fill,
        sentinel_kind=sentinel_kind,
        skew=skew,
        duplicates=duplicates,
        seed=seed,
    )
