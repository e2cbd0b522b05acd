"""Ground truth of page_table's bug models for the benchmarks: where each bug lives and when it fires.

Magma's levels as numpy predicates on a case, no kernel run (see
:class:`~moefuzz_targets.shared.ground_truth.BugModel`): ``reached`` (the case takes the bug's
code path in ``kernels.py``), ``triggered`` (the case meets the bug's condition), and the smallest
failing case known, by hand. ``benchmarks.bug_models`` collects them; the engine never imports
this module.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz_targets.page_table.strategy import table_case
from moefuzz_targets.shared.ground_truth import BugModel


def _trunc_div(values: np.ndarray, divisor: int) -> np.ndarray:
    """int64 ``values / divisor`` truncated towards zero, as a Triton kernel's ``//`` does."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values >= 0, values // divisor, -(-values // divisor))


def _table_cells(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cells, first, num)``: [B, max_pages] int64 ``req_to_token[req_pool_indices[i], j *
    page_size]`` (every column j < max_pages exists: check bounds max_pages by max_context), and
    [B, 1] int64 each the request's first table page and its page count (contract.table_spans)."""
    page_size = int(case.params["page_size"])
    max_pages = int(case.params["max_pages"])
    seq_lens = case.arrays["seq_lens"].astype(np.int64)
    columns = case.arrays["req_to_token"][:, : max_pages * page_size : page_size]
    cells = columns[case.arrays["req_pool_indices"]].astype(np.int64)
    num = -(-seq_lens // page_size)
    window = int(case.params["sliding_window"])
    first = np.maximum(seq_lens - window, 0) // page_size if window >= 1 else np.zeros_like(num)
    return cells, first[:, None], num[:, None]


def trailing_entry_reads(case: Case) -> tuple[np.ndarray, int]:
    """What bug-trailing-entries stores in the cells past each request's pages.

    Returns ``(ids, wild)``: [n] int32 the page ids it computes from the trailing cells ``v =
    req_to_token[row_i, j * page_size]``, ``num_i <= j < max_pages``, whose read is in bounds
    (``trunc(v / page_size)`` on a full-attention layer, ``trunc(mapping[v] / page_size)`` with
    a window when 0 <= v < len(mapping)), and the count of trailing cells on a window layer with
    v outside the mapping (a read outside it: ``crash:out-of-bounds-load`` under the
    interpreter, an illegal memory access on a GPU). ``_page_table_kernel`` with
    ``TRAILING_ENTRIES`` drops ``page < num`` from ``live``.
    """
    cells, _, num = _table_cells(case)
    page_size = int(case.params["page_size"])
    trailing = np.arange(cells.shape[1])[None, :] >= num
    values = cells[trailing]
    mapping = case.arrays.get("full_to_swa_index_mapping")
    if mapping is None:
        return _trunc_div(values, page_size).astype(np.int32), 0
    inside = (values >= 0) & (values < mapping.shape[0])
    return _trunc_div(mapping[values[inside]], page_size).astype(np.int32), int((~inside).sum())


def trailing_reached(case: Case) -> bool:
    """Some request has a cell of the table past its pages: ``num_i < max_pages`` for some i
    (the lanes where the bug's ``live`` differs from the correct one)."""
    _, _, num = _table_cells(case)
    return bool((num < int(case.params["max_pages"])).any())


def trailing_triggered(case: Case) -> bool:
    """Some trailing cell gives an id other than the safe page 0, or is read outside the SWA
    mapping (:func:`trailing_entry_reads`)::

        exists i, num_i <= j < max_pages:  id(v_ij) != 0  or  v_ij outside the mapping (window)

    with ``v_ij = req_to_token[req_pool_indices[i], j * page_size]``. Exact on a full-attention
    layer. On a sliding-window layer a read outside the mapping can land inside another buffer
    of the launch (moefuzz.execute.oob allows those; a GPU may have memory mapped there) and happen to
    hold a value whose id is 0: then the bug model passes a case this calls triggered.
    """
    ids, wild = trailing_entry_reads(case)
    return wild > 0 or bool((ids != 0).any())


def translate_live_pages(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """``(tri_ids, ref_ids)``: [n] int32 each, for every live table page (first_i <= j < num_i)
    of a sliding-window layer, the bug's ``mapping[s // page_size]`` and the contract's
    ``mapping[s] // page_size`` with ``s = req_to_token[row_i, j * page_size]``; empty without
    a window. Both reads are in bounds (check: 0 <= s < num_pages * page_size = len(mapping))."""
    mapping = case.arrays.get("full_to_swa_index_mapping")
    if mapping is None:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    cells, first, num = _table_cells(case)
    page_size = int(case.params["page_size"])
    columns = np.arange(cells.shape[1])[None, :]
    slots = cells[(columns >= first) & (columns < num)]
    tri = mapping[slots // page_size]
    ref = _trunc_div(mapping[slots], page_size)
    return tri.astype(np.int32), ref.astype(np.int32)


def translate_reached(case: Case) -> bool:
    """A sliding-window layer with at least one live table page (``sliding_window >= 1`` and
    some ``num_i - first_i > 0``): the lanes that run ``mapping[slot // page_size]``."""
    return int(case.params["sliding_window"]) >= 1 and translate_live_pages(case)[0].size > 0


def translate_triggered(case: Case) -> bool:
    """A sliding-window layer with a live page whose page id translates differently::

        exists i, first_i <= j < num_i:  mapping[s_ij // Z] != mapping[s_ij] // Z

    (``Z = page_size``, ``s_ij = req_to_token[req_pool_indices[i], j * Z]``). Never at Z = 1.
    Exact: both reads are in bounds, and page_table and kv_indices hold the same ids."""
    tri, ref = translate_live_pages(case)
    return bool((tri != ref).any())


# Models sglang-trtllm-mha-page-table-oob (pyc96/sglang#3, trtllm_mha + hybrid SWA):
# page_table = req_to_token[req_pool_indices, :max_seq_len_k] keeps cells past cache_seqlens.
# The smallest case: one request with seq_len 0 and a one-column table whose one cell holds
# slot 1 of a 1-page cache, page_size 1: the bug stores page 1 = num_pages, one past the cache
# (the report's page_table.max == num_pages_in_cache). Size (B, SWA, max_pages, sum(seq_lens),
# page_size, W, pool rows, max_context, num_pages, swa_num_pages) = (1, 0, 1, 0, 1, 0, 1, 1, 1, 0);
# the fuzzer's divergence shrank to one request and one column (docs/gpu-results.md).
PAGE_TABLE_TRAILING_ENTRIES = BugModel(
    target="page_table",
    kernel="bug-trailing-entries",
    reached=trailing_reached,
    triggered=trailing_triggered,
    minimum_case=table_case(
        req_to_token=[[1]], req_pool_indices=[0], seq_lens=[0], page_size=1, num_pages=1, max_pages=1
    ),
)


# Models what sgl-project/sglang#16267 fixed: the SWA page table translated page ids instead of
# token locations (identical only at page_size 1). The smallest case: page_size 2, one request
# of one token on full page 1 (slot 2) in a window of 1, whose SWA slot is 2 (SWA page 1):
# the contract's id is 2 // 2 = 1, the bug reads mapping[2 // 2] = mapping[1] = 0 (stale).
# Size (1, 1, 1, 1, 2, 1, 1, 1, 2, 2): page_size 2 is the least where the two differ, and each
# pool needs a page besides its reserved page 0. The fuzzer shrank to one request, page_size 2
# or 7 and a 1x1 req_to_token reading mapping[1] = 0 (docs/gpu-results.md).
PAGE_TABLE_TRANSLATE_PAGE_IDS = BugModel(
    target="page_table",
    kernel="bug-translate-page-ids",
    reached=translate_reached,
    triggered=translate_triggered,
    minimum_case=table_case(
        req_to_token=[[2]],
        req_pool_indices=[0],
        seq_lens=[1],
        page_size=2,
        num_pages=2,
        max_pages=1,
        full_to_swa_index_mapping=[0, 0, 2, 3],
        sliding_window=1,
        swa_num_pages=2,
    ),
)


BUG_MODELS: tuple[BugModel, ...] = (
    PAGE_TABLE_TRAILING_ENTRIES,
    PAGE_TABLE_TRANSLATE_PAGE_IDS,
)
