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

from moefuzz_targets.alloc_extend import baselines as _alloc_extend
from moefuzz_targets.alloc_extend.baselines import ALLOC_MODES, ALLOC_POOLS, alloc_extend_given, alloc_extend_grid
from moefuzz_targets.page_table import baselines as _page_table
from moefuzz_targets.page_table.baselines import TABLE_WIDTHS, TABLE_WINDOWS, page_table_given, page_table_grid
from moefuzz_targets.paged_decode import baselines as _paged_decode
from moefuzz_targets.paged_decode.baselines import (
    DECODE_HEAD_DIM,
    DECODE_HEADS,
    DECODE_MAX_SEQ_LEN,
    DECODE_PAGE_SIZES,
    DECODE_WINDOWS,
    paged_decode_given,
    paged_decode_grid,
)
from moefuzz_targets.shared.baselines import (
    GRID_BATCH_SIZES,
    GRID_MAX_SEQ_LEN,
    PAGE_SIZES,
    Baselines,
    draw_page_order,
    pages_for,
)
from moefuzz_targets.stream_overlap import baselines as _stream_overlap
from moefuzz_targets.stream_overlap.baselines import (
    STREAM_BATCHES,
    STREAM_KERNEL_LENGTHS,
    STREAM_PAGE_SIZES,
    STREAM_PAGES_PER_BATCH,
    STREAM_POOLS,
    STREAM_SLOT_SIZES,
    stream_overlap_given,
    stream_overlap_grid,
)

BASELINES: tuple[Baselines, ...] = (
    _alloc_extend.BASELINES,
    _page_table.BASELINES,
    _paged_decode.BASELINES,
    _stream_overlap.BASELINES,
)

__all__ = [
    "ALLOC_MODES",
    "ALLOC_POOLS",
    "BASELINES",
    "DECODE_HEADS",
    "DECODE_HEAD_DIM",
    "DECODE_MAX_SEQ_LEN",
    "DECODE_PAGE_SIZES",
    "DECODE_WINDOWS",
    "GRID_BATCH_SIZES",
    "GRID_MAX_SEQ_LEN",
    "PAGE_SIZES",
    "STREAM_BATCHES",
    "STREAM_KERNEL_LENGTHS",
    "STREAM_PAGES_PER_BATCH",
    "STREAM_PAGE_SIZES",
    "STREAM_POOLS",
    "STREAM_SLOT_SIZES",
    "TABLE_WIDTHS",
    "TABLE_WINDOWS",
    "Baselines",
    "alloc_extend_given",
    "alloc_extend_grid",
    "draw_page_order",
    "page_table_given",
    "page_table_grid",
    "paged_decode_given",
    "paged_decode_grid",
    "pages_for",
    "stream_overlap_given",
    "stream_overlap_grid",
]
