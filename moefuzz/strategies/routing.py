"""Routing-table strategies: the inputs of MoE routing kernels, built from drawn structure.

Hypothesis draws a handful of structural choices (tokens T, top-k K, experts E, the expert-
parallel split, the shape of the expert distribution, where duplicates and padding go, and a
seed); numpy then builds the [T, K] table from them in one vectorised pass. A 16384 x 8 table
therefore costs about twenty choices, far from Hypothesis' choice-buffer limit, and generation
stays cheap next to a kernel launch.

Sizes are drawn from two pools: the *edges* where routing kernels switch paths or overflow a
block (1, 255/256/257, 511/512/513, 1023/1024/1025, ..., 16384), and uniform values in between.
Shrinking is not done here: the engine shrinks concrete tables with the passes of
``moefuzz.shrinking``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

#: Token counts where real kernels change path or fill a block exactly (FlashInfer's fused sort
#: takes T <= 256; vLLM's moe_align_block_size switches at 1024 tokens; DeepEP aligns to 128).
TOKEN_EDGES = (1, 2, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 2048, 4096, 8192, 16384)
#: Expert counts of real models plus non powers of two (Mixtral 8, Qwen 60/128, DeepSeek 256,
#: Kimi 384), the edges of 128- and 256-wide blocks and of a 512-expert prefix, up to 1024.
EXPERT_EDGES = (1, 2, 3, 8, 60, 64, 127, 128, 129, 160, 255, 256, 257, 384, 512, 768, 1024)
#: How expert ids are distributed over the experts (``dense``: every local expert named at least
#: once where T * K allows, the rest uniform over them).
SKEWS = ("uniform", "one_hot", "zipf", "empty_experts", "all_local", "none_local", "dense")
#: Expert counts of a *wide* draw (one in :data:`WIDE_ODDS`, when ``max_experts`` exceeds 512):
#: one rank holding more than 512 experts, nearly all of them routed to (the shape where a
#: per-expert block or prefix sized for 512 overflows), up to the 1024 of the contracts.
WIDE_EXPERTS = (513, 768, 1000, 1023, 1024)
#: A draw is wide with probability 1 / WIDE_ODDS (swarm testing: the feature on or off per case).
WIDE_ODDS = 8
#: How many tokens get a duplicated expert inside their own top-k.
DUPLICATE_MODES = ("none", "one", "few", "many", "all")
#: Where padded rows (rows entirely filled with a sentinel id) sit.
PADDING_MODES = ("none", "tail", "ranks")


@dataclass(frozen=True)
class RoutingTable:
    """A routing table and the structure it was built from.

    Attributes:
        topk_ids: [T, K] int32 global expert ids; sentinel rows hold ``sentinel``.
        num_experts: E, the number of global experts.
        start_expert: first local expert of this expert-parallel rank.
        end_expert: one past the last local expert (E_local = end_expert - start_expert).
        ep_rank: this rank's index r among ``ep_size`` ranks.
        ep_size: R, the number of expert-parallel ranks.
        skew: one of :data:`SKEWS`.
        duplicates: one of :data:`DUPLICATE_MODES`.
        padding: one of :data:`PADDING_MODES`.
        sentinel: the id written into padded rows (-1 or E, as engines do).
    """

    topk_ids: np.ndarray
    num_experts: int
    start_expert: int
    end_expert: int
    ep_rank: int
    ep_size: int
    skew: str
    duplicates: str
    padding: str
    sentinel: int

    @property
    def num_tokens(self) -> int:
        return int(self.topk_ids.shape[0])

    @property
    def topk(self) -> int:
        return int(self.topk_ids.shape[1])


@functools.lru_cache(maxsize=4096)
def between(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers in [low, high], drawn as an offset from ``low``.

    Equivalent to ``st.integers(low, high)``, except under a byte-driven provider
    (``fuzz_one_input``, the default and atheris engines): Hypothesis 6.155's BytestringProvider
    draws ``bit_length(high - low)`` bits and rejects values outside [low, high] without adding
    ``low``, so a range far from zero never succeeds and the buffer overruns.

    Cached: Hypothesis validates every new strategy object on first draw, which cost more than
    building a whole routing table when ``routing_tables`` made fresh ones per draw.
    """
    return st.integers(0, high - low).map(lambda offset: low + offset)


@functools.lru_cache(maxsize=256)
def edge_sizes(edges: tuple[int, ...], low: int, high: int) -> st.SearchStrategy[int]:
    """Edge values within [low, high] or one off either side of them, half of the time; else a
    log-uniform value in [low, high] (so small sizes, the cheap ones, are as common as large)."""
    near = sorted({v + d for v in edges for d in (-1, 0, 1) if low <= v + d <= high})
    top_bit = max(high, 1).bit_length()
    log_uniform = st.integers(0, top_bit).flatmap(
        lambda bit: between(max(low, (1 << bit) >> 1), max(low, min(high, (1 << bit) - 1)))
    )
    return st.one_of(st.sampled_from(near), log_uniform) if near else log_uniform


