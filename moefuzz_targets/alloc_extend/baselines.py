"""alloc_extend's two benchmark baselines: a plain ``@given`` strategy and an engines-style grid.

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
from moefuzz_targets.alloc_extend.strategy import allocation_case
from moefuzz_targets.shared.baselines import (
    GRID_BATCH_SIZES,
    GRID_MAX_SEQ_LEN,
    PAGE_SIZES,
    Baselines,
    draw_page_order,
    pages_for,
)


def _allocation(
    page_size: int, prefix_lens: np.ndarray, seq_lens: np.ndarray, page_order: np.ndarray, spare_pages: int
) -> Case:
    """The alloc_extend case of a batch whose prefixes own the first pages of ``page_order``
    (request after request, ceil(prefix / page_size) each) and whose free list is the rest of it,
    ``spare_pages`` more than the extend needs. ``page_order``: [num_pages - 1] int64 ids 1.."""
    prefix_pages = pages_for(prefix_lens, page_size)
    starts = np.cumsum(prefix_pages) - prefix_pages
    last_loc = [
        int(page_order[start + pages - 1]) * page_size + (int(prefix) - 1) % page_size if prefix else -1
        for prefix, start, pages in zip(prefix_lens, starts, prefix_pages, strict=True)
    ]
    new_pages = int((pages_for(seq_lens, page_size) - prefix_pages).sum())
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
    count = int(pages_for(seq_lens, page_size).sum()) + spare  # prefix pages + new pages + spare
    return _allocation(page_size, prefix_lens, seq_lens, draw_page_order(draw, count, 1), spare)


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
        needed = int((pages_for(seq_lens, page_size) - pages_for(prefix_lens, page_size)).sum())
        spare = needed if pool == "roomy" else 0
        count = int(pages_for(seq_lens, page_size).sum()) + spare
        yield _allocation(page_size, prefix_lens, seq_lens, np.arange(1, 1 + count, dtype=np.int64), spare)


BASELINES = Baselines("alloc_extend", alloc_extend_given, alloc_extend_grid)
