"""moefuzz's own Triton moe_permute with an expert map, and two bug models of an unguarded lookup.

Mirrors vLLM ``csrc/moe/moe_permute_unpermute_op.cu`` (``moe_permute`` with ``expert_map``), whose
``preprocessTopkIdKernel`` maps global ids through the expert map, ``sortAndScanExpert`` radix-
sorts the items and scans the offsets, and ``expandInputRowsKernel`` scatters the maps and copies
the hidden rows. Here a stable counting sort does the same in three launches, over blocks of
:data:`BLOCK_ITEMS` flat items ``i = t * K + k``::

    1  _count_kernel    grid (NB,)  local expert of each item of block b (guarded lookup); its
                                    rank among the block's earlier items of that expert; the
                                    last item of each expert writes counts[b, e] = rank + 1
    2  _scan_kernel     grid (1,)   offsets[e] = sum_{e' < e} total[e'];
                                    base[b, e] = sum_{b' < b} counts[b', e]
    3  _scatter_kernel  grid (NB,)  p = offsets[e] + base[b, e] + rank (recomputed as in 1);
                                    permuted_idx[p] = i, inv_permuted_idx[i] = p, and the row copy
                                    permuted_hidden_states[p] = hidden_states[i // K]

A program never reads back what it wrote: each buffer is read only by a later launch. Compiled
variants per num_warps: steps 1 and 3 for each way of looking up a negative id (refuse, wrap,
read: :data:`REFUSE_NEGATIVE_IDS`...), and step 2 (7 in all); the
integer sizes are not specialised (``do_not_specialize``: no variant for a size of 1 or a
multiple of 16), so T, K, E and H cost no compile. The contract is in ``contract.py``.
Inputs and outputs (``ctx.inputs`` / ``ctx.outputs``)::

    topk_ids                   [T, K] int32      global ids
    expert_map                 [E] int32         global -> local id, -1 if not local
    hidden_states              [T, H] float32
    expert_first_token_offset  [E_local + 1] int64
    permuted_idx               [T * K] int32
    inv_permuted_idx           [T * K] int32
    permuted_hidden_states     [T * K, H] float32

Importing this module imports triton: set ``TRITON_INTERPRET=1`` first to run on the CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl

from moefuzz_targets.shared.triton_helpers import blocked_prefix_scan, num_warps

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext

#: Items per program. The in-block rank compares every pair of a block's items ([128, 128]
#: per program, 128 values a thread at 4 warps); a bigger block would spill on the GPU, a smaller
#: one doubles the programs the interpreter steps through one by one.
BLOCK_ITEMS = 128
#: Columns of a hidden row copied per step: H is any size, 64 keeps a [128, 64] float32 tile.
BLOCK_HIDDEN = 64
#: Tile of step 2's scan over the [NB, E_local] counts: 32 blocks by 128 experts.
SCAN_BLOCK_BLOCKS = 32
SCAN_BLOCK_EXPERTS = 128
#: What ``expert_map[id]`` does with a negative id (the constexpr ``NEGATIVE_IDS``): the correct
#: kernel refuses it (not local); ``bug-sentinel-minus-one`` wraps it to ``expert_map[id + E]``;
#: ``bug-sentinel-minus-one-oob`` reads ``expert_map[id]`` as the GPU does, before the buffer.
REFUSE_NEGATIVE_IDS = 0
WRAP_NEGATIVE_IDS = 1
READ_NEGATIVE_IDS = 2


@triton.jit
def _block_items(ids_ptr, map_ptr, block, num_items, num_experts, BLOCK: tl.constexpr, NEGATIVE_IDS: tl.constexpr):
    """The items of block ``block`` and their place among the block's items of their expert.

    Returns ``(item, local, same, rank)``: [BLOCK] flat index i; [BLOCK] local expert (-1 for
    padding, ids outside 0..E-1 and experts of other ranks); [BLOCK, BLOCK] whether items a and
    b are local items of one expert; [BLOCK] how many earlier items of the block share it.

    ``NEGATIVE_IDS`` says how a negative id is looked up: refused (:data:`REFUSE_NEGATIVE_IDS`),
    as ``expert_map[id + E]`` (:data:`WRAP_NEGATIVE_IDS`), or as ``expert_map[id]``, the address
    before the map (:data:`READ_NEGATIVE_IDS`): the unguarded ``smem_expert_map[topk_id]`` of
    the bug models. Ids >= E are refused in every mode.
    """
    offs = tl.arange(0, BLOCK)
    item = block * BLOCK + offs
    in_range = item < num_items
    ids = tl.load(ids_ptr + item, mask=in_range, other=-1)
    if NEGATIVE_IDS == 1:  # WRAP_NEGATIVE_IDS
        ids = tl.where(ids < 0, ids + num_experts, ids)
    if NEGATIVE_IDS == 2:  # READ_NEGATIVE_IDS
        known = in_range & (ids < num_experts)
    else:
        known = in_range & (ids >= 0) & (ids < num_experts)
    local = tl.load(map_ptr + ids, mask=known, other=-1)
    same = (local[:, None] == local[None, :]) & (local >= 0)[:, None]
    rank = tl.sum((same & (offs[None, :] < offs[:, None])).to(tl.int32), axis=1)
    return item, local, same, rank


@triton.jit(do_not_specialize=("num_items", "num_experts", "e_local"))
def _count_kernel(
    ids_ptr,
    map_ptr,
    counts_ptr,
    num_items,
    num_experts,
    e_local,
    BLOCK: tl.constexpr,
    NEGATIVE_IDS: tl.constexpr,
):
    """Step 1, program b: counts[b, e] ([NB, E_local] int32, zeroed before) of each local expert
    present in the block, written by the expert's last item there."""
    block = tl.program_id(0)
    _, local, same, rank = _block_items(ids_ptr, map_ptr, block, num_items, num_experts, BLOCK, NEGATIVE_IDS)
    offs = tl.arange(0, BLOCK)
    later = tl.sum((same & (offs[None, :] > offs[:, None])).to(tl.int32), axis=1)
    tl.store(counts_ptr + block * e_local + local, rank + 1, mask=(local >= 0) & (later == 0))


