"""page_table's two benchmark baselines: a plain ``@given`` strategy and an engines-style grid.

What a property test written without moefuzz would draw (see
:class:`~moefuzz_targets.shared.baselines.Baselines`); ``benchmarks.baselines`` runs them. Uses
nothing from :mod:`moefuzz.strategies`, the thing compared against.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from moefuzz.model.case import Case
from moefuzz_targets.page_table.strategy import table_case
from moefuzz_targets.shared.baselines import (
    GRID_BATCH_SIZES,
    GRID_MAX_SEQ_LEN,
    PAGE_SIZES,
    Baselines,
    draw_page_order,
    pages_for,
)


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
    num = pages_for(seq_lens, page_size)
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
    total = int(pages_for(seq_lens, page_size).sum())
    sliding_window = draw(st.one_of(st.just(-1), st.integers(1, max_seq_len)))
    low, high = int(pages_for(seq_lens.max(), page_size)), int(pages_for(max_context, page_size))
    return _page_table_case(
        page_size=page_size,
        seq_lens=seq_lens,
        req_pool_indices=rows,
        pool_rows=pool_rows,
        max_context=max_context,
        page_order=draw_page_order(draw, total, 1),
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
        total = int(pages_for(seq_lens, page_size).sum())
        longest = seq_lens.max() if width == "eager" else max_seq_len
        yield _page_table_case(
            page_size=page_size,
            seq_lens=seq_lens,
            req_pool_indices=np.arange(batch, dtype=np.int64),
            pool_rows=batch,
            max_context=max_seq_len,
            page_order=np.arange(1, 1 + total, dtype=np.int64),
            max_pages=int(pages_for(longest, page_size)),
            sliding_window=window,
            swa_page_order=np.arange(1, 1 + total, dtype=np.int64),
        )


BASELINES = Baselines("page_table", page_table_given, page_table_grid)
