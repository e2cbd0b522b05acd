"""Cases of paged_decode, drawn from the engine's paged KV cache strategy.

A :class:`~moefuzz.strategies.PagedKVState` gives the page size, the cache's pages and the batch
after its extend (a decode step is an extend by one token). This module turns it into a decode
case::

    cache_seqlens  = the state's seq_lens after the extend
    page_table     = state.page_table() (0-padded), its trailing entries (j >= ceil(L / page_size))
                     and 0 to 2 extra columns replaced by garbage of the state's garbage mode:
                     stale page ids, wild ints (-1, num_pages, num_pages + 1, 2^31 - 1, -2^31)
                     mixed with stale ones, or zeros (SGLang's unwritten req_to_token cells)
    sliding_window = the SWA pool's window W when the state has one, else 0
    q, k, v        = multiples of 1/8 in [-1, 1] (bf16-exact) in the pages the batch owns;
                     every slot of every other page (page 0 included) is NaN, so a kernel that
                     dereferences garbage shows it even where the id is a page of the cache.
                     Slots past L in a request's last page stay finite: bug-trailing-pages is
                     then found through the page table, its subject, not through them.

and draws Hkv, the group size Hq / Hkv and D. Interpreter cost (about 15 ms a program and 7 ms a
block of 64 positions) is kept down through the :class:`~moefuzz.model.target.Limits`: the batch holds
at most ``max_tokens // 4`` tokens, B * Hkv (the kernel's programs, G <= 8 being one chunk) is at
most ``max_tokens // 128`` with B <= half of that, and a cache at most ``max_tokens * 128``
floats: 512 tokens, 16 programs, B <= 8 and 1 MiB caches under ``INTERPRETER_LIMITS``.
Nothing is filtered: every drawn case is legal.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from numpy.typing import ArrayLike

from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.strategies import PagedKVState, paged_kv_states
from moefuzz.strategies.paged_kv import garbage_cells
from moefuzz_targets.paged_decode.contract import pages_used

#: KV heads and q heads per KV head (GQA group): MHA (G = 1) to Llama-3-like G = 8, and G = 16
#: (Hq = 128 with 8 KV heads, the contract's most q heads).
KV_HEADS = (1, 2, 4, 8)
GROUP_SIZES = (1, 2, 4, 8, 16)
#: Head dims: powers of two, 80 (not one: the kernel's BLOCK_D masks the rest) and the
#: contract's bounds 1 and 256.
HEAD_DIMS = (16, 32, 64, 128, 80, 1, 256)
#: Columns of page_table past the longest request's pages (FA takes any max_num_pages).
EXTRA_COLUMNS = (0, 1, 2)


def values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float32 multiples of 1/8 in [-1, 1]: exact in bf16, and q . k exact in fp32."""
    return (rng.integers(-8, 9, size=shape) / 8).astype(np.float32)


def decode_case(
    state: PagedKVState, num_kv_heads: int, group_size: int, head_dim: int, extra_columns: int, seed: int
) -> Case:
    """The decode case of ``state`` (see the module doc), deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    after = state.extended()
    cache_seqlens = after.seq_lens.astype(np.int32)
    table = state.page_table()
    used = pages_used(cache_seqlens, state.page_size)
    width = table.shape[1] + extra_columns
    page_table = np.zeros((state.batch_size, width), dtype=np.int64)
    page_table[:, : table.shape[1]] = table
    trailing = np.arange(width)[None, :] >= used[:, None]
    page_table[trailing] = garbage_cells(rng, int(trailing.sum()), state.garbage, state.num_pages)

    owned = np.zeros(state.num_pages, dtype=bool)
    owned[page_table[~trailing]] = True
    cache_shape = (state.num_pages, state.page_size, num_kv_heads, head_dim)
    k_cache, v_cache = values(rng, cache_shape), values(rng, cache_shape)
    k_cache[~owned] = np.nan
    v_cache[~owned] = np.nan
    return Case(
        {
            "q": values(rng, (state.batch_size, num_kv_heads * group_size, head_dim)),
            "k_cache": k_cache,
            "v_cache": v_cache,
            "page_table": np.ascontiguousarray(page_table.astype(np.int32)),
            "cache_seqlens": cache_seqlens,
        },
        {
            "sliding_window": state.swa.sliding_window if state.swa is not None else 0,
            "sm_scale": 1.0 / math.sqrt(head_dim),
        },
    )


def paged_case(
    q: ArrayLike,
    k_cache: ArrayLike,
    v_cache: ArrayLike,
    page_table: ArrayLike,
    cache_seqlens: ArrayLike,
    sliding_window: int = 0,
    sm_scale: float | None = None,
) -> Case:
    """A case written by hand: float32 q [B, Hq, D], k_cache and v_cache [num_pages, page_size,
    Hkv, D]; int32 page_table [B, max_pages] and cache_seqlens [B]; sm_scale 1 / sqrt(D) by
    default."""
    q_array = np.asarray(q, dtype=np.float32)
    return Case(
        {
            "q": np.ascontiguousarray(q_array),
            "k_cache": np.ascontiguousarray(k_cache, dtype=np.float32),
            "v_cache": np.ascontiguousarray(v_cache, dtype=np.float32),
            "page_table": np.ascontiguousarray(page_table, dtype=np.int32),
            "cache_seqlens": np.ascontiguousarray(cache_seqlens, dtype=np.int32),
        },
        {
            "sliding_window": sliding_window,
            "sm_scale": sm_scale if sm_scale is not None else 1.0 / math.sqrt(q_array.shape[2]),
        },
    )


def _index(draw: st.DrawFn, count: int, label: str) -> int:
    return draw(st.integers(0, max(count - 1, 0)), label=label)


@st.composite
def decode_cases(draw: st.DrawFn, limits: Limits) -> Case:
    """Decode cases within ``limits`` (see the module doc for the budgets)."""
    programs = max(2, limits.max_tokens // 128)
    state = draw(paged_kv_states(max_tokens=max(16, limits.max_tokens // 4), max_batch=programs // 2), label="state")
    programs //= max(state.batch_size, 1)
    cache_floats = limits.max_tokens * 128 // state.capacity
    kv_heads = [h for h in KV_HEADS if h <= programs] or [1]
    num_kv_heads = kv_heads[_index(draw, len(kv_heads), "kv_heads")]
    group_size = GROUP_SIZES[_index(draw, len(GROUP_SIZES), "group_size")]
    dims = [d for d in HEAD_DIMS if num_kv_heads * d <= cache_floats] or [min(HEAD_DIMS)]
    head_dim = dims[_index(draw, len(dims), "head_dim")]
    extra = EXTRA_COLUMNS[_index(draw, len(EXTRA_COLUMNS), "extra_columns")]
    return decode_case(state, num_kv_heads, group_size, head_dim, extra, draw(st.integers(0, 2**32 - 1)))


def cases(limits: Limits) -> st.SearchStrategy[Case]:
    """paged_decode cases within ``limits``."""
    return decode_cases(limits)