@functools.lru_cache(maxsize=4096)
def _choices(values: tuple) -> st.SearchStrategy:
    """``st.sampled_from(values)``, cached (see :func:`between`)."""
    return st.sampled_from(values)


@functools.lru_cache(maxsize=256)
def wide_draws(max_experts: int, max_topk: int = 8) -> st.SearchStrategy[tuple[int, int] | None]:
    """``None`` (a plain draw), or one time in :data:`WIDE_ODDS` when ``max_experts`` exceeds
    512, ``(E, K)`` of a wide draw: E from :data:`WIDE_EXPERTS` (capped at ``max_experts``), K
    from 1..``max_topk``. A wide draw keeps every expert local and names each one (skew
    ``dense``), with T >= E / K tokens."""
    wide = tuple(sorted({min(e, max_experts) for e in WIDE_EXPERTS}))
    if max_experts <= 512:
        return st.none()
    pick = st.tuples(_choices(wide), between(1, max_topk))
    return between(0, WIDE_ODDS - 1).flatmap(lambda roll: pick if roll == WIDE_ODDS - 1 else st.none())


def local_expert_range(num_experts: int, ep_rank: int, ep_size: int) -> tuple[int, int]:
    """The [start, end) experts rank ``ep_rank`` of ``ep_size`` owns under a contiguous split.

    The first ``num_experts % ep_size`` ranks own one expert more, as vLLM's
    ``determine_expert_map`` does, so ranks may be uneven.
    """
    base, extra = divmod(num_experts, ep_size)
    start = ep_rank * base + min(ep_rank, extra)
    return start, start + base + (1 if ep_rank < extra else 0)


def _expert_weights(rng: np.random.Generator, skew: str, num_experts: int, start: int, end: int) -> np.ndarray:
    """Probability of each global expert under ``skew`` (sums to 1)."""
    weights: np.ndarray = np.ones(num_experts)
    if skew == "one_hot":
        weights[:] = 1e-3
        weights[rng.integers(num_experts)] = 1.0
    elif skew == "zipf":
        weights = 1.0 / np.arange(1, num_experts + 1) ** rng.uniform(0.8, 2.0)
        rng.shuffle(weights)
    elif skew == "empty_experts":
        used = rng.random(num_experts) < rng.uniform(0.05, 0.5)
        used[rng.integers(num_experts)] = True
        weights = used.astype(float)
    elif skew in ("all_local", "dense") and end > start:
        weights[:] = 0.0
        weights[start:end] = 1.0
    elif skew == "none_local" and end - start < num_experts:
        weights[start:end] = 0.0
    return weights / weights.sum()


def _distinct_rows(rng: np.random.Generator, ids: np.ndarray, num_experts: int) -> np.ndarray:
    """Re-draw later duplicates of a row uniformly until rows are distinct (as a real top-k is),
    where E >= K allows it; a few rounds suffice for any realistic skew."""
    topk = ids.shape[1]
    if num_experts < topk or topk < 2:
        return ids
    for _ in range(16):
        dup = _later_duplicates(ids)
        if not dup.any():
            break
        ids[dup] = rng.integers(0, num_experts, size=int(dup.sum()))
    return ids


def _later_duplicates(ids: np.ndarray) -> np.ndarray:
    """[T, K] bool: entry (t, k) equals some entry (t, k') with k' < k."""
    eq = ids[:, :, None] == ids[:, None, :]
    return np.tril(eq, k=-1).any(axis=2)


def _inject_duplicates(rng: np.random.Generator, ids: np.ndarray, mode: str) -> None:
    """Copy one top-k slot onto another in the tokens ``mode`` selects (in place)."""
    num_tokens, topk = ids.shape
    if mode == "none" or topk < 2 or num_tokens == 0:
        return
    if mode == "one":
        rows = rng.integers(num_tokens, size=1)
    else:
        fraction = {"few": 0.01, "many": 0.5, "all": 1.0}[mode]
        rows = np.flatnonzero(rng.random(num_tokens) < fraction)
        if rows.size == 0:
            rows = rng.integers(num_tokens, size=1)
    src = rng.integers(topk, size=rows.size)
    dst = (src + rng.integers(1, topk, size=rows.size)) % topk
    ids[rows, dst] = ids[rows, src]


