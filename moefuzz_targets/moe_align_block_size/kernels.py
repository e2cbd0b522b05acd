"""moefuzz's own Triton moe_align_block_size, and the bug model of the unguarded -1 id.

Mirrors the structure of vLLM ``csrc/moe/moe_align_sum_kernels.cu`` (count per expert, scan the
padded counts, place each item with an atomic cursor) in three launches::

    1  _count_kernel    grid (NB,)  fill sorted_token_ids with numel (strided over programs);
                                    histogram of the program's BLOCK items -> atomic add to counts
    2  _scan_kernel     grid (1,)   cursor[e] = start of e's segment, block_end[e] = its end in
                                    blocks, num_tokens_post_padded = the padded total
    3  _scatter_kernel  grid (NB,)  slot = atomic_add(cursor[e], 1); sorted_token_ids[slot] = i;
                                    expert_ids[j] = the e whose blocks hold j (binary search), -1
                                    past the end (strided over programs)

A buffer one launch writes is read only by a later launch; inside a launch, programs meet only
through atomics. Items of one expert land in atomic order, which the contract leaves free.

The contract is in ``contract.py``. Inputs and outputs (``ctx.inputs`` / ``ctx.outputs``)::

    topk_ids                [M, K] int32
    expert_map              [E] int32 (optional)
    sorted_token_ids        [max_num_tokens_padded] int32
    expert_ids              [cdiv(max_num_tokens_padded, B)] int32
    num_tokens_post_padded  [1] int32

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

#: Items per program (launches 1 and 3), and sorted_token_ids / expert_ids entries per fill step.
BLOCK = 1024
#: Histogram bins: one per expert for every E <= 1024, bin NUM_BINS - 1 for skipped items. A fixed
#: count, since each distinct constexpr is a compile; compiled variants per num_warps: launches 1
#: and 3 with and without a map (and the bug flag for the bug model), plus launch 2. Size
#: arguments are ``do_not_specialize``: Triton would otherwise compile a variant for each of
#: == 1, % 16 == 0 and neither, per argument.
NUM_BINS = 2048
LOG2_BINS = 11


@triton.jit
def _experts(ids_ptr, map_ptr, offs, numel, num_experts, HAS_MAP: tl.constexpr, NEGATIVE_ID_BUG: tl.constexpr):
    """[BLOCK] expert (local with a map) of flat items ``offs``; -1 for items the contract skips.

    With ``NEGATIVE_ID_BUG`` only ``id >= num_experts`` is skipped, upstream's guard, and a -1 id
    indexes the counters unguarded: it lands on expert E - 1 (the small-batch kernel's
    ``tokens_cnts[(tid + 1) * E + id]`` is the E - 1 counter of the previous thread's row), and
    with a map on ``expert_map[E - 1]``.
    """
    in_range = offs < numel
    ids = tl.load(ids_ptr + offs, mask=in_range, other=-1)
    if NEGATIVE_ID_BUG:
        keep = in_range & (ids < num_experts)
        ids = tl.where(ids < 0, ids + num_experts, ids)
    else:
        keep = in_range & (ids >= 0) & (ids < num_experts)
    if HAS_MAP:
        ids = tl.load(map_ptr + ids, mask=keep, other=-1)
        keep = keep & (ids >= 0)
    return tl.where(keep, ids, -1)


@triton.jit(do_not_specialize=["numel", "num_experts", "num_slots"])
def _count_kernel(
    ids_ptr,
    map_ptr,
    counts_ptr,
    sorted_ptr,
    numel,
    num_experts,
    num_slots,
    BLOCK: tl.constexpr,
    BINS: tl.constexpr,
    HAS_MAP: tl.constexpr,
    NEGATIVE_ID_BUG: tl.constexpr,
):
    """Launch 1, program p: sorted_token_ids[:] = numel on its stride; counts[e] += its items of e."""
    pid = tl.program_id(0)
    step = tl.num_programs(0) * BLOCK
    offs = tl.arange(0, BLOCK)
    sentinel = tl.zeros([BLOCK], tl.int32) + numel
    for start in range(pid * BLOCK, num_slots, step):
        tl.store(sorted_ptr + start + offs, sentinel, mask=start + offs < num_slots)
    expert = _experts(ids_ptr, map_ptr, pid * BLOCK + offs, numel, num_experts, HAS_MAP, NEGATIVE_ID_BUG)
    hist = tl.histogram(tl.where(expert >= 0, expert, BINS - 1), BINS)
    bins = tl.arange(0, BINS)
    tl.atomic_add(counts_ptr + bins, hist, mask=(bins < BINS - 1) & (hist > 0))


@triton.jit(do_not_specialize=["block_size"])
def _scan_kernel(counts_ptr, cursor_ptr, block_end_ptr, total_ptr, block_size, BINS: tl.constexpr):
    """Launch 2: cursor [BINS] segment starts, block_end [BINS] segment ends in blocks (the total
    for every bin past the last expert), num_tokens_post_padded."""
    bins = tl.arange(0, BINS)
    counts = tl.load(counts_ptr + bins)
    padded = (counts + block_size - 1) // block_size * block_size
    end = tl.cumsum(padded, axis=0)
    tl.store(cursor_ptr + bins, end - padded)
    tl.store(block_end_ptr + bins, end // block_size)
    tl.store(total_ptr, tl.sum(padded, axis=0))


@triton.jit(do_not_specialize=["numel", "num_experts", "block_size", "num_blocks"])
def _scatter_kernel(
    ids_ptr,
    map_ptr,
    cursor_ptr,
    block_end_ptr,
    total_ptr,
    sorted_ptr,
    expert_ids_ptr,
    numel,
    num_experts,
    block_size,
    num_blocks,
    BLOCK: tl.constexpr,
    LOG2_BINS: tl.constexpr,
    HAS_MAP: tl.constexpr,
    NEGATIVE_ID_BUG: tl.constexpr,
):
    """Launch 3, program p: place its items; expert_ids on its stride of the blocks."""
    pid = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    items = pid * BLOCK + offs
    expert = _experts(ids_ptr, map_ptr, items, numel, num_experts, HAS_MAP, NEGATIVE_ID_BUG)
    keep = expert >= 0
    slot = tl.atomic_add(cursor_ptr + tl.where(keep, expert, 0), 1, mask=keep)
    tl.store(sorted_ptr + slot, items, mask=keep)

    used_blocks = tl.load(total_ptr) // block_size
    for start in range(pid * BLOCK, num_blocks, tl.num_programs(0) * BLOCK):
        block = start + offs
        # Branchless binary search: e = #experts whose segment ends at or before `block`.
        e = tl.zeros([BLOCK], tl.int32)
        for level in tl.static_range(LOG2_BINS):
            half = 1 << (LOG2_BINS - 1 - level)
            e = tl.where(tl.load(block_end_ptr + e + half - 1) <= block, e + half, e)
        tl.store(expert_ids_ptr + block, tl.where(block < used_blocks, e, -1), mask=block < num_blocks)


def _launch(ctx: LaunchContext, negative_id_bug: bool) -> None:
    ids = ctx.inputs["topk_ids"].contiguous()
    expert_map = ctx.inputs.get("expert_map")
    out = ctx.outputs
    num_experts = int(ctx.params["num_experts"])
    block_size = int(ctx.params["block_size"])
    if not 1 <= num_experts < NUM_BINS or block_size < 1:
        raise ValueError(
            f"moe_align_block_size kernels take 1 <= E < 2048 and B >= 1, got (E, B)={(num_experts, block_size)!r}"
        )
    numel = ids.numel()
    if numel == 0:  # every buffer but the total is empty (max_num_tokens_padded = 0)
        out["num_tokens_post_padded"].zero_()
        return
    warps = num_warps(ctx)
    has_map = expert_map is not None
    map_arg = expert_map.contiguous() if expert_map is not None else ids  # unread without a map
    counts = ctx.scratch((NUM_BINS,), torch.int32).zero_()
    cursor = ctx.scratch((NUM_BINS,), torch.int32)
    block_end = ctx.scratch((NUM_BINS,), torch.int32)
    sorted_ids, expert_ids = out["sorted_token_ids"], out["expert_ids"]
    grid = (triton.cdiv(numel, BLOCK),)
    flags = {"HAS_MAP": has_map, "NEGATIVE_ID_BUG": negative_id_bug, "num_warps": warps}
    _count_kernel[grid](
        ids, map_arg, counts, sorted_ids, numel, num_experts, sorted_ids.numel(), BLOCK=BLOCK, BINS=NUM_BINS, **flags
    )
    _scan_kernel[(1,)](counts, cursor, block_end, out["num_tokens_post_padded"], block_size, BINS=NUM_BINS)
    _scatter_kernel[grid](
        ids,
        map_arg,
        cursor,
        block_end,
        out["num_tokens_post_padded"],
        sorted_ids,
        expert_ids,
        numel,
        num_experts,
        block_size,
        expert_ids.numel(),
        BLOCK=BLOCK,
        LOG2_BINS=LOG2_BINS,
        **flags,
    )


def moe_align_block_size_triton(ctx: LaunchContext) -> None:
    """moefuzz's correct moe_align_block_size: writes every entry of ``ctx.outputs``.

    Reads ``topk_ids`` [M, K] int32, the optional ``expert_map`` [E] int32 and the params
    ``num_experts``, ``block_size`` (``pad_sorted_ids`` only sizes the buffers); honours
    ``ctx.config["num_warps"]``.

    Raises:
        ValueError: E >= 2048 or B < 1, which the kernels cannot index (the other preconditions
            are ``contract.check``'s).
    """
    _launch(ctx, negative_id_bug=False)


def moe_align_block_size_bug_negative_id(ctx: LaunchContext) -> None:
    """Bug model of the unguarded -1 id (vLLM's small-batch ``moe_align_block_size`` kernels
    before the -1 guard): a -1 id is counted and placed as expert E - 1 (or, with a map, as
    ``expert_map[E - 1]``), so that expert's segment grows by the padding rows' items.

    Same arguments and errors as :func:`moe_align_block_size_triton`.
    """
    _launch(ctx, negative_id_bug=True)
