"""The routing targets' two baselines: a plain ``@given`` strategy and an engines-style grid.

One :class:`~benchmarks.baselines.Baselines` per target (three_step_sort, moe_align_block_size,
moe_permute, ep_gather, ep_scatter); :mod:`benchmarks.baselines` runs them.

- ``given``: what a property test of the contract would draw with plain Hypothesis: sizes with
  ``st.integers``, arrays element by element (``hypothesis.extra.numpy.arrays``), ids over the
  contract's documented domain, nothing from :mod:`moefuzz.strategies` (the thing compared
  against). Float arrays are drawn as small integers and scaled, so that every value is exact
  in bf16 and e4m3 as the contracts ask. Each factory takes ``max_tokens`` (default 2048, the
  real size; tests pass less).
- ``grid``: the parameter lists of the engines' own tests of that kernel (vLLM
  ``tests/kernels/moe/test_moe_align_block_size.py`` and ``test_moe_permute_unpermute.py``, the
  LightLLM / SGLang / DLBlas ep_scatter and ep_gather tests), capped at the contracts' bounds
  (K <= 8, H <= 4096), each point once; ids are ``torch.topk`` of random router scores from
  ``torch.Generator().manual_seed(seed)``, so a token's K experts are distinct, and an EP rank
  owns vLLM's linear split of the experts (``determine_expert_map``).

Shapes of the cases are the targets' own (``moefuzz_targets/<target>/contract.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from benchmarks.baselines import Baselines
from moefuzz.model.case import Case

#: The given strategies' default token bound: the sizes of a real test run.
GIVEN_MAX_TOKENS = 2048
#: Largest K, E and hidden size the given strategies draw.
GIVEN_MAX_TOPK = 8
GIVEN_MAX_EXPERTS = 256
GIVEN_MAX_HIDDEN = 256
#: Rows of one expert segment in ep_scatter / ep_gather: DeepEP's alignment for DeepGEMM.
ALIGNMENT = 128

#: The routing grid of the engines' tests (three_step_sort, ep_scatter, ep_gather).
GRID_TOKENS = (1, 7, 33, 64, 222, 256, 1024, 2048)
GRID_TOPK = (1, 2, 6, 8)
GRID_EXPERTS = (8, 64, 128, 256)
#: EP world sizes of the ep_scatter / ep_gather grid: one rank, and DeepSeek's 8-GPU node.
GRID_EP_SIZES = (1, 8)
#: Hidden size of the grids' token rows (FlashInfer / vLLM tests use 2048 and 7168; the
#: contracts take H <= 4096 where they bound it).
GRID_HIDDEN = 2048

#: vLLM tests/kernels/moe/test_moe_align_block_size.py, with its top-k 16 and 32 replaced by
#: the contract's K <= 8.
ALIGN_TOKENS = (1, 3, 7, 16, 256, 2256, 4096)
ALIGN_TOPK = (1, 2, 6, 8)
ALIGN_EXPERTS = (32, 160, 256, 257, 512)
ALIGN_BLOCK_SIZES = (32, 64, 128, 256)
#: Its expert-map test: M x K, E = 8, block_size 64, the even experts local.
ALIGN_MAP_TOKENS = (16, 32)
ALIGN_MAP_TOPK = (2, 4)

#: vLLM tests/kernels/moe/test_moe_permute_unpermute.py (n_hidden 2048 only: 7168 is above
#: the contract's H <= 4096; align_block_size is not part of the contract).
PERMUTE_TOKENS = (1, 33, 1024, 5000)
PERMUTE_EXPERTS = (16, 64, 256)
PERMUTE_TOPK = (2, 6, 8)
PERMUTE_EP_SIZES = (1, 4, 16)


# -- shared pieces ------------------------------------------------------------------------------
def router_topk(generator: torch.Generator, tokens: int, experts: int, topk: int) -> tuple[np.ndarray, np.ndarray]:
    """``(topk_ids, topk_weights)``: [T, K] int32 ``torch.topk`` of random router scores [T, E]
    (distinct ids per token) and [T, K] float32 their softmax weights renormalized over the K."""
    scores = torch.randn(tokens, experts, generator=generator)
    values, ids = torch.topk(torch.softmax(scores, dim=1), topk, dim=1)
    weights = values / values.sum(dim=1, keepdim=True)
    return ids.to(torch.int32).numpy(), weights.to(torch.float32).numpy()


def ep_split(num_experts: int, ep_size: int, ep_rank: int) -> tuple[int, int]:
    """``(start, end)``: the global experts [start, end) rank ``ep_rank`` of ``ep_size`` owns, by
    vLLM's linear ``determine_expert_map`` (the first E % ep_size ranks own one more)."""
    base, extra = divmod(num_experts, ep_size)
    start = ep_rank * base + min(ep_rank, extra)
    return start, start + base + (1 if ep_rank < extra else 0)