def _pad_rows(rng: np.random.Generator, ids: np.ndarray, mode: str, sentinel: int, ep_size: int) -> None:
    """Fill rows with ``sentinel`` (in place): a trailing block (``tail``) or, for ``ranks``, the
    tail of each of ``ep_size`` equal source-rank segments, as a one-sided all-to-all pads every
    source rank to the same length."""
    num_tokens = ids.shape[0]
    if mode == "none" or num_tokens == 0:
        return
    if mode == "tail":
        ids[num_tokens - int(rng.integers(1, num_tokens + 1)) :] = sentinel
        return
    per_rank = -(-num_tokens // ep_size)
    for rank in range(ep_size):
        lo, hi = rank * per_rank, min((rank + 1) * per_rank, num_tokens)
        if hi > lo:
            ids[lo + int(rng.integers(0, hi - lo + 1)) : hi] = sentinel


def build_routing_table(
    *,
    num_tokens: int,
    topk: int,
    num_experts: int,
    ep_rank: int,
    ep_size: int,
    skew: str,
    duplicates: str,
    padding: str,
    sentinel: int,
    seed: int,
) -> RoutingTable:
    """Build the table a drawn structure describes (deterministic in ``seed``).

    Args:
        num_tokens: T >= 0.
        topk: K >= 1.
        num_experts: E >= 1.
        ep_rank, ep_size: this rank r of R (0 <= r < R <= E).
        skew, duplicates, padding: one of :data:`SKEWS`, :data:`DUPLICATE_MODES`,
            :data:`PADDING_MODES`.
        sentinel: the id of padded rows.
        seed: seeds the numpy generator that places the ids.

    Returns:
        The :class:`RoutingTable`; ``topk_ids`` is C-contiguous int32.
    """
    rng = np.random.default_rng(seed)
    start, end = local_expert_range(num_experts, ep_rank, ep_size)
    weights = _expert_weights(rng, skew, num_experts, start, end)
    ids = rng.choice(num_experts, size=(num_tokens, topk), p=weights).astype(np.int64)
    if skew in ("uniform", "zipf"):
        ids = _distinct_rows(rng, ids, num_experts)
    if skew == "dense" and end > start and ids.size:
        slots = rng.permutation(ids.size)[: min(ids.size, end - start)]
        ids.reshape(-1)[slots] = start + rng.permutation(end - start)[: slots.size]
    _inject_duplicates(rng, ids, duplicates)
    _pad_rows(rng, ids, padding, sentinel, ep_size)
    return RoutingTable(
        topk_ids=np.ascontiguousarray(ids, dtype=np.int32),
        num_experts=num_experts,
        start_expert=start,
        end_expert=end,
        ep_rank=ep_rank,
        ep_size=ep_size,
        skew=skew,
        duplicates=duplicates,
        padding=padding,
        sentinel=sentinel,
    )


@st.composite
def routing_tables(
    draw: st.DrawFn,
    *,
    max_tokens: int = 16384,
    min_tokens: int = 0,
    max_topk: int = 8,
    max_experts: int = 512,
    expert_parallel: bool = True,
    padding: bool = True,
) -> RoutingTable:
    """Routing tables that hit the shapes real routing bugs need, on purpose.

    Args:
        max_tokens, min_tokens: bounds on T (sizes near :data:`TOKEN_EDGES` are favoured).
        max_topk: K is drawn from 1..max_topk, non powers of two included.
        max_experts: E is drawn from 1..max_experts (sizes near :data:`EXPERT_EDGES` favoured).
        expert_parallel: draw an EP split (rank r of R, R from 1, 2, 4, 8, 3, 16 or E) so that
            part of the experts are not local; ``False`` keeps every expert local.
        padding: draw padded rows filled with a sentinel (-1, or E as the out-of-range id).

    Generates:
        :class:`RoutingTable` values whose ids are drawn with one of :data:`SKEWS`, with
        duplicates injected into one token, a few, many or all (mode ``none`` keeps top-k rows
        distinct wherever E >= K), and padding per :data:`PADDING_MODES`.

    One draw in :data:`WIDE_ODDS` (when ``max_experts`` > 512) is *wide* instead: one rank of
    :data:`WIDE_EXPERTS` experts, every one routed to (see :func:`wide_draws`).

    Shrinks (under ``@given``) towards the fewest tokens, K = 1, the fewest experts, a single
    EP rank, uniform ids, no duplicates, no padding, a -1 sentinel and seed 0.
    """
    wide = draw(wide_draws(max_experts, max_topk), label="wide")
    if wide:
        num_experts, topk = wide
        num_tokens = draw(
            between(min(max_tokens, max(min_tokens, -(-num_experts // topk))), max_tokens), label="num_tokens"
        )
    else:
        num_tokens = draw(edge_sizes(TOKEN_EDGES, min_tokens, max_tokens), label="num_tokens")
        topk = draw(between(1, max_topk), label="topk")
        num_experts = draw(edge_sizes(EXPERT_EDGES, 1, max_experts), label="num_experts")
    ep_size, ep_rank = 1, 0
    if expert_parallel and not wide:
        ep_size = draw(_choices(tuple(sorted({r for r in (1, 2, 3, 4, 8, 16, num_experts) if r <= num_experts}))))
        ep_rank = draw(between(0, ep_size - 1), label="ep_rank")
    skew = "dense" if wide else draw(_choices(SKEWS), label="skew")
    duplicates = draw(_choices(DUPLICATE_MODES), label="duplicates")
    pad_mode = draw(_choices(PADDING_MODES), label="padding") if padding else "none"
    sentinel = draw(_choices((-1, num_experts)), label="sentinel")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return build_routing_table(
        num_tokens=num_tokens,
        topk=topk,
        num_experts=num_experts,
        ep_rank=ep_rank,
        ep_size=ep_size,
        skew=skew,
        duplicates=duplicates,
        padding=pad_mode,
        sentinel=sentinel,
        seed=seed,
    )
