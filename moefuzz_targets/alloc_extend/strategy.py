"""Cases of alloc_extend, drawn from the engine's paged KV cache strategy.

A :class:`~moefuzz.strategies.PagedKVState` gives the batch (``prefix_lens``, ``seq_lens``), the
slot of each request's last prefix token (its ``req_to_token`` cell, from which ``last_loc`` is
read as sglang's scheduler does), the free list and the cache's ``num_pages``. Its length shapes
put prefixes on page boundaries and one off, draw decode steps (every request extends by one
token), empty prefixes and empty extends, page sizes 1, powers of two and odd ones, and caches
with no free page to spare. This module appends the poisoned tail to the free list. Nothing is
filtered: every drawn state needs no more pages than are free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.strategies import PAGE_SIZES, PagedKVState, paged_kv_states
from moefuzz_targets.alloc_extend.contract import POISON_PAGE

#: Entries of POISON_PAGE after the free list: a kernel that runs past the list by up to this many
#: pages reads poison (and shows it in its slots), not memory past the buffer.
FREE_TAIL_PAGES = 8
#: Most requests in a batch: sglang's decode batches are larger, but past a few dozen requests
#: nothing new happens to one request's pages, and the interpreter runs one program per request.
MAX_BATCH = 16
#: The engine's page sizes and the contract's large ones (1024, and its maximum 4096).
DRAWN_PAGE_SIZES = (*PAGE_SIZES, 1024, 4096)


def free_pages_buffer(free_pages: Sequence[int] | np.ndarray, tail: int = FREE_TAIL_PAGES) -> np.ndarray:
    """[len(free_pages) + tail] int64: the free list, then ``tail`` entries of POISON_PAGE."""
    valid = np.asarray(free_pages, dtype=np.int64).reshape(-1)
    return np.concatenate([valid, np.full(tail, POISON_PAGE, dtype=np.int64)])


def allocation_case(
    *,
    page_size: int,
    num_pages: int,
    prefix_lens: Sequence[int] | np.ndarray,
    seq_lens: Sequence[int] | np.ndarray,
    last_loc: Sequence[int] | np.ndarray,
    free_pages: Sequence[int] | np.ndarray,
) -> Case:
    """A case written by hand (or rebuilt by a shrink pass): the free list gets its poisoned tail
    and ``num_free`` is its length."""
    return Case(
        {
            "prefix_lens": np.asarray(prefix_lens, dtype=np.int64).reshape(-1),
            "seq_lens": np.asarray(seq_lens, dtype=np.int64).reshape(-1),
            "last_loc": np.asarray(last_loc, dtype=np.int64).reshape(-1),
            "free_pages": free_pages_buffer(free_pages),
        },
        {"page_size": int(page_size), "num_pages": int(num_pages), "num_free": len(free_pages)},
    )


def last_locs(state: PagedKVState) -> np.ndarray:
    """[B] int64: ``req_to_token[req_pool_indices[i], prefix_lens[i] - 1]``, -1 for an empty
    prefix (what sglang's ``get_last_loc`` returns)."""
    cells = [
        int(state.req_to_token[row, prefix - 1]) if prefix > 0 else -1
        for row, prefix in zip(state.req_pool_indices, state.prefix_lens, strict=True)
    ]
    return np.asarray(cells, dtype=np.int64)


def to_case(state: PagedKVState) -> Case:
    """The alloc_extend case of a paged KV state (its SWA pool, if any, is not used)."""
    return allocation_case(
        page_size=state.page_size,
        num_pages=state.num_pages,
        prefix_lens=state.prefix_lens,
        seq_lens=state.seq_lens,
        last_loc=last_locs(state),
        free_pages=state.free_pages,
    )


def cases(limits: Limits) -> st.SearchStrategy[Case]:
    """alloc_extend cases within ``limits``: up to ``limits.max_tokens`` tokens after the extend,
    up to :data:`MAX_BATCH` requests, page sizes from the paged KV strategy."""
    return st.builds(
        to_case,
        paged_kv_states(max_tokens=limits.max_tokens, max_batch=MAX_BATCH, page_sizes=DRAWN_PAGE_SIZES, swa=False),
    )