@triton.jit(do_not_specialize=("num_blocks", "e_local"))
def _scan_kernel(
    counts_ptr,
    base_ptr,
    offsets_ptr,
    num_blocks,
    e_local,
    BLOCK_B: tl.constexpr,
    BLOCK_E: tl.constexpr,
):
    """Step 2, one program: offsets [E_local + 1] int64 and base[b, e] ([NB, E_local] int32),
    the items of expert e in blocks before b (:func:`blocked_prefix_scan`)."""
    blocked_prefix_scan(counts_ptr, base_ptr, offsets_ptr, num_blocks, e_local, BLOCK_B, BLOCK_E)


@triton.jit(do_not_specialize=("num_items", "num_experts", "e_local", "top_k", "hidden_size"))
def _scatter_kernel(
    ids_ptr,
    map_ptr,
    offsets_ptr,
    base_ptr,
    hidden_ptr,
    permuted_idx_ptr,
    inv_permuted_idx_ptr,
    permuted_hidden_ptr,
    num_items,
    num_experts,
    e_local,
    top_k,
    hidden_size,
    BLOCK: tl.constexpr,
    BLOCK_H: tl.constexpr,
    NEGATIVE_IDS: tl.constexpr,
):
    """Step 3, program b: the permuted row p of each local item; scatter both maps and copy the
    item's hidden row (H columns, BLOCK_H at a time)."""
    block = tl.program_id(0)
    item, local, _, rank = _block_items(ids_ptr, map_ptr, block, num_items, num_experts, BLOCK, NEGATIVE_IDS)
    is_local = local >= 0
    start = tl.load(offsets_ptr + local, mask=is_local, other=0)
    before = tl.load(base_ptr + block * e_local + local, mask=is_local, other=0)
    p = start + before + rank  # int64
    tl.store(permuted_idx_ptr + p, item, mask=is_local)
    tl.store(inv_permuted_idx_ptr + item, p.to(tl.int32), mask=is_local)
    token = (item // top_k).to(tl.int64)
    for h0 in range(0, hidden_size, BLOCK_H):
        cols = h0 + tl.arange(0, BLOCK_H)
        mask = is_local[:, None] & (cols < hidden_size)[None, :]
        row = tl.load(hidden_ptr + token[:, None] * hidden_size + cols[None, :], mask=mask)
        tl.store(permuted_hidden_ptr + p[:, None] * hidden_size + cols[None, :], row, mask=mask)


def _launch(ctx: LaunchContext, negative_ids: int) -> None:
    ids = ctx.inputs["topk_ids"].contiguous()
    expert_map = ctx.inputs["expert_map"].contiguous()
    hidden = ctx.inputs["hidden_states"].contiguous()
    out = ctx.outputs
    rows, top_k = ids.shape
    num_items = rows * top_k
    e_local = int(ctx.params["num_local_experts"])
    if num_items >= 2**31 or hidden.shape[0] != rows:
        raise ValueError(
            f"moe_permute kernels take T * K < 2**31 items and one hidden row per token, got "
            f"(T * K, hidden rows)={(num_items, hidden.shape[0])!r}"
        )
    if num_items == 0 or e_local == 0:
        out["expert_first_token_offset"].zero_()
        return
    warps = num_warps(ctx)
    num_blocks = triton.cdiv(num_items, BLOCK_ITEMS)
    counts = ctx.scratch((num_blocks, e_local), torch.int32).zero_()
    base = ctx.scratch((num_blocks, e_local), torch.int32)
    lookup = (ids, expert_map)
    _count_kernel[(num_blocks,)](
        *lookup,
        counts,
        num_items,
        expert_map.shape[0],
        e_local,
        BLOCK=BLOCK_ITEMS,
        NEGATIVE_IDS=negative_ids,
        num_warps=warps,
    )
    _scan_kernel[(1,)](
        counts,
        base,
        out["expert_first_token_offset"],
        num_blocks,
        e_local,
        BLOCK_B=SCAN_BLOCK_BLOCKS,
        BLOCK_E=SCAN_BLOCK_EXPERTS,
        num_warps=warps,
    )
    _scatter_kernel[(num_blocks,)](
        *lookup,
        out["expert_first_token_offset"],
        base,
        hidden,
        out["permuted_idx"],
        out["inv_permuted_idx"],
        out["permuted_hidden_states"],
        num_items,
        expert_map.shape[0],
        e_local,
        top_k,
        hidden.shape[1],
        BLOCK=BLOCK_ITEMS,
        BLOCK_H=BLOCK_HIDDEN,
        NEGATIVE_IDS=negative_ids,
        num_warps=warps,
    )


def moe_permute_triton(ctx: LaunchContext) -> None:
    """moefuzz's correct moe_permute: writes every specified entry of ``ctx.outputs``.

    Reads ``topk_ids`` [T, K] int32, ``expert_map`` [E] int32, ``hidden_states`` [T, H] float32
    and the param ``num_local_experts``; an id is looked up only when 0 <= id < E (the guard of
    the newer vLLM ``preprocessTopkIdKernel``, which turns other ids into the invalid key E).
    Honours ``ctx.config["num_warps"]``.

    Raises:
        ValueError: T * K >= 2**31, or hidden_states without one row per token (the other
            preconditions are ``contract.check``'s).
    """
    _launch(ctx, REFUSE_NEGATIVE_IDS)


def moe_permute_bug_sentinel_minus_one(ctx: LaunchContext) -> None:
    """Bug model of vllm-project/vllm#42034: ``expert_map[id]`` without a guard, a negative id
    wrapping to ``expert_map[id + E]`` (Python-style), so a -1 pad reads the map's LAST entry.
    When the last global expert is local, every -1 slot becomes an item of its local expert:
    offsets and both maps are wrong. Ids >= E stay refused (upstream reads past its shared
    copy of the map there; undefined, not modelled). Correct when no id is negative or the last
    global expert is not local.

    Same arguments and errors as :func:`moe_permute_triton`.
    """
    _launch(ctx, WRAP_NEGATIVE_IDS)


def moe_permute_bug_sentinel_minus_one_oob(ctx: LaunchContext) -> None:
    """Bug model of vllm-project/vllm#42034 as a GPU runs it: ``expert_map[id]`` without a
    guard, a -1 pad loading the int32 just before ``expert_map``, outside the buffer. On a GPU
    that is undefined (an illegal memory access, or whatever the allocator put there becomes a
    local id: the IMA the report saw); in the interpreter, :mod:`moefuzz.execute.oob` refuses the load,
    ``crash:out-of-bounds-load``. The bug of :func:`moe_permute_bug_sentinel_minus_one` without
    its deterministic wrap: a model for CPU runs, where the checker makes it deterministic.
    Correct when no id is negative.

    Same arguments and errors as :func:`moe_permute_triton`.
    """
    _launch(ctx, READ_NEGATIVE_IDS)