def draw_rank(generator: torch.Generator, ep_size: int) -> int:
    """The EP rank a grid point tests, drawn from its seed (vLLM draws ``np.random.randint``)."""
    return int(torch.randint(0, ep_size, (1,), generator=generator))


def to_local(ids: np.ndarray, start: int, end: int) -> np.ndarray:
    """[N, K] int32 local expert ids ``id - start`` of this rank, -1 for other ranks' experts."""
    return np.where((ids >= start) & (ids < end), ids - start, -1).astype(np.int32)


def aligned_counts(recv_topk: np.ndarray, num_experts: int) -> np.ndarray:
    """[E] int32 ``num_recv_tokens_per_expert``: each local expert's items rounded up to 128."""
    counts = np.bincount(recv_topk[recv_topk >= 0].astype(np.int64), minlength=num_experts)
    return (-(-counts // ALIGNMENT) * ALIGNMENT).astype(np.int32)


def scatter_rows(recv_topk: np.ndarray, num_experts: int) -> tuple[np.ndarray, int]:
    """``(input_index, M)``: [N, K] int32 the row of each item in ep_scatter's layout (expert
    e's items fill rows [start_e, start_e + n_e) in (t, k) order, start_e the prefix of the
    aligned counts), 0 where recv_topk is -1 (an unwritten ``zeros_like`` buffer), and M."""
    aligned = aligned_counts(recv_topk, num_experts).astype(np.int64)
    start = np.cumsum(aligned) - aligned
    flat = recv_topk.reshape(-1).astype(np.int64)
    items = np.flatnonzero(flat >= 0)
    experts = flat[items]
    order = np.argsort(experts, kind="stable")
    counts = np.bincount(experts, minlength=num_experts)
    first = np.cumsum(counts) - counts  # where each expert's items start in `order`
    rank = np.empty(items.size, dtype=np.int64)
    rank[order] = np.arange(items.size) - first[experts[order]]
    index = np.zeros(flat.size, dtype=np.int64)
    index[items] = start[experts] + rank
    return index.reshape(recv_topk.shape).astype(np.int32), int(aligned.sum())


def exact_values(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """[shape] float32 drawn element by element as i / 4 for integers -16 <= i <= 16: exact in
    bf16 and in float8_e4m3fn."""
    quarters = draw(arrays(np.int8, shape, elements=st.integers(-16, 16)))
    return quarters.astype(np.float32) / 4


# -- three_step_sort ----------------------------------------------------------------------------
def three_step_case(ids: np.ndarray, num_experts: int, start: int, end: int) -> Case:
    """The three_step_sort case of ``token_selected_experts`` [T, K] int32 and a local range."""
    return Case(
        {"token_selected_experts": np.ascontiguousarray(ids, dtype=np.int32)},
        {"num_experts": num_experts, "start_expert": start, "end_expert": end},
    )


@st.composite
def _three_step_sort_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    tokens = draw(st.integers(1, max_tokens))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    start = draw(st.integers(0, num_experts))
    end = draw(st.integers(start, num_experts))
    ids = draw(arrays(np.int32, (tokens, topk), elements=st.integers(0, num_experts - 1)))
    return three_step_case(ids, num_experts, start, end)


def three_step_sort_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """T in 1..max_tokens, K in 1..8, E in 1..256, a local range s <= e, ids in [0, E)."""
    return _three_step_sort_given(max_tokens)


def three_step_sort_grid(seed: int) -> Iterator[Case]:
    """T x K x E of :data:`GRID_TOKENS` x :data:`GRID_TOPK` x :data:`GRID_EXPERTS` (K <= E), ids
    from the router, the whole range local (one rank, as the FlashInfer / vLLM tests run it)."""
    generator = torch.Generator().manual_seed(seed)
    for tokens, topk, experts in itertools.product(GRID_TOKENS, GRID_TOPK, GRID_EXPERTS):
        if topk <= experts:
            ids, _ = router_topk(generator, tokens, experts, topk)
            yield three_step_case(ids, experts, 0, experts)


# -- moe_align_block_size -----------------------------------------------------------------------
def align_case(ids: np.ndarray, num_experts: int, block_size: int, pad: bool, expert_map: np.ndarray | None) -> Case:
    """The moe_align_block_size case of ``topk_ids`` [M, K] int32 and an optional
    ``expert_map`` [E] int32."""
    case_arrays = {"topk_ids": np.ascontiguousarray(ids, dtype=np.int32)}
    if expert_map is not None:
        case_arrays["expert_map"] = np.ascontiguousarray(expert_map, dtype=np.int32)
    return Case(case_arrays, {"num_experts": num_experts, "block_size": block_size, "pad_sorted_ids": pad})


@st.composite
def _moe_align_block_size_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    tokens = draw(st.integers(1, max_tokens))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    ids = draw(arrays(np.int32, (tokens, topk), elements=st.integers(-1, num_experts - 1)))
    expert_map = None
    if draw(st.booleans()):
        owners = draw(st.permutations(range(num_experts)))
        num_local = draw(st.integers(0, num_experts))
        expert_map = np.full(num_experts, -1, dtype=np.int32)
        expert_map[np.asarray(owners[:num_local], dtype=np.int64)] = np.arange(num_local)
    return align_case(ids, num_experts, draw(st.integers(1, 256)), draw(st.booleans()), expert_map)


def moe_align_block_size_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """M in 1..max_tokens, K in 1..8, E in 1..256, ids in [-1, E) (-1: the padding the
    ``ignore_invalid_experts`` mode skips), block_size in 1..256, pad_sorted_ids, and half the
    time an expert map: E_local experts of a permutation numbered 0..E_local-1."""
    return _moe_align_block_size_given(max_tokens)


def moe_align_block_size_grid(seed: int) -> Iterator[Case]:
    """vLLM's test_moe_align_block_size (M x K x E x block_size x pad_sorted_ids from
    :data:`ALIGN_TOKENS`...), then its expert-map test (the even experts local); ids from the
    router, no -1 (vLLM draws ``randperm(E)[:K]`` per token)."""
    generator = torch.Generator().manual_seed(seed)
    axes = (ALIGN_TOKENS, ALIGN_TOPK, ALIGN_EXPERTS, ALIGN_BLOCK_SIZES, (False, True))
    for tokens, topk, experts, block_size, pad in itertools.product(*axes):
        ids, _ = router_topk(generator, tokens, experts, topk)
        yield align_case(ids, experts, block_size, pad, None)
    experts = 8
    expert_map = np.full(experts, -1, dtype=np.int32)
    expert_map[0::2] = np.arange(experts // 2)
    for tokens, topk in itertools.product(ALIGN_MAP_TOKENS, ALIGN_MAP_TOPK):
        ids, _ = router_topk(generator, tokens, experts, topk)
        yield align_case(ids, experts, 64, False, expert_map)


# -- moe_permute --------------------------------------------------------------------------------
def permute_case(
    ids: np.ndarray, num_tokens_per_rank: np.ndarray, expert_map: np.ndarray, sentinel: int, hidden: np.ndarray
) -> Case:
    """The moe_permute case: ``topk_ids`` [R * M, K] int32 (padded rows already ``sentinel``),
    ``num_tokens_per_rank`` [R] int32, ``expert_map`` [E] int32, ``hidden_states`` [R * M, H]."""
    per_rank = ids.shape[0] // num_tokens_per_rank.shape[0]
    return Case(
        {
            "topk_ids": np.ascontiguousarray(ids, dtype=np.int32),
            "num_tokens_per_rank": np.ascontiguousarray(num_tokens_per_rank, dtype=np.int32),
            "expert_map": np.ascontiguousarray(expert_map, dtype=np.int32),
            "hidden_states": np.ascontiguousarray(hidden, dtype=np.float32),
        },
        {
            "num_experts": int(expert_map.shape[0]),
            "num_local_experts": int((expert_map >= 0).sum()),
            "max_tokens_per_rank": per_rank,
            "sentinel": sentinel,
        },
    )


@st.composite
def _moe_permute_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    ranks = draw(st.integers(1, 8))
    per_rank = draw(st.integers(0, max_tokens // ranks))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    owners = draw(st.permutations(range(num_experts)))
    num_local = draw(st.integers(0, num_experts))
    expert_map = np.full(num_experts, -1, dtype=np.int32)
    expert_map[np.asarray(owners[:num_local], dtype=np.int64)] = np.arange(num_local)
    counts = draw(arrays(np.int32, (ranks,), elements=st.integers(0, per_rank)))
    ids = draw(arrays(np.int32, (ranks * per_rank, topk), elements=st.integers(0, num_experts - 1)))
    sentinel = draw(st.sampled_from((-1, num_experts)))
    padded = (np.arange(ranks * per_rank) % max(per_rank, 1)) >= np.repeat(counts, per_rank)
    ids[padded] = sentinel
    hidden = exact_values(draw, (ranks * per_rank, draw(st.integers(1, GIVEN_MAX_HIDDEN))))
    return permute_case(ids, counts, expert_map, sentinel, hidden)


def moe_permute_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """R in 1..8 source ranks of M rows (R * M <= max_tokens), K in 1..8, E in 1..256, an expert
    map of E_local experts of a permutation, each rank's real count in 0..M, real ids in [0, E),
    padded rows whole rows of the sentinel -1 or E, H in 1..256."""
    return _moe_permute_given(max_tokens)


def moe_permute_grid(seed: int) -> Iterator[Case]:
    """vLLM's test_moe_permute_unpermute: T x E x K x ep_size from :data:`PERMUTE_TOKENS`...,
    H = 2048, ids from the router, the rank drawn from the seed with vLLM's linear expert map.
    One source rank, every row a real token (vLLM's test dispatches nothing, so no row is
    padded; the sentinel is the one-sided dispatch's -1)."""
    generator = torch.Generator().manual_seed(seed)
    axes = (PERMUTE_TOKENS, PERMUTE_EXPERTS, PERMUTE_TOPK, PERMUTE_EP_SIZES)
    for tokens, experts, topk, ep_size in itertools.product(*axes):
        start, end = ep_split(experts, ep_size, draw_rank(generator, ep_size))
        expert_map = np.full(experts, -1, dtype=np.int32)
        expert_map[start:end] = np.arange(end - start)
        ids, _ = router_topk(generator, tokens, experts, topk)
        hidden = torch.randn(tokens, GRID_HIDDEN, generator=generator).numpy()
        yield permute_case(ids, np.array([tokens], dtype=np.int32), expert_map, -1, hidden)


# -- ep_scatter ---------------------------------------------------------------------------------
def scatter_case(recv_x: np.ndarray, scale: np.ndarray, recv_topk: np.ndarray, num_experts: int, dtype: str) -> Case:
    """The ep_scatter case: ``recv_x`` [N, H] float32 (exact in ``dtype``), ``recv_x_scale``
    [N, S] float32, ``recv_topk`` [N, K] int32 local ids or -1; the aligned counts derived."""
    return Case(
        {
            "recv_x": np.ascontiguousarray(recv_x, dtype=np.float32),
            "recv_x_scale": np.ascontiguousarray(scale, dtype=np.float32),
            "recv_topk": np.ascontiguousarray(recv_topk, dtype=np.int32),
            "num_recv_tokens_per_expert": aligned_counts(recv_topk, num_experts),
        },
        {"num_experts": num_experts, "dtype": dtype},
    )


def scale_columns(hidden: int, dtype: str) -> int:
    """S: one scale per 128 columns for fp8 (DeepGEMM's 1x128 quantization), none for bf16."""
    return -(-hidden // 128) if dtype == "fp8" else 0


@st.composite
def _ep_scatter_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    tokens = draw(st.integers(1, max_tokens))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    dtype = draw(st.sampled_from(("bf16", "fp8")))
    hidden = draw(st.integers(1, GIVEN_MAX_HIDDEN))
    recv_topk = draw(arrays(np.int32, (tokens, topk), elements=st.integers(-1, num_experts - 1)))
    recv_x = exact_values(draw, (tokens, hidden))
    steps = draw(arrays(np.int16, (tokens, scale_columns(hidden, dtype)), elements=st.integers(1, 1024)))
    return scatter_case(recv_x, steps.astype(np.float32) / 1024, recv_topk, num_experts, dtype)


def ep_scatter_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """N in 1..max_tokens, K in 1..8, E (local) in 1..256, bf16 or fp8, H in 1..256, ids in
    [-1, E), token values i / 4 (exact in both dtypes), fp8 scales in (0, 1]."""
    return _ep_scatter_given(max_tokens)


def _received_tokens(
    generator: torch.Generator, tokens: int, experts: int, topk: int, ep_size: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(recv_topk, weights, E_local)`` of one grid point: the router's [N, K] ids and weights
    on the rank drawn from the seed, ids in that rank's local numbering (-1 elsewhere)."""
    start, end = ep_split(experts, ep_size, draw_rank(generator, ep_size))
    ids, weights = router_topk(generator, tokens, experts, topk)
    return to_local(ids, start, end), weights, end - start


def ep_scatter_grid(seed: int) -> Iterator[Case]:
    """N x K x E x ep_size x dtype of :data:`GRID_TOKENS` x :data:`GRID_TOPK` x
    :data:`GRID_EXPERTS` x :data:`GRID_EP_SIZES` x (bf16, fp8), K <= E: the tokens a rank
    receives, in local ids (-1 for the other ranks' experts) as DeepEP hands them over, H = 2048
    random rows cast to the dtype, random per-128 scales (the LightLLM / DLBlas tests)."""
    generator = torch.Generator().manual_seed(seed)
    axes = (GRID_TOKENS, GRID_TOPK, GRID_EXPERTS, GRID_EP_SIZES, ("bf16", "fp8"))
    for tokens, topk, experts, ep_size, dtype in itertools.product(*axes):
        if topk > experts:
            continue
        recv_topk, _, num_local = _received_tokens(generator, tokens, experts, topk, ep_size)
        rows = torch.randn(tokens, GRID_HIDDEN, generator=generator)
        cast = torch.float8_e4m3fn if dtype == "fp8" else torch.bfloat16
        scale = torch.rand(tokens, scale_columns(GRID_HIDDEN, dtype), generator=generator) + 2.0**-10
        yield scatter_case(rows.to(cast).float().numpy(), scale.numpy(), recv_topk, num_local, dtype)


# -- ep_gather ----------------------------------------------------------------------------------
def gather_case(
    values: np.ndarray, recv_topk: np.ndarray, weights: np.ndarray, index: np.ndarray, experts: int
) -> Case:
    """The ep_gather case: ``input_tensor`` [M, H] float32 (bf16-exact), ``recv_topk``,
    ``recv_topk_weight`` and ``input_index`` [N, K]."""
    return Case(
        {
            "input_tensor": np.ascontiguousarray(values, dtype=np.float32),
            "recv_topk": np.ascontiguousarray(recv_topk, dtype=np.int32),
            "recv_topk_weight": np.ascontiguousarray(weights, dtype=np.float32),
            "input_index": np.ascontiguousarray(index, dtype=np.int32),
        },
        {"num_experts": experts},
    )


@st.composite
def _ep_gather_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    tokens = draw(st.integers(1, max_tokens))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    rows = draw(st.integers(1, 2 * max_tokens))
    hidden = draw(st.integers(1, GIVEN_MAX_HIDDEN))
    recv_topk = draw(arrays(np.int32, (tokens, topk), elements=st.integers(-1, num_experts - 1)))
    sixteenths = draw(arrays(np.int8, (tokens, topk), elements=st.integers(0, 16)))
    index = draw(arrays(np.int32, (tokens, topk), elements=st.integers(0, rows - 1)))
    return gather_case(exact_values(draw, (rows, hidden)), recv_topk, sixteenths / 16, index, num_experts)


def ep_gather_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """N in 1..max_tokens, K in 1..8, E (local) in 1..256, M in 1..2 * max_tokens rows of H in
    1..256, ids in [-1, E), weights in [0, 1] (sixteenths), every input_index in [0, M) (legal
    for every slot: the contract reads only the valid ones), values i / 4 (bf16-exact)."""
    return _ep_gather_given(max_tokens)


def ep_gather_grid(seed: int) -> Iterator[Case]:
    """N x K x E x ep_size of :data:`GRID_TOKENS` x :data:`GRID_TOPK` x :data:`GRID_EXPERTS` x
    :data:`GRID_EP_SIZES`, K <= E: the received tokens as in :func:`ep_scatter_grid`, the
    router's weights on every slot (vLLM hands topk_weights over unchanged), input_index from
    the scatter's layout with 0 in the -1 slots (the tests' ``zeros_like`` output_index), and
    M x 2048 random bf16 rows, padding rows included (the grouped GEMM writes all M)."""
    generator = torch.Generator().manual_seed(seed)
    for tokens, topk, experts, ep_size in itertools.product(GRID_TOKENS, GRID_TOPK, GRID_EXPERTS, GRID_EP_SIZES):
        if topk > experts:
            continue
        recv_topk, weights, num_local = _received_tokens(generator, tokens, experts, topk, ep_size)
        index, rows = scatter_rows(recv_topk, num_local)
        values = torch.randn(rows, GRID_HIDDEN, generator=generator).to(torch.bfloat16).float().numpy()
        yield gather_case(values, recv_topk, weights, index, num_local)


BASELINES: tuple[Baselines, ...] = (
    Baselines("three_step_sort", three_step_sort_given, three_step_sort_grid),
    Baselines("moe_align_block_size", moe_align_block_size_given, moe_align_block_size_grid),
    Baselines("moe_permute", moe_permute_given, moe_permute_grid),
    Baselines("ep_scatter", ep_scatter_given, ep_scatter_grid),
    Baselines("ep_gather", ep_gather_given, ep_gather_grid),
)
