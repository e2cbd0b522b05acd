"""paged_decode's two benchmark baselines: a plain ``@given`` strategy and an engines-style grid.

What a property test written without moefuzz would draw (see
:class:`~moefuzz_targets.shared.baselines.Baselines`); ``benchmarks.baselines`` runs them. Uses
nothing from :mod:`moefuzz.strategies`, the thing compared against.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from moefuzz.model.case import Case
from moefuzz_targets.paged_decode.strategy import paged_case
from moefuzz_targets.shared.baselines import (
    GRID_BATCH_SIZES,
    PAGE_SIZES,
    Baselines,
    draw_page_order,
    pages_for,
)


def _decode_page_table(cache_seqlens: np.ndarray, page_size: int, page_order: np.ndarray) -> np.ndarray:
    """[B, max_pages] int32: request i's pages the next ceil(L_i / page_size) ids of
    ``page_order``, 0 past them (max_pages: the longest request's page count)."""
    num = pages_for(cache_seqlens, page_size)
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
    num_pages = int(pages_for(cache_seqlens, page_size).sum())
    values = st.floats(-1, 1, width=32)
    cache_shape = (num_pages, page_size, num_kv_heads, head_dim)
    return paged_case(
        q=draw(arrays(np.float32, (batch, num_q_heads, head_dim), elements=values)),
        k_cache=draw(arrays(np.float32, cache_shape, elements=values)),
        v_cache=draw(arrays(np.float32, cache_shape, elements=values)),
        page_table=_decode_page_table(cache_seqlens, page_size, draw_page_order(draw, num_pages, 0)),
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
        num_pages = int(pages_for(cache_seqlens, page_size).sum())
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


BASELINES = Baselines("paged_decode", paged_decode_given, paged_decode_grid)
