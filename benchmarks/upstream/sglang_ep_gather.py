"""sglang 0.5.23 ``ep_gather`` fuzzed against moefuzz's ep_gather contract.

Upstream: ``sglang/kernels/ops/moe/ep_moe_kernels.py`` ``ep_gather`` (``_fwd_kernel_ep_gather``,
LightLLM's kernel), called through its Python launcher as shipped, with ``input_tensor`` and
``output_tensor`` in bf16 (the output widened back to float32 for the comparison). The module's
imports get the stand-ins of :mod:`benchmarks.upstream.sglang_ep_scatter`.

Run ``benchmarks/upstream/fetch.sh`` first, then::

    moefuzz run --targets benchmarks/upstream/sglang_ep_gather.py --target ep_gather \\
        --kernel sglang-ep-gather --time 10m

Domain: H a multiple of 128 (the launcher takes column blocks of 128, or 1024 when H is a
multiple of 1024, and asserts ``hidden_size % BLOCK_D == 0``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from benchmarks.upstream._support import outside_domain, with_domain
from benchmarks.upstream.sglang_ep_scatter import RELEASE, SOURCE, upstream
from moefuzz.model.case import Case
from moefuzz_targets.ep_gather import TARGET as EP_GATHER

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext


def domain(case: Case) -> bool:
    """H % 128 == 0."""
    return case.arrays["input_tensor"].shape[1] % 128 == 0


def sglang_ep_gather(ctx: LaunchContext) -> None:
    """Call sglang's ``ep_gather`` on the case.

    Reads ``input_tensor`` [M, H] float32 (cast to bf16), ``recv_topk`` [N, K] int32,
    ``recv_topk_weight`` [N, K] float32, ``input_index`` [N, K] int32; writes ``output_tensor``
    [N, H] (bf16, widened to float32).
    """
    if outside_domain(ctx, EP_GATHER, domain):
        return
    out = ctx.outputs["output_tensor"]
    output = ctx.scratch(tuple(out.shape), torch.bfloat16)
    upstream().ep_gather(
        ctx.inputs["input_tensor"].to(torch.bfloat16),
        ctx.inputs["recv_topk"],
        ctx.inputs["recv_topk_weight"],
        ctx.inputs["input_index"],
        output,
    )
    out.copy_(output)


TARGET = with_domain(EP_GATHER, "sglang-ep-gather", sglang_ep_gather, f"{RELEASE} {SOURCE} ep_gather", domain)
