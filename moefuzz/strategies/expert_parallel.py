"""Expert-parallel strategies: what one EP rank holds after a DeepEP-style dispatch.

After the dispatch, rank r of R holds N received tokens. Each keeps its K top-k slots, rewritten
to this rank's local expert ids (global id - start_expert) or -1 where the expert lives on another
rank. DeepEP also returns, per local expert, its item count rounded up to a multiple of
:data:`ALIGNMENT` (DeepGEMM's contiguous layout groups rows in blocks of 128), and the kernels
after it (ep_scatter, ep_gather) lay the items out in those aligned segments::

    recv_topk [N, K] int32 (local ids, -1)  --aligned_counts-->  num_recv_tokens_per_expert [E]
                                            --scatter_layout-->  expert_start [E], output_index [N, K]

The local tables come from the engine's routing tables (:func:`local_topk_ids`), plus shapes a
random table rarely hits (:data:`RECV_SHAPES`): every slot -1, every token on one expert, and E =
256 with experts holding 127, 128 or 129 items, on either side of the alignment.
Token rows (:func:`token_rows`) hold values exactly representable in bf16 or fp8 e4m3, so that a
copy through the device dtype is exact. Shrinking is not done here (see ``moefuzz.shrinking``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from moefuzz.strategies.routing import RoutingTable, routing_tables

#: DeepEP's ``expert_alignment`` for DeepGEMM's contiguous grouped GEMM: rows per M block.
ALIGNMENT = 128
#: Shapes of a received table besides a plain routed one (see :func:`recv_topk_tables`).
RECV_SHAPES = ("routed", "all_minus_one", "one_expert", "alignment_edge", "dense_local")
#: The shapes as drawn: routed tables three in seven (they already hold -1 rows and skews).
_SHAPE_DRAWS = ("routed", "routed", "routed", "one_expert", "alignment_edge", "all_minus_one", "dense_local")
#: Local expert counts of the ``dense_local`` shape: either side of a 256- or 512-expert block,
#: and the contract's widest rank (a rank of a 1024-expert model with EP off).
DENSE_EXPERTS = (255, 256, 257, 511, 512, 513, 768, 1023, 1024)
#: Item counts at the alignment edges, for the ``alignment_edge`` shape.
EDGE_COUNTS = (1, 127, 128, 129, 255, 256, 257)
#: Hidden sizes: tiny, around one 128-wide block (scale group and kernel tile), and a few blocks.
HIDDEN_SIZES = (1, 7, 64, 127, 128, 129, 200, 256, 384, 512)
#: Most float entries an [M, H] buffer of a case may hold (M * H), to keep cases and outputs a
#: few MiB: an E_local = 512 rank pads to 65536 rows, which leaves H = 32.
MAX_ROW_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class RecvTopk:
    """A received routing table in local expert ids.

    Attributes:
        recv_topk: [N, K] int32, local expert id in [0, num_experts) or -1 (not on this rank).
        num_experts: E, the number of local experts.
        shape: one of :data:`RECV_SHAPES`.
    """

    recv_topk: np.ndarray
    num_experts: int
    shape: str


@dataclass(frozen=True)
class ScatterLayout:
    """Where an expert-parallel scatter puts each valid (t, k) item (the oracle's choice).

    Attributes:
        counts: [E] int64 items of each local expert.
        aligned_counts: [E] int64 ``counts`` rounded up to a multiple of the alignment.
        expert_start: [E] int64 first row of each expert's segment (exclusive prefix of
            ``aligned_counts``).
        output_index: [N, K] int32 row of each valid item, items of one expert in (t, k) order
            from ``expert_start``; -1 where recv_topk is -1.
        num_rows: M = sum(aligned_counts).
    """

    counts: np.ndarray
    aligned_counts: np.ndarray
    expert_start: np.ndarray
    output_index: np.ndarray
    num_rows: int


def local_topk_ids(table: RoutingTable) -> np.ndarray:
    """[T, K] int32: ``id - start_expert`` for the rank's own experts, -1 for every other id
    (other ranks' experts and sentinels alike), as DeepEP's dispatch rewrites ``recv_topk_idx``."""
    ids = table.topk_ids
    local = (ids >= table.start_expert) & (ids < table.end_expert)
    return np.ascontiguousarray(np.where(local, ids - table.start_expert, -1), dtype=np.int32)


def aligned_counts(recv_topk: np.ndarray, num_experts: int, alignment: int = ALIGNMENT) -> np.ndarray:
    """[E] int32 item count of each local expert rounded up to a multiple of ``alignment`` (0
    stays 0): DeepEP's ``num_recv_tokens_per_expert_list``. Ids outside [0, E) are not counted."""
    ids = recv_topk[(recv_topk >= 0) & (recv_topk < num_experts)].astype(np.int64)
    counts = np.bincount(ids, minlength=num_experts)
    return np.ascontiguousarray(-(-counts // alignment) * alignment, dtype=np.int32)


def scatter_layout(recv_topk: np.ndarray, num_experts: int, alignment: int = ALIGNMENT) -> ScatterLayout:
    """The oracle's layout of ``recv_topk`` (numpy twin of ``moefuzz_targets.ep_scatter.oracle``)."""
    num_tokens, topk = recv_topk.shape
    flat = recv_topk.reshape(-1).astype(np.int64)
    valid = (flat >= 0) & (flat < num_experts)
    counts = np.bincount(flat[valid], minlength=num_experts)
    aligned = -(-counts // alignment) * alignment
    start = np.cumsum(aligned) - aligned
    items = np.flatnonzero(valid)  # flat t * K + k, already in (t, k) order
    experts = flat[items]
    order = np.argsort(experts, kind="stable")
    rank = np.arange(items.size) - (np.cumsum(counts) - counts)[experts[order]]
    output_index = np.full(flat.size, -1, dtype=np.int32)
    output_index[items[order]] = start[experts[order]] + rank
    return ScatterLayout(counts, aligned, start, output_index.reshape(num_tokens, topk), int(aligned.sum()))


# -- values ---------------------------------------------------------------------------------
def _bf16_grid(min_exp: int, max_exp: int) -> np.ndarray:
    """Every bf16 value with |x| in [2**min_exp, 2**max_exp), both signs, as float32."""
    exponents = np.arange(min_exp, max_exp)
    mantissas = 1.0 + np.arange(128) / 128.0
    magnitudes = (mantissas[None, :] * np.exp2(exponents)[:, None]).reshape(-1)
    return np.concatenate([magnitudes, -magnitudes]).astype(np.float32)


def _e4m3_grid() -> np.ndarray:
    """Every finite nonzero float8 e4m3fn value (bias 7, no infinities, 0x7F is NaN), float32."""
    subnormal = np.arange(1, 8) / 8.0 * 2.0**-6
    normal = [(1.0 + m / 8.0) * 2.0 ** (e - 7) for e in range(1, 16) for m in range(8) if (e, m) != (15, 7)]
    magnitudes = np.concatenate([subnormal, np.array(normal)])
    return np.concatenate([magnitudes, -magnitudes]).astype(np.float32)


#: Readable bf16 values for token rows: |x| in [1/256, 256), 4096 of them.
BF16_VALUES = _bf16_grid(-8, 8)
#: All 252 finite nonzero e4m3 values (max 448).
E4M3_VALUES = _e4m3_grid()


def is_bf16_exact(values: np.ndarray) -> np.ndarray:
    """bool per entry: the float32 ``values`` entry is a bf16 value (its low 16 bits are 0)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return (bits & 0xFFFF) == 0


def is_e4m3_exact(values: np.ndarray) -> np.ndarray:
    """bool per entry: the float32 entry is a finite float8 e4m3fn value (zero included)."""
    values = np.asarray(values, dtype=np.float32)
    grid = np.concatenate([E4M3_VALUES, np.zeros(1, np.float32)])
    return np.isin(values, grid)


def token_rows(rng: np.random.Generator, num_tokens: int, hidden: int, dtype: str) -> np.ndarray:
    """[N, H] float32 rows exactly representable in ``dtype`` (``bf16`` or ``fp8`` e4m3).

    Column 0 takes distinct values where the value pool allows (N <= 4096 for bf16, N <= 252
    for fp8), so a row names its token; the other columns are random draws from the pool.
    """
    pool = BF16_VALUES if dtype == "bf16" else E4M3_VALUES
    rows = rng.choice(pool, size=(num_tokens, hidden))
    if num_tokens:
        rows[:, 0] = rng.choice(pool, size=num_tokens, replace=num_tokens > pool.size)
    return np.ascontiguousarray(rows, dtype=np.float32)


# -- strategies -----------------------------------------------------------------------------
def hidden_sizes(rows: int) -> st.SearchStrategy[int]:
    """One of :data:`HIDDEN_SIZES` such that ``rows * H <= MAX_ROW_ELEMENTS`` (at least 1);
    shrinks towards 1."""
    fitting = [h for h in HIDDEN_SIZES if max(rows, 1) * h <= MAX_ROW_ELEMENTS]
    return st.sampled_from(fitting or [1])


def _alignment_edge(rng: np.random.Generator, topk: int, num_experts: int, max_tokens: int) -> np.ndarray:
    """[N, K] local ids where one to three experts hold exactly a count of :data:`EDGE_COUNTS`
    items, the other slots -1; N is the fewest tokens that fit them, plus up to 8."""
    chosen = rng.choice(num_experts, size=int(rng.integers(1, min(3, num_experts) + 1)), replace=False)
    counts = rng.choice(EDGE_COUNTS, size=chosen.size)
    capacity = max_tokens * topk
    while counts.sum() > capacity and counts.max() > 1:
        counts[np.argmax(counts)] //= 2
    total = int(counts.sum())
    num_tokens = min(max_tokens, -(-total // topk) + int(rng.integers(0, 9)))
    flat = np.full(num_tokens * topk, -1, dtype=np.int64)
    flat[rng.permutation(flat.size)[: min(total, flat.size)]] = np.repeat(chosen, counts)[: flat.size]
    return flat.reshape(num_tokens, topk).astype(np.int32)


def _dense_local(rng: np.random.Generator, topk: int, num_experts: int, max_tokens: int) -> np.ndarray:
    """[N, K] local ids where 90-100 % of the ``num_experts`` experts hold at least one item
    (each once, the rest of the slots spread over them or -1); N is the fewest tokens that
    fit them, plus up to a quarter more, within ``max_tokens``."""
    populated = min(num_experts, max(1, int(num_experts * rng.uniform(0.9, 1.0) + 0.5)), max_tokens * topk)
    num_tokens = min(max_tokens, -(-populated // topk) + int(rng.integers(0, populated // (4 * topk) + 2)))
    experts = rng.permutation(num_experts)[:populated]
    flat = rng.choice(experts, size=num_tokens * topk)
    flat[: experts.size] = experts
    flat[experts.size :][rng.random(flat.size - experts.size) < rng.uniform(0.0, 0.3)] = -1
    return rng.permutation(flat).reshape(num_tokens, topk).astype(np.int32)


@st.composite
def recv_topk_tables(
    draw: st.DrawFn, *, max_tokens: int = 16384, max_topk: int = 8, max_experts: int = 512
) -> RecvTopk:
    """Received routing tables of one EP rank, in local ids (-1: not on this rank).

    Args:
        max_tokens: bound on N, the received tokens (rows).
        max_topk: K is drawn from 1..max_topk.
        max_experts: bound on the drawn table's global experts, hence on E, the rank's local ones.

    Generates, per :data:`RECV_SHAPES`:

    - ``routed``: a routing table of :func:`~moefuzz.strategies.routing_tables` (skews, EP
      ranks, duplicates, sentinel rows: rows of all -1 among them), mapped by
      :func:`local_topk_ids`; E is the rank's local expert count.
    - ``all_minus_one``: such a table with every slot -1 (nothing of it is local).
    - ``one_expert``: such a table where one slot of every token names the same local expert.
    - ``alignment_edge``: E = 256 (or ``max_experts``) local experts, one to three of them with
      :data:`EDGE_COUNTS` items (127/128/129: either side of the 128 alignment), others empty.
    - ``dense_local``: a wide rank, E from :data:`DENSE_EXPERTS` (or ``max_experts``) with at
      least 90 % of its experts holding items, the shape where a kernel's per-expert block or
      prefix overflows (a routed table of 1024 global experts split over ranks rarely is one).

    N = 0 and N = 1 come with the routing tables' token edges.
    """
    shape = draw(st.sampled_from(_SHAPE_DRAWS), label="recv_shape")
    if shape == "alignment_edge":
        topk = draw(st.integers(1, max_topk), label="topk")
        num_experts = min(256, max_experts)
        seed = draw(st.integers(0, 2**32 - 1), label="seed")
        ids = _alignment_edge(np.random.default_rng(seed), topk, num_experts, max(1, max_tokens))
        return RecvTopk(ids, num_experts, shape)
    if shape == "dense_local" and max_tokens >= 1:
        wide = tuple(sorted({min(e, max_experts) for e in DENSE_EXPERTS}))
        num_experts = draw(st.sampled_from(wide), label="num_experts")
        topk = draw(st.integers(1, max_topk), label="topk")
        seed = draw(st.integers(0, 2**32 - 1), label="seed")
        ids = _dense_local(np.random.default_rng(seed), topk, num_experts, max_tokens)
        return RecvTopk(ids, num_experts, shape)
    table = draw(routing_tables(max_tokens=max_tokens, max_topk=max_topk, max_experts=max_experts))
    ids = local_topk_ids(table)
    num_experts = table.end_expert - table.start_expert
    if shape == "all_minus_one":
        ids[:] = -1
    elif shape == "one_expert" and ids.size:
        expert = draw(st.integers(0, num_experts - 1), label="expert")
        slot = draw(st.integers(0, ids.shape[1] - 1), label="slot")
        ids[:, slot] = expert
    return RecvTopk(ids, num_experts, shape)
