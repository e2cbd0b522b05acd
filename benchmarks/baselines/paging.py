"""Baselines of the paging targets: a plain ``@given`` strategy and an engines-style grid each.

What a competent engineer writes without moefuzz's adversarial structure (the comparison is the
point): a consistent page state built the simple way (pages handed out in order, or shuffled by
a drawn seed; ``req_to_token`` and page tables 0 outside the cells a request owns, as SGLang's
``ReqToTokenPool`` and FlashInfer's tests allocate them with ``torch.zeros``), sizes drawn with
``st.integers`` / ``st.sampled_from``, arrays element by element (``hypothesis.extra.numpy.arrays``,
``st.lists``). Every case is a legal input of the target's contract. Neither uses
:mod:`moefuzz.strategies`; the cases are packed with the targets' hand-made case builders.

    target          given                                     grid (each point once)
    alloc_extend    extend or decode batch, prefix pages     page_size x B x extend/decode x pool
                    then free pages in one drawn order        (SGLang test/srt paged allocator)
    page_table      full or sliding-window layer, pages in   page_size x B x window x table width
                    order or shuffled, SWA mapping 0 off      (SGLang trtllm_mha / fa3 backends)
                    the window
    paged_decode    GQA decode, finite q/k/v everywhere,     page_size x B x (Hkv, Hq) x window
                    page_table 0 past each request's pages    (FlashInfer trtllm-gen / batch decode)
    stream_overlap  B batches of distinct pages from one     B x P x page_size x slot_size x
                    pool, drawn fills and spins               spin x pool reuse x copy_method

Each ``*_given`` factory takes keyword size caps whose defaults are real sizes (the
:class:`~benchmarks.baselines.Baselines` driver calls it with none); each ``*_grid`` takes the
seed and keyword caps whose defaults give the real grid. Grids draw content from
``np.random.default_rng(seed)`` (alloc_extend, page_table, stream_overlap) or
``torch.Generator().manual_seed(seed)`` (paged_decode's randn q, k, v, as FlashInfer's tests).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from benchmarks.baselines import Baselines
from moefuzz.model.case import Case
from moefuzz_targets.alloc_extend.strategy import allocation_case
from moefuzz_targets.page_table.strategy import table_case
from moefuzz_targets.paged_decode.strategy import paged_case
from moefuzz_targets.stream_overlap.layout import COPY_METHODS

#: Page sizes of SGLang's paged KV cache: 1 (token-granular, its default), 16/32/64 (FA3,
#: FlashInfer, trtllm_mha).
PAGE_SIZES = (1, 16, 32, 64)
#: Batch sizes of the engines' decode tests.
GRID_BATCH_SIZES = (1, 4, 16, 64)
#: Longest request of a grid case ("seq lens random up to a few thousand").
GRID_MAX_SEQ_LEN = 4096


def _pages(lengths: np.ndarray | int, page_size: int) -> np.ndarray:
    """int64 ceil(lengths / page_size), elementwise."""
    return -(-np.asarray(lengths, dtype=np.int64) // page_size)


def _draw_page_order(draw: st.DrawFn, count: int, first: int) -> np.ndarray:
    """[count] int64 page ids first..first+count-1, in order or shuffled by a drawn seed (a
    permutation drawn element by element overruns Hypothesis's buffer at a 4096-token batch of
    page_size 1)."""
    pages = np.arange(first, first + count, dtype=np.int64)
    if draw(st.booleans()):
        np.random.default_rng(draw(st.integers(0, 2**32 - 1))).shuffle(pages)
    return pages


# -- alloc_extend ---------------------------------------------------------------------------
def _allocation(
    page_size: int, prefix_lens: np.ndarray, seq_lens: np.ndarray, page_order: np.ndarray, spare_pages: int
) -> Case:
    """The alloc_extend case of a batch whose prefixes own the first pages of ``page_order``
    (request after request, ceil(prefix / page_size) each) and whose free list is the rest of it,
    ``spare_pages`` more than the extend needs. ``page_order``: [num_pages - 1] int64 ids 1.."""
    prefix_pages = _pages(prefix_lens, page_size)
    starts = np.cumsum(prefix_pages) - prefix_pages
    last_loc = [
        int(page_order[start + pages - 1]) * page_size + (int(prefix) - 1) % page_size if prefix else -1
        for prefix, start, pages in zip(prefix_lens, starts, prefix_pages, strict=True)
    ]
    new_pages = int((_pages(seq_lens, page_size) - prefix_pages).sum())
    owned = int(prefix_pages.sum())
    return allocation_case(
        page_size=page_size,
        num_pages=1 + owned + new_pages + spare_pages,
        prefix_lens=prefix_lens,
        seq_lens=seq_lens,
        last_loc=last_loc,
        free_pages=page_order[owned : owned + new_pages + spare_pages],
    )


@st.composite
def alloc_extend_given(
    draw: st.DrawFn,
    *,
    max_batch: int = 64,
    max_prefix_len: int = 4096,
    max_extend_len: int = 512,
    max_spare_pages: int = 16,
) -> Case:
    """alloc_extend cases as a plain ``@given`` test writes them: B, page_size and a decode
    flag drawn; ``prefix_lens`` [B] int64 element by element, ``seq_lens = prefix_lens + 1`` for
    a decode batch, else plus drawn extend lengths; the prefixes own pages 1.. in one drawn
    order and the free list is the rest of it, 0..max_spare_pages more than needed."""
    page_size = draw(st.sampled_from(PAGE_SIZES))
    batch = draw(st.integers(1, max_batch))
    decode = draw(st.booleans())
    prefix_lens = draw(arrays(np.int64, batch, elements=st.integers(0, max_prefix_len)))
    if decode:
        extend_lens = np.ones(batch, dtype=np.int64)
    else:
        extend_lens = draw(arrays(np.int64, batch, elements=st.integers(0, max_extend_len)))
    seq_lens = prefix_lens + extend_lens
    spare = draw(st.integers(0, max_spare_pages))
    count = int(_pages(seq_lens, page_size).sum()) + spare  # prefix pages + new pages + spare
    return _allocation(page_size, prefix_lens, seq_lens, _draw_page_order(draw, count, 1), spare)


#: alloc_extend grid: extend (chunked prefill) and decode steps; a pool that the step fills
#: exactly, or one with as many pages again to spare (SGLang's tests size the pool by hand).
ALLOC_MODES = ("extend", "decode")
ALLOC_POOLS = ("exact", "roomy")


def alloc_extend_grid(
    seed: int, *, batch_sizes: tuple[int, ...] = GRID_BATCH_SIZES, max_seq_len: int = GRID_MAX_SEQ_LEN
) -> Iterator[Case]:
    """The grid of SGLang's paged allocator tests: page_size x B x mode x pool, each once.

    As a fresh ``PagedTokenToKVPoolAllocator`` hands pages out (free list ``arange(1,
    num_pages)``, in order): request i's prefix owns the pages after request i-1's, the free
    list is the rest, ascending. Lengths from ``default_rng(seed)``: decode prefixes in
    1..max_seq_len - 1; extend prefixes in 0..max_seq_len / 2 plus 1..max_seq_len / 2 new
    tokens."""
    rng = np.random.default_rng(seed)
    for page_size, batch, mode, pool in itertools.product(PAGE_SIZES, batch_sizes, ALLOC_MODES, ALLOC_POOLS):
        if mode == "decode":
            prefix_lens = rng.integers(1, max_seq_len, size=batch)
            seq_lens = prefix_lens + 1
        else:
            prefix_lens = rng.integers(0, max_seq_len // 2 + 1, size=batch)
            seq_lens = prefix_lens + rng.integers(1, max_seq_len // 2 + 1, size=batch)
        needed = int((_pages(seq_lens, page_size) - _pages(prefix_lens, page_size)).sum())
        spare = needed if pool == "roomy" else 0
        count = int(_pages(seq_lens, page_size).sum()) + spare
        yield _allocation(page_size, prefix_lens, seq_lens, np.arange(1, 1 + count, dtype=np.int64), spare)


# -- page_table -------------------------------------------------------------------------------
def _page_table_case(
    *,
    page_size: int,
    seq_lens: np.ndarray,
    req_pool_indices: np.ndarray,
    pool_rows: int,
    max_context: int,
    page_order: np.ndarray,
    max_pages: int,
    sliding_window: int,
    swa_page_order: np.ndarray | None = None,
) -> Case:
    """A page_table case: request i's pages are the next ceil(seq_len / page_size) ids of
    ``page_order`` ([>= total pages] int64, ids >= 1), its cells of ``req_to_token``
    [pool_rows, max_context] int32 their slots, every other cell 0. With a window, the pages
    holding a request's last W positions get SWA pages from ``swa_page_order`` (ids >= 1) and
    ``full_to_swa_index_mapping`` [num_pages * page_size] int64 their slots, 0 elsewhere."""
    num = _pages(seq_lens, page_size)
    starts = np.cumsum(num) - num
    num_pages = 1 + int(page_order.max(initial=0))
    req_to_token = np.zeros((pool_rows, max_context), dtype=np.int64)
    window_pages = []
    for i, (row, seq_len) in enumerate(zip(req_pool_indices, seq_lens, strict=True)):
        positions = np.arange(int(seq_len))
        pages = page_order[starts[i] + positions // page_size]
        req_to_token[row, : int(seq_len)] = pages * page_size + positions % page_size
        if sliding_window >= 1:
            first = max(int(seq_len) - sliding_window, 0) // page_size
            window_pages += page_order[starts[i] + first : starts[i] + num[i]].tolist()
    mapping, swa_num_pages = None, 0
    if sliding_window >= 1:
        assert swa_page_order is not None
        mapping = np.zeros(num_pages * page_size, dtype=np.int64)
        offsets = np.arange(page_size)
        for full_page, swa_page in zip(window_pages, swa_page_order[: len(window_pages)], strict=True):
            mapping[full_page * page_size + offsets] = swa_page * page_size + offsets
        swa_num_pages = 1 + int(swa_page_order[: len(window_pages)].max(initial=0))
    return table_case(
        req_to_token=req_to_token,
        req_pool_indices=req_pool_indices,
        seq_lens=seq_lens,
        page_size=page_size,
        num_pages=num_pages,
        max_pages=max_pages,
        full_to_swa_index_mapping=mapping,
        sliding_window=sliding_window,
        swa_num_pages=swa_num_pages,
    )


@st.composite
def page_table_given(
    draw: st.DrawFn,
    *,
    max_batch: int = 64,
    max_seq_len: int = 4096,
    max_spare_rows: int = 4,
    max_extra_context: int = 64,
) -> Case:
    """page_table cases as a plain ``@given`` test writes them: B, page_size, ``seq_lens`` [B]
    int64 element by element (0..max_seq_len), spare pool rows and context columns, the batch on
    a drawn permutation of the pool rows, pages in one drawn order, a full-attention layer or a
    window W in 1..max_seq_len (SWA pages in order), max_pages anywhere between the longest
    request's pages and the whole context's."""
    page_size = draw(st.sampled_from(PAGE_SIZES))
    batch = draw(st.integers(1, max_batch))
    seq_lens = draw(arrays(np.int64, batch, elements=st.integers(0, max_seq_len)))
    pool_rows = batch + draw(st.integers(0, max_spare_rows))
    rows = np.asarray(draw(st.permutations(range(pool_rows)))[:batch], dtype=np.int64)
    max_context = max(1, int(seq_lens.max()) + draw(st.integers(0, max_extra_context)))
    total = int(_pages(seq_lens, page_size).sum())
    sliding_window = draw(st.one_of(st.just(-1), st.integers(1, max_seq_len)))
    low, high = int(_pages(seq_lens.max(), page_size)), int(_pages(max_context, page_size))
    return _page_table_case(
        page_size=page_size,
        seq_lens=seq_lens,
        req_pool_indices=rows,
        pool_rows=pool_rows,
        max_context=max_context,
        page_order=_draw_page_order(draw, total, 1),
        max_pages=draw(st.integers(low, high)),
        sliding_window=sliding_window,
        swa_page_order=np.arange(1, 1 + total, dtype=np.int64),
    )


#: page_table grid: a full-attention layer and two sliding windows (gpt-oss's 128, Gemma's 1024);
#: the eager table width (SGLang's ceil(max_seq_len_k / page_size)) and a CUDA-graph buffer over
#: the whole context.
TABLE_WINDOWS = (-1, 128, 1024)
TABLE_WIDTHS = ("eager", "cuda_graph")


def page_table_grid(
    seed: int, *, batch_sizes: tuple[int, ...] = GRID_BATCH_SIZES, max_seq_len: int = GRID_MAX_SEQ_LEN
) -> Iterator[Case]:
    """The grid of SGLang's trtllm_mha / fa3 backend tests: page_size x B x window x width, each
    once. ``req_to_token`` [B, max_seq_len] zeros with rows in batch order, request i's pages
    after request i-1's from page 1 (and SWA pages likewise); seq lens from ``default_rng(seed)``
    in 1..max_seq_len."""
    rng = np.random.default_rng(seed)
    for page_size, batch, window, width in itertools.product(PAGE_SIZES, batch_sizes, TABLE_WINDOWS, TABLE_WIDTHS):
        seq_lens = rng.integers(1, max_seq_len + 1, size=batch)
        total = int(_pages(seq_lens, page_size).sum())
        longest = seq_lens.max() if width == "eager" else max_seq_len
        yield _page_table_case(
            page_size=page_size,
            seq_lens=seq_lens,
            req_pool_indices=np.arange(batch, dtype=np.int64),
            pool_rows=batch,
            max_context=max_seq_len,
            page_order=np.arange(1, 1 + total, dtype=np.int64),
            max_pages=int(_pages(longest, page_size)),
            sliding_window=window,
            swa_page_order=np.arange(1, 1 + total, dtype=np.int64),
        )


# -- paged_decode -----------------------------------------------------------------------------
def _decode_page_table(cache_seqlens: np.ndarray, page_size: int, page_order: np.ndarray) -> np.ndarray:
    """[B, max_pages] int32: request i's pages the next ceil(L_i / page_size) ids of
    ``page_order``, 0 past them (max_pages: the longest request's page count)."""
    num = _pages(cache_seqlens, page_size)
    table = np.zeros((num.size, int(num.max(initial=0))), dtype=np.int32)
    starts = np.cumsum(num) - num
    for i, (start, count) in enumerate(zip(starts, num, strict=True)):
        table[i, :count] = page_order[start : start + count]
    return table


@st.composite
def paged_decode_given(
    draw: st.DrawFn,
    *,
    max_batch: int = 16,
    max_seq_len: int = 2048,
    kv_heads: tuple[int, ...] = (1, 2, 4, 8),
    group_sizes: tuple[int, ...] = (1, 2, 4, 8),
    head_dims: tuple[int, ...] = (64, 128),
    page_sizes: tuple[int, ...] = PAGE_SIZES,
) -> Case:
    """paged_decode cases as a plain ``@given`` test writes them: B, Hkv, the GQA group, D and
    page_size drawn; ``cache_seqlens`` [B] int32 element by element (1..max_seq_len); no window
    or W in 1..max_seq_len; every page of the cache owned by a request, in one drawn order, 0
    past a request's pages; q [B, Hq, D], k_cache and v_cache [num_pages, page_size, Hkv, D]
    float32 in [-1, 1], element by element (Hypothesis fills most of a large array with one
    drawn value)."""
    batch = draw(st.integers(1, max_batch))
    num_kv_heads = draw(st.sampled_from(kv_heads))
    num_q_heads = num_kv_heads * draw(st.sampled_from(group_sizes))
    head_dim = draw(st.sampled_from(head_dims))
    page_size = draw(st.sampled_from(page_sizes))
    cache_seqlens = draw(arrays(np.int32, batch, elements=st.integers(1, max_seq_len)))
    sliding_window = draw(st.one_of(st.just(0), st.integers(1, max_seq_len)))
    num_pages = int(_pages(cache_seqlens, page_size).sum())
    values = st.floats(-1, 1, width=32)
    cache_shape = (num_pages, page_size, num_kv_heads, head_dim)
    return paged_case(
        q=draw(arrays(np.float32, (batch, num_q_heads, head_dim), elements=values)),
        k_cache=draw(arrays(np.float32, cache_shape, elements=values)),
        v_cache=draw(arrays(np.float32, cache_shape, elements=values)),
        page_table=_decode_page_table(cache_seqlens, page_size, _draw_page_order(draw, num_pages, 0)),
        cache_seqlens=cache_seqlens,
        sliding_window=sliding_window,
    )


#: paged_decode grid: FlashInfer's decode page sizes, (Hkv, Hq) in GQA ratios 1, 8 and 8 (its
#: batch-decode (4, 4) and (4, 32), Llama-3-70B's (8, 64)), head_dim 128, and windows of
#: window_left -1 (none), 127 and 1023 (W = window_left + 1).
DECODE_PAGE_SIZES = (16, 32, 64)
DECODE_HEADS = ((4, 4), (4, 32), (8, 64))
DECODE_HEAD_DIM = 128
DECODE_WINDOWS = (0, 128, 1024)
DECODE_MAX_SEQ_LEN = 2048


def paged_decode_grid(
    seed: int,
    *,
    batch_sizes: tuple[int, ...] = GRID_BATCH_SIZES,
    max_seq_len: int = DECODE_MAX_SEQ_LEN,
    heads: tuple[tuple[int, int], ...] = DECODE_HEADS,
    head_dim: int = DECODE_HEAD_DIM,
) -> Iterator[Case]:
    """The grid of FlashInfer's ``tests/test_trtllm_gen_decode`` / ``test_batch_decode_kernels``:
    page_size x B x (Hkv, Hq) x window, each once. From ``torch.Generator().manual_seed(seed)``:
    seq lens in 1..max_seq_len, a random permutation of the cache's pages (every page owned, 0
    past a request's pages, as their ``block_tables``), q, k_cache and v_cache ``torch.randn``
    float32."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for page_size, batch, (num_kv_heads, num_q_heads), window in itertools.product(
        DECODE_PAGE_SIZES, batch_sizes, heads, DECODE_WINDOWS
    ):
        cache_seqlens = torch.randint(1, max_seq_len + 1, (batch,), generator=generator).numpy().astype(np.int32)
        num_pages = int(_pages(cache_seqlens, page_size).sum())
        page_order = torch.randperm(num_pages, generator=generator).numpy()
        cache_shape = (num_pages, page_size, num_kv_heads, head_dim)
        yield paged_case(
            q=torch.randn(batch, num_q_heads, head_dim, generator=generator).numpy(),
            k_cache=torch.randn(cache_shape, generator=generator).numpy(),
            v_cache=torch.randn(cache_shape, generator=generator).numpy(),
            page_table=_decode_page_table(cache_seqlens, page_size, page_order),
            cache_seqlens=cache_seqlens,
            sliding_window=window,
            sm_scale=1.0 / math.sqrt(head_dim),
        )


# -- stream_overlap ---------------------------------------------------------------------------
def _schedule_case(
    rows: list[np.ndarray], fills: list[np.ndarray], kernel_lengths: np.ndarray, per_batch: int, **params: int | str
) -> Case:
    """A stream_overlap case: row b's pages then -1 padding to ``per_batch`` columns
    (``batch_pages`` [B, P] int32), their fills (0 on padding), ``kernel_lengths`` [B] int32."""
    pages = np.full((len(rows), per_batch), -1, dtype=np.int32)
    page_fills = np.zeros((len(rows), per_batch), dtype=np.int32)
    for b, (row, fill) in enumerate(zip(rows, fills, strict=True)):
        pages[b, : len(row)] = row
        page_fills[b, : len(row)] = fill
    return Case(
        {"batch_pages": pages, "page_fills": page_fills, "kernel_lengths": np.asarray(kernel_lengths, dtype=np.int32)},
        dict(params),
    )


@st.composite
def stream_overlap_given(
    draw: st.DrawFn,
    *,
    max_batches: int = 16,
    max_pages_per_batch: int = 64,
    page_sizes: tuple[int, ...] = (1, 16, 64),
    slot_sizes: tuple[int, ...] = (1, 64, 128, 576),
    max_kernel_length: int = 4096,
) -> Case:
    """stream_overlap schedules as a plain ``@given`` test writes them: B, P, page_size,
    slot_size and a pool of P..B * P pages drawn; each batch a list of 1..P distinct pages of the
    pool, their fills element by element (1..page_size), each forward's spin rounds element by
    element (0..max_kernel_length), and the copy method."""
    num_batches = draw(st.integers(1, max_batches))
    per_batch = draw(st.integers(1, max_pages_per_batch))
    page_size = draw(st.sampled_from(page_sizes))
    slot_size = draw(st.sampled_from(slot_sizes))
    num_pages = draw(st.integers(per_batch, per_batch * num_batches))
    page_ids = st.integers(0, num_pages - 1)
    rows = [
        np.asarray(draw(st.lists(page_ids, min_size=1, max_size=per_batch, unique=True))) for _ in range(num_batches)
    ]
    fills = [draw(arrays(np.int32, len(row), elements=st.integers(1, page_size))) for row in rows]
    return _schedule_case(
        rows,
        fills,
        draw(arrays(np.int32, num_batches, elements=st.integers(0, max_kernel_length))),
        per_batch,
        num_pages=num_pages,
        page_size=page_size,
        slot_size=slot_size,
        copy_method=draw(st.sampled_from(COPY_METHODS)),
    )


#: stream_overlap grid, shaped like HiCache write-through batches: 1..8 batches in flight, one
#: page, a few, or a chunked prefill's 64 pages a batch; pages of 16 and 64 slots (FA3, trtllm);
#: a slot of one head's K (128 int32) or MLA's 576; forwards of no spin or 1024 rounds (~0.2 ms);
#: pools of fresh pages for each batch (an allocator with room) or the same pages every batch
#: (evicted and handed out again, as tests/test_stream_overlap_gpu.py schedules them).
STREAM_BATCHES = (1, 2, 4, 8)
STREAM_PAGES_PER_BATCH = (1, 4, 64)
STREAM_PAGE_SIZES = (16, 64)
STREAM_SLOT_SIZES = (128, 576)
STREAM_KERNEL_LENGTHS = (0, 1024)
STREAM_POOLS = ("fresh", "same")


def stream_overlap_grid(
    seed: int,
    *,
    batches: tuple[int, ...] = STREAM_BATCHES,
    pages_per_batch: tuple[int, ...] = STREAM_PAGES_PER_BATCH,
    page_sizes: tuple[int, ...] = STREAM_PAGE_SIZES,
    slot_sizes: tuple[int, ...] = STREAM_SLOT_SIZES,
    kernel_lengths: tuple[int, ...] = STREAM_KERNEL_LENGTHS,
) -> Iterator[Case]:
    """B x P x page_size x slot_size x spin x pool x copy_method, each once. From
    ``default_rng(seed)``: the order of each batch's pages and how full its last page is."""
    rng = np.random.default_rng(seed)
    axes = (batches, pages_per_batch, page_sizes, slot_sizes, kernel_lengths, STREAM_POOLS, COPY_METHODS)
    for num_batches, per_batch, page_size, slot_size, length, pool, method in itertools.product(*axes):
        if pool == "fresh":
            rows = [rng.permutation(np.arange(b * per_batch, (b + 1) * per_batch)) for b in range(num_batches)]
        else:
            rows = [rng.permutation(per_batch) for _ in range(num_batches)]
        fills = []
        for row in rows:
            fill = np.full(row.size, page_size, dtype=np.int32)
            fill[-1] = rng.integers(1, page_size + 1)
            fills.append(fill)
        yield _schedule_case(
            rows,
            fills,
            np.full(num_batches, length, dtype=np.int32),
            per_batch,
            num_pages=num_batches * per_batch if pool == "fresh" else per_batch,
            page_size=page_size,
            slot_size=slot_size,
            copy_method=method,
        )


BASELINES: tuple[Baselines, ...] = (
    Baselines("alloc_extend", alloc_extend_given, alloc_extend_grid),
    Baselines("page_table", page_table_given, page_table_grid),
    Baselines("paged_decode", paged_decode_given, paged_decode_grid),
    Baselines("stream_overlap", stream_overlap_given, stream_overlap_grid),
)
