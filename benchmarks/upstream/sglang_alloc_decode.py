"""sglang 0.5.23 ``alloc_decode_kernel`` fuzzed against moefuzz's alloc_extend contract.

Upstream: ``sglang/kernels/ops/memory/allocator.py`` (``alloc_decode_kernel``), launched as
``sglang/srt/mem_cache/allocator/paged.py`` ``PagedTokenToKVPoolAllocator.alloc_decode`` does::

    alloc_decode_kernel[(bs,)](seq_lens, last_loc, self.free_pages, out_indices,
                               next_power_of_2(bs), self.page_size)

A decode step is the alloc_extend contract's extend of one token per request. Run
``benchmarks/upstream/fetch.sh`` first, then::

    moefuzz run --targets benchmarks/upstream/sglang_alloc_decode.py --target alloc_extend \\
        --kernel sglang-alloc-decode --time 10m

Domain: a decode batch (every ``seq_lens[i] = prefix_lens[i] + 1``: the kernel takes no
prefix_lens) of at least one request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import triton

from benchmarks.upstream._support import load_upstream, outside_domain, with_domain
from moefuzz.model.case import Case
from moefuzz_targets.alloc_extend import TARGET as ALLOC_EXTEND

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext

RELEASE = "sglang-0.5.23"
SOURCE = "sglang/kernels/ops/memory/allocator.py"


def domain(case: Case) -> bool:
    """A decode batch: B >= 1 and seq_lens = prefix_lens + 1."""
    extend = case.arrays["seq_lens"] - case.arrays["prefix_lens"]
    return extend.shape[0] >= 1 and bool(np.all(extend == 1))


def sglang_alloc_decode(ctx: LaunchContext) -> None:
    """Launch sglang's ``alloc_decode_kernel`` on the case, as ``alloc_decode`` does.

    Reads ``seq_lens``, ``last_loc`` [B] int64, ``free_pages`` [F] int64 and the param
    ``page_size``; writes ``out_indices`` [B] int64.
    """
    if outside_domain(ctx, ALLOC_EXTEND, domain):
        return
    upstream = load_upstream(RELEASE, SOURCE)
    batch = ctx.inputs["seq_lens"].shape[0]
    upstream.alloc_decode_kernel[(batch,)](
        ctx.inputs["seq_lens"],
        ctx.inputs["last_loc"],
        ctx.inputs["free_pages"],
        ctx.outputs["out_indices"],
        triton.next_power_of_2(batch),
        int(ctx.params["page_size"]),
    )


TARGET = with_domain(
    ALLOC_EXTEND,
    "sglang-alloc-decode",
    sglang_alloc_decode,
    f"{RELEASE} {SOURCE} alloc_decode_kernel",
    domain,
)
