"""Triton pieces the built-in kernels share: the launch's ``num_warps`` and one blocked scan.

Imports only triton (no moefuzz), so that an exported reproducer can import the kernels that use
it with only torch and triton installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import triton
import triton.language as tl

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext

#: num_warps of a launch when ``ctx.config`` names none.
DEFAULT_NUM_WARPS = 4


def num_warps(ctx: LaunchContext, default: int = DEFAULT_NUM_WARPS) -> int:
    """``ctx.config["num_warps"]`` (the schedule perturbation's choice), else ``default``."""
    return int(ctx.config.get("num_warps", default))


@triton.jit
def blocked_prefix_scan(
    counts_ptr, base_ptr, offsets_ptr, num_blocks, e_local, BLOCK_B: tl.constexpr, BLOCK_E: tl.constexpr
):
    """Exclusive scans of a [num_blocks, e_local] int32 count table, by one program.

    ``counts[b, e]`` is how many items of expert ``e`` block ``b`` holds. Writes
    ``base[b, e] = sum_{b' < b} counts[b', e]`` ([num_blocks, e_local] int32, row-major like
    counts) and ``offsets[e] = sum_{e' < e} sum_b counts[b, e']`` for ``e`` in ``0..e_local``
    (``offsets`` is int64 with ``e_local + 1`` entries; the last is the total). Walks the table
    in [BLOCK_B, BLOCK_E] tiles and reads each count once; item p of expert e in block b goes to
    ``offsets[e] + base[b, e] + (its rank in the block)``.
    """
    offs_b = tl.arange(0, BLOCK_B)
    offs_e = tl.arange(0, BLOCK_E)
    done = tl.sum(tl.zeros([BLOCK_E], tl.int64), axis=0)  # items of the experts before this chunk
    for e0 in range(0, e_local, BLOCK_E):
        experts = e0 + offs_e
        expert_mask = experts < e_local
        running = tl.zeros([BLOCK_E], tl.int32)  # items of each expert in the blocks so far
        for b0 in range(0, num_blocks, BLOCK_B):
            blocks = b0 + offs_b
            mask = (blocks < num_blocks)[:, None] & expert_mask[None, :]
            where = blocks[:, None] * e_local + experts[None, :]
            tile = tl.load(counts_ptr + where, mask=mask, other=0)
            tl.store(base_ptr + where, running[None, :] + tl.cumsum(tile, axis=0) - tile, mask=mask)
            running += tl.sum(tile, axis=0)
        first = done + (tl.cumsum(running, axis=0) - running).to(tl.int64)
        tl.store(offsets_ptr + experts, first, mask=expert_mask)
        done += tl.sum(running, axis=0).to(tl.int64)
    tl.store(offsets_ptr + e_local, done)
