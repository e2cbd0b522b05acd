"""Ground truth of the paging targets' bug models: where each bug lives and when it fires.

Seven models over four targets, each predicate derived from the line of the bug kernel that
differs from the correct one (``moefuzz_targets/<target>/kernels.py``)::

    alloc_extend    bug-page-past-capacity     decode kernel, _room_on_last_page(FULL_PAGE_BUG)
    page_table      bug-trailing-entries       _page_table_kernel, live = in_width & (page >= first)
                    bug-translate-page-ids     _page_table_kernel, mapping[slot // page_size]
    paged_decode    bug-window-off-by-one      window_start = L - W - 1
                    bug-trailing-pages         read = column < max_pages
    stream_overlap  bug-missing-wait-forward   no write.wait(forward_done(b))     (a GPU race)
                    bug-missing-wait-write     no forward.wait(copy_done(b - 1))  (a GPU race)

Predicates are numpy on ``case.arrays`` / ``case.params`` and assume a case that passes the
target's ``check``. Integer division in a Triton kernel truncates towards zero (C semantics, in
the interpreter too: ``create_idiv``); where a kernel divides a value that may be negative the
predicates do the same (:func:`_trunc_div`).

Where data can mask a bug (a read outside every buffer that lands inside another one, an extra
softmax key whose value changes ``o`` by less than the tolerance) the predicate's docstring says
so: ``triggered`` then errs on the side of True, and only "failed implies triggered" is exact.
Each ``minimum_case`` is the smallest failing case by the target's ``size`` among SGLang's
states: page 0 of its KV cache and of its SWA pool is reserved, never owned (alloc_extend's
``check`` enforces it; page_table's does not, but its strategy and shrink passes keep page 0
reserved, so a smaller case on page 0 is no reproducer the fuzzer could shrink to). paged_decode
follows FlashInfer's and FA3's page tables, where page 0 is a page like any other.
"""

from __future__ import annotations

import numpy as np

from benchmarks.bug_models import BugModel
from moefuzz.model.case import Case
from moefuzz_targets.alloc_extend.strategy import allocation_case
from moefuzz_targets.page_table.strategy import table_case
from moefuzz_targets.paged_decode.strategy import paged_case

#: Positions per loop step of the paged decode kernel (``moefuzz_targets.paged_decode.kernels.BLOCK_N``,
#: restated so that these predicates import no triton; ``tests/test_bug_models_paging.py`` pins
#: the two equal).
DECODE_BLOCK_N = 64
#: Launches per case the stream races need (``--perturb 8``: docs/gpu-races.md found both models
#: with it, 10 of 10 and 9 of 10 seeds).
RACE_PERTURB = 8


