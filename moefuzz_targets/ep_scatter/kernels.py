"""moefuzz's own Triton ep_scatter, and the bug model of LightLLM's stale start-offset read.

Mirrors LightLLM ``lightllm/common/fused_moe/deepep_scatter_gather.py`` ``ep_scatter``, two
launches::

    _expert_start_kernel  grid (E,)           program e: start_e = exclusive prefix of the aligned
                                              counts; expert_start_loc[e] = start_e; m_indices = e
                                              on the a_e rows of e's segment
    _scatter_rows_kernel  grid (cdiv(N, 16),) per block of 16 tokens: each item (t, k) takes row
                                              atomic_add(expert_start_loc[e], 1); output_index[t, k]
                                              = row; recv_x[t] and its scales copied to the row

Unlike upstream, the hidden size and the scale columns are runtime loops over 128- and 16-wide
tiles (upstream makes H a constexpr: one compile per model), every row offset is int64, and the
second launch takes a block of tokens with all their top-k slots at once. Sizes are not
specialized (``do_not_specialize``): Triton would otherwise compile one variant per size that is 1,
a multiple of 16 or neither, for each size argument. Compiled variants per num_warps: the prefix
kernel for EXPERTS_BLOCK in {256, 512, 1024} with and without the bug flag, and the row kernel for
bf16 and fp8 rows: 8 in all.

The contract is in ``contract.py``. Inputs and outputs (``ctx.inputs`` / ``ctx.outputs``)::

    recv_x                      [N, H] float32 -> bf16 or float8_e4m3fn on the device
    recv_x_scale                [N, S] float32
    recv_topk                   [N, K] int32
    num_recv_tokens_per_expert  [E] int32
    output_tensor               [M, H] float32 <- written in the device dtype, then widened
    output_tensor_scale         [M, S] float32
    m_indices                   [M] int32
    output_index                [N, K] int32
    expert_start_loc            [E] int32

Importing this module imports triton: set ``TRITON_INTERPRET=1`` first to run on the CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl

from moefuzz_targets.shared.triton_helpers import num_warps

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext
from moefuzz_targets.ep_scatter.oracle import device_dtype

#: Rows of m_indices per store: upstream's BLOCK_E, DeepEP's alignment.
BLOCK_M = 128
#: Tokens per program of the row scatter; with all 8 top-k slots, 128 items per program.
BLOCK_T = 16
#: Top-k slots per program: every K <= 8 in one compile (masked past K).
BLOCK_K = 8
#: Hidden columns per copy step (one fp8 quantization group).
BLOCK_D = 128
#: Scale columns per copy step (H = 2048 has 16 scales).
BLOCK_S = 16
#: Most local experts: the prefix sum holds them in one block of at most this many.
MAX_EXPERTS = 1024
#: num_warps of both launches when ``ctx.config`` names none: upstream's 8, which spreads
#: E = 256 experts over 8 warps of 32 (the layout of the LightLLM report).
DEFAULT_NUM_WARPS = 8


@triton.jit(do_not_specialize=["num_experts"])
def _expert_start_kernel(
    counts_ptr,
    expert_start_loc_ptr,
    m_indices_ptr,
    num_experts,
    EXPERTS_BLOCK: tl.constexpr,
    BLOCK_M: tl.constexpr,
    STALE_START_LOC: tl.constexpr,
):
    """Program e: expert_start_loc[e] = start_e and m_indices[start_e : start_e + a_e] = e.

    Every program computes the whole exclusive prefix of the aligned counts in registers. The
    correct kernel takes its own start from those registers. With ``STALE_START_LOC`` it does
    what upstream does: store the whole prefix vector to expert_start_loc and load its own entry
    back from global memory, with no barrier in between, so on a GPU a warp may read the slot
    before the warp that stores it has (the buffer's old contents). The Triton interpreter runs
    a program's operations one after the other, so there it reads the right value.
    """
    expert = tl.program_id(0)
    offs = tl.arange(0, EXPERTS_BLOCK)
    counts = tl.load(counts_ptr + offs, mask=offs < num_experts, other=0)
    starts = tl.cumsum(counts, axis=0) - counts
    if STALE_START_LOC:
        tl.store(expert_start_loc_ptr + offs, starts, mask=offs < num_experts)
        start = tl.load(expert_start_loc_ptr + expert)
    else:
        start = tl.sum(tl.where(offs == expert, starts, 0), axis=0)
        tl.store(expert_start_loc_ptr + expert, start)
    count = tl.load(counts_ptr + expert)
    rows = tl.arange(0, BLOCK_M)
    for m0 in range(0, count, BLOCK_M):
        tl.store(m_indices_ptr + start.to(tl.int64) + m0 + rows, expert, mask=m0 + rows < count)


@triton.jit(do_not_specialize=["num_tokens", "topk", "hidden", "scale_cols"])
def _scatter_rows_kernel(
    recv_x_ptr,
    recv_x_scale_ptr,
    recv_topk_ptr,
    expert_start_loc_ptr,
    output_ptr,
    output_scale_ptr,
    output_index_ptr,
    num_tokens,
    topk,
    hidden,
    scale_cols,
    BLOCK_T: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    """Tokens [t0, t0 + BLOCK_T): each item takes the next row of its expert's segment by an
    atomic increment of expert_start_loc, records it in output_index and copies its token's row
    and scales there. Items of -1 slots (and of slots past K or tokens past N) do nothing."""
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    k = tl.arange(0, BLOCK_K)
    slot = t[:, None] * topk + k[None, :]  # [BLOCK_T, BLOCK_K]
    in_range = (t < num_tokens)[:, None] & (k < topk)[None, :]
    expert = tl.load(recv_topk_ptr + slot, mask=in_range, other=-1)
    item = in_range & (expert >= 0)
    row = tl.atomic_add(expert_start_loc_ptr + expert, 1, mask=item)
    tl.store(output_index_ptr + slot, row, mask=item)
    row = tl.where(item, row, 0).to(tl.int64)[:, :, None]  # [BLOCK_T, BLOCK_K, 1]
    token = t.to(tl.int64)[:, None]  # [BLOCK_T, 1]
    for d0 in range(0, hidden, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        x = tl.load(recv_x_ptr + token * hidden + d[None, :], mask=(t < num_tokens)[:, None] & (d < hidden)[None, :])
        mask = item[:, :, None] & (d < hidden)[None, None, :]
        tl.store(output_ptr + row * hidden + d[None, None, :], tl.broadcast_to(x[:, None, :], mask.shape), mask=mask)
    for s0 in range(0, scale_cols, BLOCK_S):
        s = s0 + tl.arange(0, BLOCK_S)
        x = tl.load(
            recv_x_scale_ptr + token * scale_cols + s[None, :],
            mask=(t < num_tokens)[:, None] & (s < scale_cols)[None, :],
        )
        mask = item[:, :, None] & (s < scale_cols)[None, None, :]
        tl.store(
            output_scale_ptr + row * scale_cols + s[None, None, :],
            tl.broadcast_to(x[:, None, :], mask.shape),
            mask=mask,
        )


def _nonempty(ctx: LaunchContext, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``, or a one-entry scratch of its dtype where it has no entries (a 0-entry CUDA
    tensor may have a null data pointer, which Triton refuses; the kernel never touches it)."""
    return tensor if tensor.numel() else ctx.scratch((1,), tensor.dtype)


#: The prefix block of the ``bug-wide-local-experts`` model: experts past it are not in the sum.
NARROW_EXPERTS_BLOCK = 512


def _launch(ctx: LaunchContext, stale_start_loc: bool, experts_block_cap: int = MAX_EXPERTS) -> None:
    counts = ctx.inputs["num_recv_tokens_per_expert"].contiguous()
    recv_topk = ctx.inputs["recv_topk"].contiguous()
    num_tokens, topk = recv_topk.shape
    num_experts = counts.shape[0]
    if not 1 <= topk <= BLOCK_K or not 1 <= num_experts <= MAX_EXPERTS:
        raise ValueError(f"ep_scatter kernels take K <= 8 and 1 <= E <= 1024, got (K, E)={(topk, num_experts)!r}")
    out = ctx.outputs
    dtype = device_dtype(ctx.params["dtype"])
    recv_x = ctx.inputs["recv_x"].to(dtype).contiguous()
    recv_x_scale = ctx.inputs["recv_x_scale"].contiguous()
    hidden, scale_cols = recv_x.shape[1], recv_x_scale.shape[1]
    output = ctx.scratch(tuple(out["output_tensor"].shape), dtype)
    warps = num_warps(ctx, DEFAULT_NUM_WARPS)
    _expert_start_kernel[(num_experts,)](
        counts,
        out["expert_start_loc"],
        _nonempty(ctx, out["m_indices"]),
        num_experts,
        EXPERTS_BLOCK=min(experts_block_cap, max(256, triton.next_power_of_2(num_experts))),
        BLOCK_M=BLOCK_M,
        STALE_START_LOC=stale_start_loc,
        num_warps=warps,
    )
    if num_tokens:
        _scatter_rows_kernel[(triton.cdiv(num_tokens, BLOCK_T),)](
            _nonempty(ctx, recv_x),
            _nonempty(ctx, recv_x_scale),
            recv_topk,
            out["expert_start_loc"],
            _nonempty(ctx, output),
            _nonempty(ctx, out["output_tensor_scale"]),
            out["output_index"],
            num_tokens,
            topk,
            hidden,
            scale_cols,
            BLOCK_T=BLOCK_T,
            BLOCK_K=BLOCK_K,
            BLOCK_D=BLOCK_D,
            BLOCK_S=BLOCK_S,
            num_warps=warps,
        )
    out["output_tensor"].copy_(output)


def ep_scatter_triton(ctx: LaunchContext) -> None:
    """moefuzz's correct ep_scatter: writes every specified entry of ``ctx.outputs``.

    Reads ``recv_x`` [N, H] float32 (cast to the device dtype of ``ctx.params["dtype"]``),
    ``recv_x_scale`` [N, S] float32, ``recv_topk`` [N, K] int32 and
    ``num_recv_tokens_per_expert`` [E] int32; honours ``ctx.config["num_warps"]`` for the prefix
    and the row launch.

    Raises:
        ValueError: K outside 1..8 or E outside 1..1024, which the kernels cannot hold (the other
            preconditions are ``contract.check``'s).
    """
    _launch(ctx, stale_start_loc=False)


def ep_scatter_bug_stale_start_loc(ctx: LaunchContext) -> None:
    """Bug model of the LightLLM ``_fwd_kernel_ep_scatter_1`` stale read (alibaba/rtp-llm#1098):
    each program stores the prefix vector to expert_start_loc and reads its own start back from
    global memory in the same program. A race between warps: only a GPU can show it (a stale
    start sends m_indices and the rows to a wild address); under the Triton interpreter it
    computes the right answer.

    Same arguments and errors as :func:`ep_scatter_triton`.
    """
    _launch(ctx, stale_start_loc=True)


def ep_scatter_bug_wide_local_experts(ctx: LaunchContext) -> None:
    """Bug model of a prefix block sized for at most 512 local experts: with E local > 512 the
    experts from 512 on fall outside the block, their start reads as 0, and their m_indices and
    rows land on expert 0's segment (a divergence on every device; right for E <= 512).

    Same arguments and errors as :func:`ep_scatter_triton`.
    """
    _launch(ctx, stale_start_loc=False, experts_block_cap=NARROW_EXPERTS_BLOCK)
