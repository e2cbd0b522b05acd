"""Ground truth of paged_decode's bug models for the benchmarks: where each bug lives and when it fires.

Magma's levels as numpy predicates on a case, no kernel run (see
:class:`~moefuzz_targets.shared.ground_truth.BugModel`): ``reached`` (the case takes the bug's
code path in ``kernels.py``), ``triggered`` (the case meets the bug's condition), and the smallest
failing case known, by hand. ``benchmarks.bug_models`` collects them; the engine never imports
this module.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz_targets.paged_decode.strategy import paged_case
from moefuzz_targets.shared.ground_truth import BugModel

#: Positions per loop step of the paged decode kernel (``moefuzz_targets.paged_decode.kernels.BLOCK_N``,
#: restated so that these predicates import no triton; ``tests/test_bug_models_paging.py`` pins
#: the two equal).
DECODE_BLOCK_N = 64


def window_reached(case: Case) -> bool:
    """A sliding window (``W = sliding_window > 0``) and a request with L > 0: the kernel's
    ``start`` comes from ``window_start``, the line the bug changes."""
    return int(case.params["sliding_window"]) > 0 and bool((case.arrays["cache_seqlens"] > 0).any())


def window_triggered(case: Case) -> bool:
    """``0 < W < L_i`` for some request i: the bug's start ``max(0, L - W - 1)`` is ``L - W - 1``,
    one position before the contract's ``L - W``, so position L - W - 1 (a page of the request,
    p < L) is attended too.

    Masked by data when the extra key moves no entry of ``o[i]`` past the tolerance (its value
    vector equal, within ATOL + RTOL * |o|, to what the window attends, or a softmax weight too
    small to matter): the bug model then passes a case this calls triggered."""
    window = int(case.params["sliding_window"])
    return window > 0 and bool((case.arrays["cache_seqlens"] > window).any())


def trailing_page_reads(case: Case) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per request i with L > 0, the lanes bug-trailing-pages reads that the contract does not
    attend: ``(i, pages, offsets)``, [n] int64 each, the page ids it loads and the slots it then
    reads in k_cache and v_cache.

    The loop covers ``pos`` in blocks of :data:`DECODE_BLOCK_N` from ``(start // BLOCK_N) *
    BLOCK_N`` up to the block holding L - 1; the bug reads every such lane with ``pos //
    page_size < max_pages`` (``read = column < max_pages``), the correct kernel only ``start <=
    pos < L``. ``start = max(0, L - W)`` with a window W > 0, else 0.
    """
    page_table = case.arrays["page_table"]
    max_pages = page_table.shape[1]
    page_size = case.arrays["k_cache"].shape[1]
    window = int(case.params["sliding_window"])
    reads = []
    for i, seq_len in enumerate(case.arrays["cache_seqlens"].astype(np.int64).tolist()):
        if seq_len <= 0:
            continue
        start = max(0, seq_len - window) if window > 0 else 0
        block_start = start // DECODE_BLOCK_N * DECODE_BLOCK_N
        blocks = -(-(seq_len - block_start) // DECODE_BLOCK_N)
        pos = np.arange(block_start, block_start + blocks * DECODE_BLOCK_N, dtype=np.int64)
        pos = pos[(pos // page_size < max_pages) & ((pos < start) | (pos >= seq_len))]
        if pos.size:
            reads.append((i, page_table[i, pos // page_size].astype(np.int64), pos % page_size))
    return reads


def trailing_pages_reached(case: Case) -> bool:
    """Some lane is read that the contract does not attend (:func:`trailing_page_reads`): a
    block of positions reaches a column past the request's pages, or starts before its window."""
    return bool(trailing_page_reads(case))


def trailing_pages_wild(case: Case) -> bool:
    """Some lane of :func:`trailing_page_reads` loads a page id outside 0..num_pages-1: its K/V
    read is outside k_cache and v_cache."""
    num_pages = case.arrays["k_cache"].shape[0]
    return any(((pages < 0) | (pages >= num_pages)).any() for _, pages, _ in trailing_page_reads(case))


def trailing_pages_triggered(case: Case) -> bool:
    """Some unattended lane that the bug reads has a page id outside the cache, or a V slot
    that is not finite in some kv head::

        exists i, lane pos:  page = page_table[i, pos // Z] outside 0..num_pages-1
                             or  not isfinite(v_cache[page, pos % Z, :, :]).all()

    An unattended lane gets softmax weight exactly 0 (``s = -inf`` there), so only a V that is
    NaN or infinite shows (0 * NaN in ``tl.dot(p, v)``); a NaN K is masked to -inf. Exact for
    ids in the cache. An id outside it can land inside another buffer of the launch (moefuzz.execute.oob
    allows those; a GPU may have memory mapped there) and read finite values: the bug model
    then passes a case this calls triggered (:func:`trailing_pages_wild` says when that can be).
    """
    num_pages = case.arrays["k_cache"].shape[0]
    v_cache = case.arrays["v_cache"]
    for _, pages, offsets in trailing_page_reads(case):
        wild = (pages < 0) | (pages >= num_pages)
        if wild.any() or not np.isfinite(v_cache[pages, offsets]).all():
            return True
    return False


# Models the inclusive/exclusive sliding-window confusion (FA window_size=(W-1, 0), FlashInfer
# window_left=W-1, SGLang passing config.sliding_window - 1). The smallest case: one request,
# one head, D = 1, L = 2 positions on pages 0 and 1 (page_size 1), W = 1: the contract attends
# position 1 (o = v1 = 1), the bug positions 0 and 1 with equal weight (k = 0: o = 0.5).
# Size (B, Hq, Hkv, sum L, D, page_size, num_pages, max_pages, window on, W, nonzero garbage)
# = (1, 1, 1, 2, 1, 1, 2, 2, 1, 1, 0). On the H200 (2026-12-01) the fuzzer shrank to the same
# but num_pages 3 (relayout kept page 0 as a NaN page); drop_unnamed_pages now removes it.
PAGED_DECODE_WINDOW_OFF_BY_ONE = BugModel(
    target="paged_decode",
    kernel="bug-window-off-by-one",
    reached=window_reached,
    triggered=window_triggered,
    minimum_case=paged_case(
        q=[[[1.0]]],
        k_cache=[[[[0.0]]], [[[0.0]]]],
        v_cache=[[[[0.0]]], [[[1.0]]]],
        page_table=[[0, 1]],
        cache_seqlens=[2],
        sliding_window=1,
    ),
)


# Models sglang-trtllm-mha-page-table-oob (pyc96/sglang#3): trtllm decode read page_table
# entries past a request's pages (garbage from req_to_token) and hit an illegal memory access.
# The smallest case: one request, one head, D = 1, L = 1 on page 0 of a 1-page cache,
# page_size 1, a second column holding the wild id 2**31 - 1: the bug loads its K/V, outside
# the cache (crash:out-of-bounds-load under the interpreter, an illegal address on a GPU).
# Size (1, 1, 1, 1, 1, 1, 1, 2, 0, 0, 1): one garbage column is the least the bug reads, and
# with one page it must be outside the cache; the fuzzer's divergence shrank to (..., 2, 2, 0,
# 0, 0), garbage 0 naming a NaN page 0 (tests/targets/paged_decode/test_paged_decode_campaign.py).
PAGED_DECODE_TRAILING_PAGES = BugModel(
    target="paged_decode",
    kernel="bug-trailing-pages",
    reached=trailing_pages_reached,
    triggered=trailing_pages_triggered,
    minimum_case=paged_case(
        q=[[[1.0]]],
        k_cache=[[[[0.5]]]],
        v_cache=[[[[1.0]]]],
        page_table=[[0, 2**31 - 1]],
        cache_seqlens=[1],
    ),
)


BUG_MODELS: tuple[BugModel, ...] = (
    PAGED_DECODE_WINDOW_OFF_BY_ONE,
    PAGED_DECODE_TRAILING_PAGES,
)