def _trunc_div(values: np.ndarray, divisor: int) -> np.ndarray:
    """int64 ``values / divisor`` truncated towards zero, as a Triton kernel's ``//`` does."""
    values = np.asarray(values, dtype=np.int64)
    return np.where(values >= 0, values // divisor, -(-values // divisor))


# -- alloc_extend ---------------------------------------------------------------------------
def decode_batch(case: Case) -> bool:
    """The launcher takes the decode kernel: B >= 1 and ``seq_lens[i] - prefix_lens[i] == 1``
    for every request (``kernels._launch``: ``decode = ((seq_lens - prefix_lens) == 1).all()``,
    after the early return of an empty output)."""
    extend = case.arrays["seq_lens"] - case.arrays["prefix_lens"]
    return bool(extend.size) and bool((extend == 1).all())


def full_page_requests(case: Case) -> np.ndarray:
    """[B] bool: decode requests whose bug-model slot differs from the contract's.

    With ``prefix = prefix_lens``, ``Z = page_size``, ``k_i = #{j < i : prefix_j % Z == 0}`` (the
    decode kernel's ``index``: exclusive cumsum of ``takes_page``, which the bug leaves alone)::

        prefix_i > 0  and  prefix_i % Z == 0  and  free_pages[k_i] != last_loc_i // Z + 1

    ``_room_on_last_page(FULL_PAGE_BUG)`` gives ``Z - prefix % Z = Z`` instead of 0 for such a
    prefix, so ``continues`` holds and the slot is ``last_loc + 1 = (last_loc // Z + 1) * Z``
    (last_loc is the last slot of its page), where the contract gives ``free_pages[k_i] * Z``.
    The two agree exactly when the next free page is the page after the last prefix page.
    All False for a batch that is not a decode batch.
    """
    prefix = case.arrays["prefix_lens"]
    if not decode_batch(case):
        return np.zeros(prefix.shape, dtype=bool)
    page_size = int(case.params["page_size"])
    takes_page = prefix % page_size == 0
    index = np.cumsum(takes_page) - takes_page  # < num_free: check refuses a batch short of pages
    full = (prefix > 0) & takes_page
    taken = case.arrays["free_pages"][np.where(full, index, 0)]
    return full & (taken != case.arrays["last_loc"] // page_size + 1)


def alloc_reached(case: Case) -> bool:
    """A decode batch: the bug lives in ``_alloc_decode_kernel`` (:func:`decode_batch`)."""
    return decode_batch(case)


def alloc_triggered(case: Case) -> bool:
    """Some request of :func:`full_page_requests`: a decode request whose prefix ends on a page
    boundary and whose next free page is not the page after its last prefix page. Exact."""
    return bool(full_page_requests(case).any())


# Models the SGLang trtllm_mha page-table report (seed sglang-trtllm-mha-page-table-oob,
# pyc96/sglang#3): an allocator emits page index num_pages, one past the cache. The smallest
# case: one decode request whose 1-token prefix fills page 2, the final page of a 3-page cache
# (page 0 reserved), page_size 1, free list [1]; the bug gives slot 3 = page 3, past num_pages.
# Size (tokens, B, page_size, num_pages, num_free, descents) = (2, 1, 1, 3, 1, 0): two tokens
# (a prefix, so that it can end on a boundary), and a free page that is not page 2 + 1; the
# fuzzer shrank to the same case (docs/gpu-results.md).
ALLOC_PAGE_PAST_CAPACITY = BugModel(
    target="alloc_extend",
    kernel="bug-page-past-capacity",
    reached=alloc_reached,
    triggered=alloc_triggered,
    minimum_case=allocation_case(page_size=1, num_pages=3, prefix_lens=[1], seq_lens=[2], last_loc=[2], free_pages=[1]),
)


# -- page_table -------------------------------------------------------------------------------
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


# -- paged_decode -----------------------------------------------------------------------------
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
# 0, 0), garbage 0 naming a NaN page 0 (tests/test_paged_decode_campaign.py).
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


# -- stream_overlap ---------------------------------------------------------------------------
def forward_copy_reached(case: Case) -> bool:
    """Every schedule (B >= 1): each batch's copy is enqueued on the write stream without
    ``write.wait(forward_done(b))``."""
    return case.arrays["batch_pages"].shape[0] >= 1


def forward_copy_triggered(case: Case) -> bool:
    """Some batch copies a real page (``batch_pages[b, j] >= 0``): its forward writes the first
    ``page_fills[b, j] >= 1`` slots of it, and a copy that runs first reads an older value, 0 or
    an in-progress marker (slot values are unique per batch). A race: it can show, not must."""
    return bool((case.arrays["batch_pages"] >= 0).any())


def copy_forward_reached(case: Case) -> bool:
    """B >= 2: from batch 1 on, a forward is enqueued without ``forward.wait(copy_done(b - 1))``."""
    return case.arrays["batch_pages"].shape[0] >= 2


def copy_forward_triggered(case: Case) -> bool:
    """A real page copied by two batches b < b': forward b' writes its first slots, which copy b
    reads (a copy moves the whole page). Without the fence the forward stream waits for no copy
    at all, so any later forward, not only b + 1, may run before copy b. A race: it can show,
    not must."""
    pages = case.arrays["batch_pages"]
    _, counts = np.unique(pages[pages >= 0], return_counts=True)  # a row lists a page once
    return bool((counts >= 2).any())


def one_slot_schedule(pages: list[list[int]], num_pages: int) -> Case:
    """A copy_engine schedule of pages of one slot of one element, every page filled, no spin."""
    batch_pages = np.asarray(pages, dtype=np.int32)
    return Case(
        {
            "batch_pages": batch_pages,
            "page_fills": (batch_pages >= 0).astype(np.int32),
            "kernel_lengths": np.zeros(batch_pages.shape[0], dtype=np.int32),
        },
        {"num_pages": num_pages, "page_size": 1, "slot_size": 1, "copy_method": "copy_engine"},
    )


# Models SGLang HiCache's write_stream without wait_stream(forward_stream) (sglang#20611, fix 1;
# seed sglang-hicache-stream-race). The smallest schedule: one batch, one page of one slot of
# one element, no spin. Size (B, P, pages copied, page_size, slots written, slot_size, spin
# rounds, pool pages) = (1, 1, 1, 1, 1, 1, 0, 1); the fuzzer (--perturb 8) shrank to the same
# with 11 spin rounds, which widen the window (docs/gpu-races.md).
STREAM_MISSING_WAIT_FORWARD = BugModel(
    target="stream_overlap",
    kernel="bug-missing-wait-forward",
    reached=forward_copy_reached,
    triggered=forward_copy_triggered,
    minimum_case=one_slot_schedule([[0]], num_pages=1),
    race=True,
    perturb=RACE_PERTURB,
)

# Models SGLang's forward_stream without wait_event(last_write_finish_event) (sglang#20611,
# fix 2). The smallest schedule: two batches copying the same page of one slot, no spin: size
# (2, 1, 2, 1, 2, 1, 0, 1); the fuzzer (--perturb 8) shrank to 3 or 4 batches of one page
# (docs/gpu-races.md).
STREAM_MISSING_WAIT_WRITE = BugModel(
    target="stream_overlap",
    kernel="bug-missing-wait-write",
    reached=copy_forward_reached,
    triggered=copy_forward_triggered,
    minimum_case=one_slot_schedule([[0], [0]], num_pages=1),
    race=True,
    perturb=RACE_PERTURB,
)


BUG_MODELS: tuple[BugModel, ...] = (
    ALLOC_PAGE_PAST_CAPACITY,
    PAGE_TABLE_TRAILING_ENTRIES,
    PAGE_TABLE_TRANSLATE_PAGE_IDS,
    PAGED_DECODE_WINDOW_OFF_BY_ONE,
    PAGED_DECODE_TRAILING_PAGES,
    STREAM_MISSING_WAIT_FORWARD,
    STREAM_MISSING_WAIT_WRITE,
)
