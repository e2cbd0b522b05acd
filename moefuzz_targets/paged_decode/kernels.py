"""moefuzz's own Triton paged decode attention, and two bug models of it.

One program per (request i, kv head, chunk of BLOCK_G q heads of its GQA group), grid
(B, Hkv, ceil(G / BLOCK_G)) with G = Hq / Hkv: the group's q heads h = kv_head * G + g share
each K/V tile. A program reads L = cache_seqlens[i], computes the first attended position
``start`` (max(0, L - W) with a window W > 0, else 0) and walks the positions [start, L) in
blocks of :data:`BLOCK_N` with an online softmax (FlashAttention's running max m, running sum l,
rescaled accumulator)::

    pos   = block of positions              [BLOCK_N]
    page  = page_table[i, pos // page_size]  loaded only where start <= pos < L
    k, v  = cache[page, pos % page_size, kv_head, :D]   same mask, 0 elsewhere   [BLOCK_N, D]
    s     = sm_scale * q k^T                -inf where not attended             [BLOCK_G, BLOCK_N]
    m'    = max(m, max s);  acc = acc * exp(m - m') + exp(s - m') v;  l likewise
    o[i, h] = acc / l, or 0 when nothing is attended (L = 0)

Both products are ``tl.dot(..., input_precision="tf32x3")``: three TF32 tensor-core products
that recover fp32 accuracy, where plain TF32 would round the softmax weights to 10 bits (an
error of ~5e-4, above the contract's tolerance). ``"ieee"`` would be exact too, but on a GPU it
lowers a [16, 128] x [128, 64] product to ~131k unrolled FMAs: ptxas then took over 30 s per
compiled variant on an H100 under load, and the campaign called the first launch a hang.
Page ids are widened to int64 before they scale the page stride. Integer sizes and
strides are not specialised (one compiled variant per BLOCK_D, flags and num_warps). Bug models
are constexpr flags of the same kernel, so the correct path is the code they differ from:

- ``bug-window-off-by-one``: start = max(0, L - W - 1), one key too many (the inclusive
  ``window_left = W`` where W - 1 was meant).
- ``bug-trailing-pages``: the page ids of the whole block are loaded and dereferenced wherever
  the row has an entry (j < max_pages), masked only at the softmax: past a request's pages it
  reads garbage page ids (sglang-trtllm-mha-page-table-oob: an illegal memory access on a GPU;
  a NaN read, a stray value or a SIGSEGV under the interpreter).

Inputs and outputs (``ctx.inputs`` / ``ctx.outputs``)::

    q              [B, Hq, D] float32
    k_cache        [num_pages, page_size, Hkv, D] float32
    v_cache        [num_pages, page_size, Hkv, D] float32
    page_table     [B, max_pages] int32
    cache_seqlens  [B] int32
    o              [B, Hq, D] float32

Importing this module imports triton: set ``TRITON_INTERPRET=1`` first to run on the CPU. The
contract is in ``contract.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import triton
import triton.language as tl

from moefuzz_targets.shared.triton_helpers import num_warps

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext


#: q heads a program takes: a GQA group, padded (masked rows) or split over the third grid axis.
#: 16 is tl.dot's least M, the BLOCK_H of SGLang's grouped Triton decode kernel
#: (``decode_attention.py`` ``_fwd_grouped_kernel_stage1``), which shares K/V tiles the same way.
BLOCK_G = 16
#: Positions per step: [64, 128] float32 tiles of k and of v are 64 registers a thread each at
#: 4 warps (no spill on a GPU for D <= 128); under the interpreter a step costs about the same for
#: any size, so fewer steps is faster.
BLOCK_N = 64


@triton.jit(
    do_not_specialize=(
        "sliding_window",
        "page_size",
        "max_pages",
        "group_size",
        "head_dim",
        "stride_q_b",
        "stride_q_h",
        "stride_k_page",
        "stride_k_slot",
        "stride_k_head",
        "stride_pt_b",
        "stride_o_b",
        "stride_o_h",
    )
)
def _paged_decode_kernel(
    q_ptr,
    k_cache_ptr,
    v_cache_ptr,
    page_table_ptr,
    cache_seqlens_ptr,
    o_ptr,
    sm_scale,
    sliding_window,
    page_size,
    max_pages,
    group_size,
    head_dim,
    stride_q_b,
    stride_q_h,
    stride_k_page,
    stride_k_slot,
    stride_k_head,
    stride_pt_b,
    stride_o_b,
    stride_o_h,
    BLOCK_G: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    WINDOW_OFF_BY_ONE: tl.constexpr,
    TRAILING_PAGES: tl.constexpr,
):
    """Program (i, kv head, chunk): o[i, h] ([D] float32) of the module doc for the q heads h
    of the chunk's part of the kv head's group."""
    req = tl.program_id(0)
    kv_head = tl.program_id(1)
    members = tl.program_id(2) * BLOCK_G + tl.arange(0, BLOCK_G)  # [BLOCK_G] places in the group
    head_mask = members < group_size
    heads = kv_head * group_size + members  # q heads h with h // group_size == kv_head
    seq_len = tl.load(cache_seqlens_ptr + req)
    dims = tl.arange(0, BLOCK_D)
    dim_mask = dims < head_dim
    q_tile = req.to(tl.int64) * stride_q_b + heads[:, None] * stride_q_h + dims[None, :]
    q = tl.load(q_ptr + q_tile, mask=head_mask[:, None] & dim_mask[None, :], other=0.0)  # [BLOCK_G, BLOCK_D]

    window_start = seq_len - sliding_window
    if WINDOW_OFF_BY_ONE:
        window_start = window_start - 1
    start = tl.where(sliding_window > 0, tl.maximum(window_start, 0), 0)
    row = page_table_ptr + req.to(tl.int64) * stride_pt_b
    head_offset = kv_head.to(tl.int64) * stride_k_head

    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], tl.float32)
    # Every block from the one holding `start` to the one holding L - 1 has an attended position,
    # so m_i is finite after the first and exp(m_i - m_new) never sees -inf - -inf.
    for block_start in range((start // BLOCK_N) * BLOCK_N, seq_len, BLOCK_N):
        pos = block_start + tl.arange(0, BLOCK_N)
        attended = (pos >= start) & (pos < seq_len)
        column = pos // page_size
        if TRAILING_PAGES:
            read = column < max_pages  # the bug: trusts the whole row, not L
        else:
            read = attended
        page = tl.load(row + column, mask=read, other=0)
        slot = page.to(tl.int64) * stride_k_page + (pos % page_size).to(tl.int64) * stride_k_slot + head_offset
        kv_tile = slot[:, None] + dims[None, :]
        kv_mask = read[:, None] & dim_mask[None, :]
        k = tl.load(k_cache_ptr + kv_tile, mask=kv_mask, other=0.0)  # [BLOCK_N, BLOCK_D]
        s = tl.dot(q, tl.trans(k), input_precision="tf32x3") * sm_scale  # [BLOCK_G, BLOCK_N]
        s = tl.where(attended[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(s - m_new[:, None])
        v = tl.load(v_cache_ptr + kv_tile, mask=kv_mask, other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p, v, input_precision="tf32x3")
        l_i = l_i * alpha + tl.sum(p, axis=1)
        m_i = m_new

    out = tl.where(l_i[:, None] > 0, acc / tl.maximum(l_i, 1e-30)[:, None], 0.0)
    o_tile = req.to(tl.int64) * stride_o_b + heads[:, None] * stride_o_h + dims[None, :]
    tl.store(o_ptr + o_tile, out, mask=head_mask[:, None] & dim_mask[None, :])


def _launch(ctx: LaunchContext, window_off_by_one: bool = False, trailing_pages: bool = False) -> None:
    q = ctx.inputs["q"].contiguous()
    k_cache = ctx.inputs["k_cache"].contiguous()
    v_cache = ctx.inputs["v_cache"].contiguous()
    page_table = ctx.inputs["page_table"].contiguous()
    cache_seqlens = ctx.inputs["cache_seqlens"].contiguous()
    o = ctx.outputs["o"]
    batch, num_q_heads, head_dim = q.shape
    _, page_size, num_kv_heads, _ = k_cache.shape
    if num_kv_heads < 1 or num_q_heads % num_kv_heads or o.shape != q.shape:
        raise ValueError(
            f"paged_decode kernels take Hq a multiple of Hkv and o shaped like q, got "
            f"(Hq, Hkv, o shape)={(num_q_heads, num_kv_heads, tuple(o.shape))!r}"
        )
    if batch == 0:
        return
    group_size = num_q_heads // num_kv_heads
    _paged_decode_kernel[(batch, num_kv_heads, triton.cdiv(group_size, BLOCK_G))](
        q,
        k_cache,
        v_cache,
        page_table,
        cache_seqlens,
        o,
        float(ctx.params["sm_scale"]),
        int(ctx.params["sliding_window"]),
        page_size,
        page_table.shape[1],
        group_size,
        head_dim,
        q.stride(0),
        q.stride(1),
        k_cache.stride(0),
        k_cache.stride(1),
        k_cache.stride(2),
        page_table.stride(0),
        o.stride(0),
        o.stride(1),
        BLOCK_G=BLOCK_G,
        BLOCK_N=BLOCK_N,
        BLOCK_D=max(16, triton.next_power_of_2(head_dim)),
        WINDOW_OFF_BY_ONE=window_off_by_one,
        TRAILING_PAGES=trailing_pages,
        num_warps=num_warps(ctx),
    )


def paged_decode_triton(ctx: LaunchContext) -> None:
    """moefuzz's correct paged decode: writes ``o`` [B, Hq, D] float32 (see the module doc).

    Reads ``q``, ``k_cache``, ``v_cache``, ``page_table``, ``cache_seqlens`` and the params
    ``sliding_window`` and ``sm_scale``; a page_table entry is read only for an attended
    position, so a row's garbage past ceil(L / page_size) never is. Honours
    ``ctx.config["num_warps"]``.

    Raises:
        ValueError: Hq not a multiple of Hkv, or ``o`` not shaped like ``q`` (the other
            preconditions are ``contract.check``'s).
    """
    _launch(ctx)


def paged_decode_bug_window_off_by_one(ctx: LaunchContext) -> None:
    """Bug model of the inclusive/exclusive sliding-window confusion: attends
    [max(0, L - W - 1), L), W + 1 positions, as a kernel handed ``window_left = W`` where the
    contract (FA ``window_size=(W - 1, 0)``, FlashInfer ``window_left = W - 1``) means the last
    W. Correct when there is no window or W >= L.

    Same arguments and errors as :func:`paged_decode_triton`.
    """
    _launch(ctx, window_off_by_one=True)


def paged_decode_bug_trailing_pages(ctx: LaunchContext) -> None:
    """Bug model of sglang-trtllm-mha-page-table-oob: the page ids of a whole block of positions
    are loaded and used wherever the page_table row has a column, not only below L; the garbage
    past a request's pages is dereferenced (K/V read there, masked only at the softmax, where
    0 * NaN still poisons o). A wild id reads outside k_cache: an illegal memory access on a GPU.
    Correct when no block reaches a column past ceil(L / page_size).

    Same arguments and errors as :func:`paged_decode_triton`.
    """
    _launch(ctx, trailing_pages=True)
