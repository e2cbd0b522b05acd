"""moefuzz's own Triton three-step sort, and the bug model of its duplicate-top-k ``break``.

Mirrors the MoE permutation prologue of TensorRT-LLM / FlashInfer
``csrc/fused_moe/cutlass_backend/cutlass_fused_moe_kernels.cuh``: one program sorts the whole
routing table when T <= 256 (``fusedBuildExpertMapsSortFirstTokenKernel``), and three launches do
it for more tokens (``threeStepBuildExpertMapsSortFirstToken``)::

    step 1  _block_rank_kernel  grid (NB,)  per block of 256 tokens: counts[b, e] and each item's
                                            rank among the block's items of its expert
    step 2  _prefix_kernel      grid (1,)   offset[e] = sum_{e' < e} total[e'];
                                            base[b, e] = sum_{b' < b} counts[b', e]
    step 3  _scatter_kernel     grid (NB,)  p = offset[e] + base[b, e] + rank; scatter the maps

Every program sorts or scans what it loaded itself and never reads back what it wrote: a buffer
written in one launch is read only by a later launch.

The contract is in ``contract.py``. Inputs and outputs (``ctx.inputs`` / ``ctx.outputs``)::

    token_selected_experts           [T, K] int32
    expert_first_token_offset        [E_local + 1] int64
    permuted_row_to_unpermuted_row   [T * K] int32
    unpermuted_row_to_permuted_row   [T * K] int32
    permuted_token_selected_experts  [T * K] int32

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

#: Tokens per program, and the most tokens the single-program path takes (upstream's BLOCK_SIZE).
BLOCK_TOKENS = 256
#: Histogram bins, one per local expert plus one for "not local", for every E_local <= 1024: a
#: fixed count because each distinct constexpr is a compile (seconds per kernel with triton 3.6
#: on an H200 box), while 2048 bins cost a program little. Compiled variants per num_warps:
#: BLOCK_K in {1, 2, 4, 8} times (fused, step 1 and step 3 with and without the bug flag), plus
#: step 2: 21 in all.
NUM_BINS = 2048
#: Integer size arguments are ``do_not_specialize``: otherwise Triton compiles a variant for each
#: of "equals 1", "divisible by 16" and neither, per argument, and a campaign's first minutes on
#: a GPU go to compiling them.
#: Largest top-k: keys (local expert, item) stay below 2**30 with 256 * 8 items a block.
MAX_TOPK = 8
#: Tile of step 2's scan over the [NB, E_local] counts: 32 blocks by 128 experts.
PREFIX_BLOCK_BLOCKS = 32
PREFIX_BLOCK_EXPERTS = 128


@triton.jit
def _local_experts(ids_ptr, t, k, T, K, start, e_local, BLOCK_K: tl.constexpr, DROP_DUPLICATES: tl.constexpr):
    """[BLOCK_T, BLOCK_K] local expert of each (t, k) item; ``e_local`` for non-local and padding.

    With ``DROP_DUPLICATES`` an expert already met at an earlier k of the same token is not local
    either: upstream's ``break`` after the first matching k (the bug model).
    """
    in_range = (t < T) & (k < K)
    ids = tl.load(ids_ptr + t * K + k, mask=in_range, other=-1)
    local = in_range & (ids >= start) & (ids - start < e_local)
    if DROP_DUPLICATES:
        earlier_k = tl.arange(0, BLOCK_K)[None, None, :]
        same = (ids[:, :, None] == ids[:, None, :]) & (earlier_k < k[:, :, None])
        local = local & (tl.max(same.to(tl.int32), axis=2) == 0)
    return tl.where(local, ids - start, e_local)


@triton.jit
def _sort(keys, LOG2_N: tl.constexpr):
    """Bitonic sort of [2**LOG2_N] int32 keys, ascending; every key below 2**30.

    Not ``tl.sort``: its compare-and-swap finds partners with ``xor_sum``, which the Triton
    interpreter runs element by element in Python (about 10 s for 2048 keys); a pair's ``sum``
    minus the key finds the same partner, runs in numpy there, and is the same size-2 reduction
    on a GPU.
    """
    N: tl.constexpr = 1 << LOG2_N
    for stage in tl.static_range(1, LOG2_N + 1):
        for step in tl.static_range(stage):
            # Partners differ in bit `stage - 1 - step` of the index: view it as the middle axis.
            x = tl.reshape(keys, [N >> (stage - step), 2, 1 << (stage - 1 - step)])
            partner = tl.sum(x, axis=1, keep_dims=True) - x
            is_right = tl.arange(0, 2)[None, :, None]
            # Bit `stage` of the index (bit `step` of the outer index) says descending.
            descending = ((tl.arange(0, N >> (stage - step)) >> step) & 1)[:, None, None]
            x = tl.where((is_right ^ descending) == 1, tl.maximum(x, partner), tl.minimum(x, partner))
            keys = tl.reshape(x, [N])
    return keys


@triton.jit
def _sorted_block(
    ids_ptr,
    t0,
    T,
    K,
    start,
    e_local,
    BLOCK_T: tl.constexpr,
    BLOCK_K: tl.constexpr,
    LOG2_ITEMS: tl.constexpr,
    BINS: tl.constexpr,
    DROP_DUPLICATES: tl.constexpr,
):
    """Sort the items of tokens [t0, t0 + BLOCK_T) by (local expert, t, k).

    Returns ``(expert, item, counts)``: [BLOCK_T * BLOCK_K] local expert (``e_local`` last, for
    non-local and padding items) and block item t_in_block * BLOCK_K + k of each sorted position,
    and [BINS] the block's item count of each local expert (bin ``e_local``: everything else).
    """
    ITEMS: tl.constexpr = BLOCK_T * BLOCK_K
    t = t0 + tl.arange(0, BLOCK_T)[:, None]
    k = tl.arange(0, BLOCK_K)[None, :]
    expert = _local_experts(ids_ptr, t, k, T, K, start, e_local, BLOCK_K, DROP_DUPLICATES)
    item = (t - t0) * BLOCK_K + k
    # Keys are unique and below 1025 * 2048 < 2**30, as _sort needs.
    key = _sort(tl.reshape(expert * ITEMS + item, [ITEMS]), LOG2_ITEMS)
    counts = tl.histogram(tl.reshape(expert, [ITEMS]), BINS)
    return key // ITEMS, key % ITEMS, counts


@triton.jit(do_not_specialize=("T", "K", "start", "e_local"))
def _fused_kernel(
    ids_ptr,
    offsets_ptr,
    p2u_ptr,
    u2p_ptr,
    pexp_ptr,
    T,
    K,
    start,
    e_local,
    BLOCK_T: tl.constexpr,
    BLOCK_K: tl.constexpr,
    LOG2_ITEMS: tl.constexpr,
    BINS: tl.constexpr,
):
    """T <= BLOCK_T: one program; sorted position p is the permuted row."""
    ITEMS: tl.constexpr = BLOCK_T * BLOCK_K
    expert, item, counts = _sorted_block(ids_ptr, 0, T, K, start, e_local, BLOCK_T, BLOCK_K, LOG2_ITEMS, BINS, False)
    bins = tl.arange(0, BINS)
    first = tl.cumsum(counts, axis=0) - counts  # [BINS]; first[e_local] = N
    tl.store(offsets_ptr + bins, first.to(tl.int64), mask=bins <= e_local)
    p = tl.arange(0, ITEMS)
    unpermuted = (item % BLOCK_K) * T + item // BLOCK_K
    valid = expert < e_local
    tl.store(p2u_ptr + p, unpermuted, mask=valid)
    tl.store(pexp_ptr + p, expert, mask=valid)
    tl.store(u2p_ptr + unpermuted, p, mask=valid)


@triton.jit(do_not_specialize=("T", "K", "start", "e_local"))
def _block_rank_kernel(
    ids_ptr,
    counts_ptr,
    rank_ptr,
    T,
    K,
    start,
    e_local,
    BLOCK_T: tl.constexpr,
    BLOCK_K: tl.constexpr,
    LOG2_ITEMS: tl.constexpr,
    BINS: tl.constexpr,
    DROP_DUPLICATES: tl.constexpr,
):
    """Step 1, program b: counts[b, e] ([NB, E_local]) and rank[u] ([T * K]) of each local item."""
    ITEMS: tl.constexpr = BLOCK_T * BLOCK_K
    block = tl.program_id(0)
    t0 = block * BLOCK_T
    expert, item, counts = _sorted_block(
        ids_ptr, t0, T, K, start, e_local, BLOCK_T, BLOCK_K, LOG2_ITEMS, BINS, DROP_DUPLICATES
    )
    first = tl.cumsum(counts, axis=0) - counts  # [BINS] block-local start of each expert
    rank = tl.arange(0, ITEMS) - tl.gather(first, expert, axis=0)
    unpermuted = (item % BLOCK_K) * T + t0 + item // BLOCK_K
    tl.store(rank_ptr + unpermuted, rank, mask=expert < e_local)
    bins = tl.arange(0, BINS)
    tl.store(counts_ptr + block * e_local + bins, counts, mask=bins < e_local)


@triton.jit(do_not_specialize=("num_blocks", "e_local"))
def _prefix_kernel(
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


@triton.jit(do_not_specialize=("T", "K", "start", "e_local"))
def _scatter_kernel(
    ids_ptr,
    rank_ptr,
    offsets_ptr,
    base_ptr,
    p2u_ptr,
    u2p_ptr,
    pexp_ptr,
    T,
    K,
    start,
    e_local,
    BLOCK_T: tl.constexpr,
    BLOCK_K: tl.constexpr,
    DROP_DUPLICATES: tl.constexpr,
):
    """Step 3, program b: p = offset[e] + base[b, e] + rank[u] for each local item u; scatter the
    three maps."""
    block = tl.program_id(0)
    t = block * BLOCK_T + tl.arange(0, BLOCK_T)[:, None]
    k = tl.arange(0, BLOCK_K)[None, :]
    expert = _local_experts(ids_ptr, t, k, T, K, start, e_local, BLOCK_K, DROP_DUPLICATES)
    valid = expert < e_local
    unpermuted = k * T + t
    rank = tl.load(rank_ptr + unpermuted, mask=valid, other=0)
    start_of_expert = tl.load(offsets_ptr + expert, mask=valid, other=0).to(tl.int32)
    p = start_of_expert + tl.load(base_ptr + block * e_local + expert, mask=valid, other=0) + rank
    tl.store(p2u_ptr + p, unpermuted, mask=valid)
    tl.store(pexp_ptr + p, expert, mask=valid)
    tl.store(u2p_ptr + unpermuted, p, mask=valid)


def _launch(ctx: LaunchContext, drop_duplicates: bool) -> None:
    ids = ctx.inputs["token_selected_experts"]
    out = ctx.outputs
    num_tokens, top_k = ids.shape
    start = int(ctx.params["start_expert"])
    e_local = int(ctx.params["end_expert"]) - start
    if not 1 <= top_k <= MAX_TOPK or not 0 <= e_local < NUM_BINS:
        raise ValueError(
            f"three_step_sort kernels take K <= 8 and E_local < 2048, got (K, E_local)={(top_k, e_local)!r}"
        )
    if num_tokens == 0 or e_local == 0:
        out["expert_first_token_offset"].zero_()
        return
    ids = ids.contiguous()
    warps = num_warps(ctx)
    block_k = triton.next_power_of_2(top_k)
    log2_items = (BLOCK_TOKENS * block_k).bit_length() - 1
    maps = (
        out["permuted_row_to_unpermuted_row"],
        out["unpermuted_row_to_permuted_row"],
        out["permuted_token_selected_experts"],
    )
    sizes = (num_tokens, top_k, start, e_local)
    if num_tokens <= BLOCK_TOKENS:
        _fused_kernel[(1,)](
            ids,
            out["expert_first_token_offset"],
            *maps,
            *sizes,
            BLOCK_T=BLOCK_TOKENS,
            BLOCK_K=block_k,
            LOG2_ITEMS=log2_items,
            BINS=NUM_BINS,
            num_warps=warps,
        )
        return
    num_blocks = triton.cdiv(num_tokens, BLOCK_TOKENS)
    counts = ctx.scratch((num_blocks, e_local), torch.int32)
    base = ctx.scratch((num_blocks, e_local), torch.int32)
    rank = ctx.scratch((num_tokens * top_k,), torch.int32)
    _block_rank_kernel[(num_blocks,)](
        ids,
        counts,
        rank,
        *sizes,
        BLOCK_T=BLOCK_TOKENS,
        BLOCK_K=block_k,
        LOG2_ITEMS=log2_items,
        BINS=NUM_BINS,
        DROP_DUPLICATES=drop_duplicates,
        num_warps=warps,
    )
    _prefix_kernel[(1,)](
        counts,
        base,
        out["expert_first_token_offset"],
        num_blocks,
        e_local,
        BLOCK_B=PREFIX_BLOCK_BLOCKS,
        BLOCK_E=PREFIX_BLOCK_EXPERTS,
        num_warps=warps,
    )
    _scatter_kernel[(num_blocks,)](
        ids,
        rank,
        out["expert_first_token_offset"],
        base,
        *maps,
        *sizes,
        BLOCK_T=BLOCK_TOKENS,
        BLOCK_K=block_k,
        DROP_DUPLICATES=drop_duplicates,
        num_warps=warps,
    )


def three_step_sort_triton(ctx: LaunchContext) -> None:
    """moefuzz's correct three-step sort: writes every specified entry of ``ctx.outputs``.

    Reads ``token_selected_experts`` [T, K] int32 and the params ``start_expert``,
    ``end_expert``; honours ``ctx.config["num_warps"]``.

    Raises:
        ValueError: K outside 1..8 or E_local >= 2048, which the kernels cannot index (the other
            preconditions are ``contract.check``'s).
    """
    _launch(ctx, drop_duplicates=False)


def three_step_sort_bug_duplicate_topk(ctx: LaunchContext) -> None:
    """Bug model of flashinfer-ai/flashinfer#3011: for T > 256, a repeated expert in a token's
    top-k counts once, and its later slots get no permuted row (unpermuted_row_to_permuted_row
    stays unwritten there, the offsets undercount). For T <= 256 it is correct, like upstream.

    Same arguments and errors as :func:`three_step_sort_triton`.
    """
    _launch(ctx, drop_duplicates=True)
