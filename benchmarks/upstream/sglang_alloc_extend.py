"""sglang 0.5.23 ``alloc_extend_kernel`` fuzzed against moefuzz's alloc_extend contract.

Upstream: ``sglang/kernels/ops/memory/allocator.py`` (``alloc_extend_kernel``), launched as
``sglang/srt/mem_cache/allocator/paged.py`` ``PagedTokenToKVPoolAllocator.alloc_extend`` does::

    alloc_extend_kernel[(bs,)](prefix_lens, seq_lens, last_loc, self.free_pages, out_indices,
                               next_power_of_2(bs), self.page_size)

Run ``benchmarks/upstream/fetch.sh`` first, then::

    moefuzz run --targets benchmarks/upstream/sglang_alloc_extend.py --target alloc_extend \\
        --kernel sglang-alloc-extend --time 10m

Domain: ``page_size`` is a power of two (the kernel's ``tl.arange(0, page_size)`` cannot be
built otherwise) and the batch holds at least one request (sglang never launches an empty
batch: ``next_power_of_2(0)`` is no block size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import triton

from benchmarks.upstream._support import is_power_of_two, load_upstream, outside_domain, with_domain
from moefuzz.model.case import Case
from moefuzz_targets.alloc_extend import TARGET as ALLOC_EXTEND

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext

RELEASE = "sglang-0.5.23"
SOURCE = "sglang/kernels/ops/memory/allocator.py"


def domain(case: Case) -> bool:
    """Power-of-two page_size, B >= 1."""
    return is_power_of_two(int(case.params["page_size"])) and case.arrays["seq_lens"].shape[0] >= 1


def sglang_alloc_extend(ctx: LaunchContext) -> None:
    """Launch sglang's ``alloc_extend_kernel`` on the case, as ``alloc_extend`` does.

    Reads ``prefix_lens``, ``seq_lens``, ``last_loc``, ``free_pages`` [B] / [F] int64 and the
    param ``page_size``; writes ``out_indices`` [sum(seq_lens - prefix_lens)] int64.
    """
    if outside_domain(ctx, ALLOC_EXTEND, domain):
        return
    upstream = load_upstream(RELEASE, SOURCE)
    batch = ctx.inputs["seq_lens"].shape[0]
    upstream.alloc_extend_kernel[(batch,)](
        ctx.inputs["prefix_lens"],
        ctx.inputs["seq_lens"],
        ctx.inputs["last_loc"],
        ctx.inputs["free_pages"],
        ctx.outputs["out_indices"],
        triton.next_power_of_2(batch),
        int(ctx.params["page_size"]),
    )


TARGET = with_domain(
    ALLOC_EXTEND,
    "sglang-alloc-extend",
    sglang_alloc_extend,
    f"{RELEASE} {SOURCE} alloc_extend_kernel",
    domain,
)
