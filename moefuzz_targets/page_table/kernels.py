"""moefuzz's own Triton decode page table, and the two bug models of its SWA / trailing handling.

Mirrors SGLang's device-side page-table build of the trtllm_mha / FA3 backends (strided
``req_to_token`` columns ``// page_size``, SWA translation of token locations) and FlashInfer's
``create_flashinfer_kv_indices_triton`` (``attention/utils.py``), in three launches::

    1  _page_table_kernel  grid (B, NB)  request i, pages j of block b: j in [first, num) reads
                                         slot = req_to_token[row, j * page_size], translates it
                                         (SWA), divides; every other j < max_pages gets page 0
    2  _kv_indptr_kernel   grid (1,)     kv_indptr = exclusive prefix sum of num - first, over
                                         blocks of BLOCK_BATCH requests
    3  _kv_indices_kernel  grid (B, NB)  kv_indices[kv_indptr[i] + k] = page_table[i, first + k]

A program never reads back what it wrote; each launch reads what earlier launches wrote. Compiled
variants per num_warps: step 1 per (HAS_SWA, TRAILING_ENTRIES, TRANSLATE_PAGE_IDS) used, steps 2
and 3 per HAS_SWA; sizes and page_size are not specialised (``do_not_specialize``). The contract
is in ``contract.py``. Inputs and outputs (``ctx.inputs`` / ``ctx.outputs``)::

    req_to_token               [num_reqs_in_pool, max_context] int32
    req_pool_indices           [B] int64
    seq_lens                   [B] int64
    full_to_swa_index_mapping  [num_pages * page_size] int64   (sliding-window layers only)
    page_table                 [B, max_pages] int32
    kv_indptr                  [B + 1] int32
    kv_indices                 [kv_indptr[-1]] int32

Importing this module imports triton: set ``TRITON_INTERPRET=1`` first to run on the CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import triton
import triton.language as tl

from moefuzz_targets.shared.triton_helpers import num_warps

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext


#: Pages per program in steps 1 and 3: 256 int32 ids are 2 a thread at 4 warps on the GPU, and
#: a 2048-page row of the interpreter's largest cases takes 8 programs instead of 16 at 128.
BLOCK_PAGES = 256
#: Requests per step of step 2's running prefix sum.
BLOCK_BATCH = 128


@triton.jit
def _table_span(seq_len, page_size, sliding_window, HAS_SWA: tl.constexpr):
    """``(first, num)`` of a request: its first page in the table and its page count (int64)."""
    num = (seq_len + page_size - 1) // page_size
    if HAS_SWA:
        first = tl.maximum(seq_len - sliding_window, 0) // page_size
    else:
        first = num * 0
    return first, num


@triton.jit(do_not_specialize=("row_stride", "page_size", "max_pages", "sliding_window"))
def _page_table_kernel(
    req_to_token_ptr,
    req_pool_indices_ptr,
    seq_lens_ptr,
    mapping_ptr,
    page_table_ptr,
    row_stride,
    page_size,
    max_pages,
    sliding_window,
    BLOCK: tl.constexpr,
    HAS_SWA: tl.constexpr,
    TRAILING_ENTRIES: tl.constexpr,
    TRANSLATE_PAGE_IDS: tl.constexpr,
):
    """Step 1, program (i, b): page_table[i, j] for the BLOCK pages j of block b.

    ``TRAILING_ENTRIES`` also translates the cells past the request's pages (the bug model of
    sglang-trtllm-mha-page-table-oob); ``TRANSLATE_PAGE_IDS`` looks the page id up in the SWA
    mapping instead of the token location (the bug sglang#16267 fixed).
    """
    request = tl.program_id(0).to(tl.int64)
    page = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    seq_len = tl.load(seq_lens_ptr + request)
    row = tl.load(req_pool_indices_ptr + request)
    first, num = _table_span(seq_len, page_size, sliding_window, HAS_SWA)
    in_width = page < max_pages
    if TRAILING_ENTRIES:
        live = in_width & (page >= first)
    else:
        live = in_width & (page >= first) & (page < num)
    column = page.to(tl.int64) * page_size
    slot = tl.load(req_to_token_ptr + row * row_stride + column, mask=live, other=0).to(tl.int64)
    if HAS_SWA:
        if TRANSLATE_PAGE_IDS:
            ids = tl.load(mapping_ptr + slot // page_size, mask=live, other=0)
        else:
            ids = tl.load(mapping_ptr + slot, mask=live, other=0) // page_size
    else:
        ids = slot // page_size
    tl.store(page_table_ptr + request * max_pages + page, tl.where(live, ids, 0).to(tl.int32), mask=in_width)


@triton.jit(do_not_specialize=("batch", "page_size", "sliding_window"))
def _kv_indptr_kernel(
    seq_lens_ptr,
    kv_indptr_ptr,
    batch,
    page_size,
    sliding_window,
    BLOCK_B: tl.constexpr,
    HAS_SWA: tl.constexpr,
):
    """Step 2, one program: kv_indptr [B + 1], the running sum of each request's table pages."""
    offs = tl.arange(0, BLOCK_B)
    done = tl.sum(tl.zeros([BLOCK_B], tl.int64), axis=0)  # pages of the requests so far
    tl.store(kv_indptr_ptr, done.to(tl.int32))
    for b0 in range(0, batch, BLOCK_B):
        requests = b0 + offs
        mask = requests < batch
        seq_len = tl.load(seq_lens_ptr + requests, mask=mask, other=0)
        first, num = _table_span(seq_len, page_size, sliding_window, HAS_SWA)
        count = tl.where(mask, num - first, 0)
        tl.store(kv_indptr_ptr + requests + 1, (done + tl.cumsum(count, axis=0)).to(tl.int32), mask=mask)
        done += tl.sum(count, axis=0)


@triton.jit(do_not_specialize=("page_size", "max_pages", "sliding_window"))
def _kv_indices_kernel(
    seq_lens_ptr,
    page_table_ptr,
    kv_indptr_ptr,
    kv_indices_ptr,
    page_size,
    max_pages,
    sliding_window,
    BLOCK: tl.constexpr,
    HAS_SWA: tl.constexpr,
):
    """Step 3, program (i, b): request i's table pages first + k, k in block b, flattened."""
    request = tl.program_id(0).to(tl.int64)
    k = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    seq_len = tl.load(seq_lens_ptr + request)
    first, num = _table_span(seq_len, page_size, sliding_window, HAS_SWA)
    mask = k < num - first
    start = tl.load(kv_indptr_ptr + request).to(tl.int64)
    ids = tl.load(page_table_ptr + request * max_pages + first + k, mask=mask, other=0)
    tl.store(kv_indices_ptr + start + k, ids, mask=mask)


def _launch(ctx: LaunchContext, trailing_entries: bool = False, translate_page_ids: bool = False) -> None:
    req_to_token = ctx.inputs["req_to_token"].contiguous()
    req_pool_indices = ctx.inputs["req_pool_indices"].contiguous()
    seq_lens = ctx.inputs["seq_lens"].contiguous()
    mapping = ctx.inputs.get("full_to_swa_index_mapping")
    has_swa = mapping is not None
    out = ctx.outputs
    page_size = int(ctx.params["page_size"])
    max_pages = int(ctx.params["max_pages"])
    sliding_window = int(ctx.params["sliding_window"])
    batch = seq_lens.shape[0]
    if tuple(out["page_table"].shape) != (batch, max_pages):
        raise ValueError(
            f"page_table kernels write a [B, max_pages] table, got page_table shape="
            f"{tuple(out['page_table'].shape)!r} for (B, max_pages)={(batch, max_pages)!r}"
        )
    warps = num_warps(ctx)
    if batch == 0:
        out["kv_indptr"].zero_()
        return
    blocks = triton.cdiv(max_pages, BLOCK_PAGES)
    if blocks:
        _page_table_kernel[(batch, blocks)](
            req_to_token,
            req_pool_indices,
            seq_lens,
            seq_lens if mapping is None else mapping.contiguous(),  # never read without a window
            out["page_table"],
            req_to_token.stride(0),
            page_size,
            max_pages,
            sliding_window,
            BLOCK=BLOCK_PAGES,
            HAS_SWA=has_swa,
            TRAILING_ENTRIES=trailing_entries,
            TRANSLATE_PAGE_IDS=translate_page_ids,
            num_warps=warps,
        )
    _kv_indptr_kernel[(1,)](
        seq_lens,
        out["kv_indptr"],
        batch,
        page_size,
        sliding_window,
        BLOCK_B=BLOCK_BATCH,
        HAS_SWA=has_swa,
        num_warps=warps,
    )
    if blocks and out["kv_indices"].numel():
        _kv_indices_kernel[(batch, blocks)](
            seq_lens,
            out["page_table"],
            out["kv_indptr"],
            out["kv_indices"],
            page_size,
            max_pages,
            sliding_window,
            BLOCK=BLOCK_PAGES,
            HAS_SWA=has_swa,
            num_warps=warps,
        )


def page_table_triton(ctx: LaunchContext) -> None:
    """moefuzz's correct page table: writes every entry of ``ctx.outputs``.

    Reads ``req_to_token`` [num_reqs_in_pool, max_context] int32, ``req_pool_indices`` [B]
    int64, ``seq_lens`` [B] int64, ``full_to_swa_index_mapping`` [num_pages * page_size] int64
    when present, and the params ``page_size``, ``max_pages`` and ``sliding_window``. Reads only
    the cells of a request's table pages (never the garbage past seq_len) and translates token
    locations before dividing. Honours ``ctx.config["num_warps"]``.

    Raises:
        ValueError: an output ``page_table`` not [B, max_pages] (the other preconditions are
            ``contract.check``'s).
    """
    _launch(ctx)


def page_table_bug_trailing_entries(ctx: LaunchContext) -> None:
    """Bug model of sglang-trtllm-mha-page-table-oob (pyc96/sglang#3's triage of trtllm_mha +
    hybrid SWA): every column j < max_pages of the request's row is read and translated, the
    cells past seq_len included, and stored instead of the safe page 0. Those cells hold garbage
    (stale slots, zeros, wild ints): a stale slot gives a wrong page, a wild one an id outside the
    pool, and on a sliding-window layer a wild slot is an index far outside
    ``full_to_swa_index_mapping`` (an illegal memory access on a GPU; in the interpreter a read of
    whatever lies there, or a segfault of the worker). Correct when every request fills the
    table's width or its trailing cells hold slots of page 0.

    Same arguments and errors as :func:`page_table_triton`.
    """
    _launch(ctx, trailing_entries=True)


def page_table_bug_translate_page_ids(ctx: LaunchContext) -> None:
    """Bug model of what sglang#16267 fixed: on a sliding-window layer the page id is translated
    (``full_to_swa_index_mapping[slot // page_size]``, taken as the SWA page) instead of the token
    location (``full_to_swa_index_mapping[slot] // page_size``). Identical when page_size == 1,
    and on full-attention layers.

    Same arguments and errors as :func:`page_table_triton`.
    """
    _launch(ctx, translate_page_ids=True)
