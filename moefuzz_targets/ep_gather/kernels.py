"""moefuzz's own Triton ep_gather, and the bug model that gathers the -1 slots too.

Mirrors LightLLM ``lightllm/common/fused_moe/deepep_scatter_gather.py`` ``_fwd_kernel_ep_gather``::

    _gather_kernel  grid (cdiv(N, 64), cdiv(H, 128))  tokens [t0, t0 + 64), columns [d0, d0 + 128):
                    acc = 0 (fp32); for k < K: if recv_topk[t, k] >= 0:
                        acc += weight[t, k] * input_tensor[input_index[t, k], d]
                    output_tensor[t, d] = bf16(acc)

Unlike upstream (one token per program, H a multiple of its 512-wide block, asserted), columns
are masked so any H works, a program takes 64 tokens, row offsets are int64, and a row is read
only if it lies in [0, M): a bounds mask upstream does not have. For the correct kernel it never
masks anything (valid slots point inside, by the contract); for the bug model it keeps the reads
of an unwritten index (-1, poison) inside input_tensor, so the bug shows as a wrong sum instead of
a read of whatever memory precedes the buffer. Sizes are not specialized (``do_not_specialize``),
so the kernel compiles twice per num_warps: correct and bug model.

The contract is in ``contract.py``. Inputs and outputs (``ctx.inputs`` / ``ctx.outputs``)::

    input_tensor      [M, H] float32 -> bf16 on the device
    recv_topk         [N, K] int32
    recv_topk_weight  [N, K] float32
    input_index       [N, K] int32
    output_tensor     [N, H] float32 <- written in bf16, then widened

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

#: Tokens per program.
BLOCK_T = 64
#: Hidden columns per program.
BLOCK_D = 128
#: Largest top-k.
MAX_TOPK = 8


@triton.jit(do_not_specialize=["num_tokens", "topk", "hidden", "num_rows"])
def _gather_kernel(
    input_ptr,
    recv_topk_ptr,
    weight_ptr,
    input_index_ptr,
    output_ptr,
    num_tokens,
    topk,
    hidden,
    num_rows,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
    GATHER_MINUS_ONE: tl.constexpr,
):
    """Tokens [t0, t0 + BLOCK_T) x columns [d0, d0 + BLOCK_D): the weighted sum over the valid
    slots, in fp32 and k order, stored as bf16. With ``GATHER_MINUS_ONE`` the ``>= 0`` test on
    recv_topk is gone: a -1 slot is summed through whatever its input_index holds."""
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    token = t < num_tokens
    column = d < hidden
    acc = tl.zeros([BLOCK_T, BLOCK_D], dtype=tl.float32)
    for k in range(0, topk):
        expert = tl.load(recv_topk_ptr + t * topk + k, mask=token, other=-1)
        take = token & (expert >= 0)
        if GATHER_MINUS_ONE:
            take = token
        row = tl.load(input_index_ptr + t * topk + k, mask=take, other=0)
        take = take & (row >= 0) & (row < num_rows)
        weight = tl.load(weight_ptr + t * topk + k, mask=take, other=0.0)
        x = tl.load(
            input_ptr + row.to(tl.int64)[:, None] * hidden + d[None, :], mask=take[:, None] & column[None, :], other=0.0
        )
        acc += tl.where(take[:, None], x.to(tl.float32) * weight[:, None], 0.0)
    out = output_ptr + t.to(tl.int64)[:, None] * hidden + d[None, :]
    tl.store(out, acc.to(output_ptr.dtype.element_ty), mask=token[:, None] & column[None, :])


def _launch(ctx: LaunchContext, gather_minus_one: bool) -> None:
    recv_topk = ctx.inputs["recv_topk"].contiguous()
    num_tokens, topk = recv_topk.shape
    if not 1 <= topk <= MAX_TOPK:
        raise ValueError(f"ep_gather kernel takes K <= 8, got K={topk!r}")
    values = ctx.inputs["input_tensor"].to(torch.bfloat16).contiguous()
    num_rows, hidden = values.shape
    output = ctx.scratch((num_tokens, hidden), torch.bfloat16)
    if num_tokens:
        _gather_kernel[(triton.cdiv(num_tokens, BLOCK_T), triton.cdiv(hidden, BLOCK_D))](
            values if num_rows else ctx.scratch((1,), torch.bfloat16),
            recv_topk,
            ctx.inputs["recv_topk_weight"].contiguous(),
            ctx.inputs["input_index"].contiguous(),
            output,
            num_tokens,
            topk,
            hidden,
            num_rows,
            BLOCK_T=BLOCK_T,
            BLOCK_D=BLOCK_D,
            GATHER_MINUS_ONE=gather_minus_one,
            num_warps=num_warps(ctx),
        )
    ctx.outputs["output_tensor"].copy_(output)


def ep_gather_triton(ctx: LaunchContext) -> None:
    """moefuzz's correct ep_gather: writes every entry of ``ctx.outputs["output_tensor"]``.

    Reads ``input_tensor`` [M, H] float32 (cast to bf16), ``recv_topk``, ``recv_topk_weight``
    and ``input_index`` [N, K]; honours ``ctx.config["num_warps"]``.

    Raises:
        ValueError: K outside 1..8 (the other preconditions are ``contract.check``'s).
    """
    _launch(ctx, gather_minus_one=False)


def ep_gather_bug_minus_one_slot(ctx: LaunchContext) -> None:
    """Bug model: the -1 slots of recv_topk are not skipped. Each is summed as
    weight[t, k] * input_tensor[input_index[t, k]] through an index the scatter never wrote (a
    stale row of an earlier layer, say), as vLLM's unguarded ``apply_expert_map`` let a -1 reach
    the gather (see ``contract.py``). Right whenever every -1 slot's index is out of range, or
    its weight and row make a zero term.

    Same arguments and errors as :func:`ep_gather_triton`.
    """
    _launch(ctx, gather_minus_one=True)
