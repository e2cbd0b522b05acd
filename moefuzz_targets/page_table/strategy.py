"""Cases of page_table, drawn from the engine's paged KV cache strategy.

A :class:`~moefuzz.strategies.PagedKVState` after its ``extended()`` gives ``req_to_token``
(garbage in unowned cells), the batch and, some of the time, a SWA pool; this module adds the
table's width ``max_pages``, one of :data:`TABLE_WIDTHS`. A state with a SWA pool is a
sliding-window layer's case, one without a full-attention layer's. Nothing is filtered: every
extended state is a legal input of the contract.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.strategies import PAGE_SIZES, PagedKVState, paged_kv_states

#: Width of page_table: SGLang's eager ``ceil(max_seq_len_k / page_size)``, one page more, or a
#: CUDA-graph buffer over every column of req_to_token (the widths where trailing cells exist).
TABLE_WIDTHS = ("batch_max", "one_more", "context")
#: Most requests a case has (SGLang's decode batches are larger; the bugs need two at most).
MAX_BATCH = 16
#: The engine's page sizes and the contract's maximum, 1024.
DRAWN_PAGE_SIZES = (*PAGE_SIZES, 1024)


def table_width(state: PagedKVState, width: str) -> int:
    """``max_pages`` of a case of ``state`` under one of :data:`TABLE_WIDTHS`."""
    size = state.page_size
    longest = -(-int(state.seq_lens.max(initial=0)) // size)
    context = -(-int(state.req_to_token.shape[1]) // size)
    return {"batch_max": longest, "one_more": min(longest + 1, context), "context": context}[width]


def to_case(state: PagedKVState, width: str) -> Case:
    """The page_table case of ``state`` after its extend, ``max_pages`` from ``width``."""
    after = state.extended()
    swa = after.swa
    return table_case(
        req_to_token=after.req_to_token,
        req_pool_indices=after.req_pool_indices,
        seq_lens=after.seq_lens,
        page_size=after.page_size,
        num_pages=after.num_pages,
        max_pages=table_width(after, width),
        full_to_swa_index_mapping=None if swa is None else swa.full_to_swa_index_mapping,
        sliding_window=-1 if swa is None else swa.sliding_window,
        swa_num_pages=0 if swa is None else swa.num_pages,
    )


def table_case(
    *,
    req_to_token: np.ndarray | Sequence[Sequence[int]],
    req_pool_indices: Sequence[int] | np.ndarray,
    seq_lens: Sequence[int] | np.ndarray,
    page_size: int,
    num_pages: int,
    max_pages: int | None = None,
    full_to_swa_index_mapping: Sequence[int] | np.ndarray | None = None,
    sliding_window: int = -1,
    swa_num_pages: int = 0,
) -> Case:
    """A case from its arrays and params, in the contract's dtypes (for tests and hand-made
    reproducers); ``max_pages`` defaults to the longest request's page count."""
    seq = np.ascontiguousarray(seq_lens, dtype=np.int64)
    arrays: dict[str, np.ndarray] = {
        "req_to_token": np.ascontiguousarray(req_to_token, dtype=np.int32),
        "req_pool_indices": np.ascontiguousarray(req_pool_indices, dtype=np.int64),
        "seq_lens": seq,
    }
    if full_to_swa_index_mapping is not None:
        arrays["full_to_swa_index_mapping"] = np.ascontiguousarray(full_to_swa_index_mapping, dtype=np.int64)
    if max_pages is None:
        max_pages = -(-int(seq.max(initial=0)) // page_size)
    return Case(
        arrays,
        {
            "page_size": int(page_size),
            "num_pages": int(num_pages),
            "max_pages": int(max_pages),
            "sliding_window": int(sliding_window),
            "swa_num_pages": int(swa_num_pages),
        },
    )


def cases(limits: Limits) -> st.SearchStrategy[Case]:
    """page_table cases within ``limits``: up to ``limits.max_tokens`` cached tokens over at most
    :data:`MAX_BATCH` requests, every page size of the paged KV strategy, a SWA pool most of the
    time, a table width from :data:`TABLE_WIDTHS`."""
    states = paged_kv_states(max_tokens=limits.max_tokens, max_batch=MAX_BATCH, page_sizes=DRAWN_PAGE_SIZES, swa=True)
    return st.builds(to_case, states, st.sampled_from(TABLE_WIDTHS))
