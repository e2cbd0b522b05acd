"""vLLM 0.34.0 ``ep_gather`` fuzzed against moefuzz's ep_gather contract.

Upstream: ``vllm/model_executor/layers/fused_moe/deep_gemm_utils.py`` ``ep_gather``
(``_fwd_kernel_ep_gather``), called through its Python launcher as shipped with
``expert_map=None``, ``input_tensor`` and ``output_tensor`` in bf16 (the output widened back to
float32 for the comparison). The module's imports get the stand-ins of
:mod:`benchmarks.upstream.vllm_ep_scatter`.

Run ``benchmarks/upstream/fetch.sh`` first, then::

    moefuzz run --targets benchmarks/upstream/vllm_ep_gather.py --target ep_gather \\
        --kernel vllm-ep-gather --time 10m

Domain: the whole contract (the launcher's column block is ``gcd(H, 1024)``, which divides
every H).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from benchmarks.upstream._support import outside_domain, with_domain
from benchmarks.upstream.vllm_ep_scatter import RELEASE, SOURCE, upstream
from moefuzz.model.case import Case
from moefuzz_targets.ep_gather import TARGET as EP_GATHER

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext


def domain(case: Case) -> bool:
    """Every case of the contract."""
    return True


def vllm_ep_gather(ctx: LaunchContext) -> None:
    """Call vLLM's ``ep_gather`` on the case.

    Reads ``input_tensor`` [M, H] float32 (cast to bf16), ``recv_topk`` [N, K] int32,
    ``recv_topk_weight`` [N, K] float32, ``input_index`` [N, K] int32; writes ``output_tensor``
    [N, H] (bf16, widened to float32).
    """
    if outside_domain(ctx, EP_GATHER, domain):
        return
    out = ctx.outputs["output_tensor"]
    output = ctx.scratch(tuple(out.shape), torch.bfloat16)
    upstream().ep_gather(
        input_tensor=ctx.inputs["input_tensor"].to(torch.bfloat16),
        recv_topk_ids=ctx.inputs["recv_topk"],
        recv_topk_weight=ctx.inputs["recv_topk_weight"],
        input_index=ctx.inputs["input_index"],
        expert_map=None,
        output_tensor=output,
    )
    out.copy_(output)


TARGET = with_domain(EP_GATHER, "vllm-ep-gather", vllm_ep_gather, f"{RELEASE} {SOURCE} ep_gather", domain)
