"""vLLM 0.34.0 ``ep_scatter`` fuzzed against moefuzz's ep_scatter contract.

Upstream: ``vllm/model_executor/layers/fused_moe/deep_gemm_utils.py`` ``ep_scatter``
(``_fwd_kernel_ep_scatter_1`` then ``_fwd_kernel_ep_scatter_2``, LightLLM's kernels as vLLM
changed them: the start of an expert is taken from registers, not read back from memory), called
through its Python launcher as shipped with ``expert_map=None``, ``align_m=128``,
``block_size=128`` (its defaults, and ``deepgemm_moe_permute``'s on Hopper). The module's
imports get stand-ins: ``vllm.triton_utils`` (the real ``triton`` and ``triton.language``),
``modular_kernel.ExpertTokensMetadata`` (an annotation), ``count_expert_num_tokens``,
``get_mk_alignment_for_contiguous_layout`` and ``round_up`` (unused by ``ep_scatter``).

Mapping: ``num_recv_tokens_per_expert`` is the contract's aligned counts (the launcher rounds up
to ``align_m`` again, a no-op), so ``m_indices`` is written on the whole aligned segment.

Run ``benchmarks/upstream/fetch.sh`` first, then::

    moefuzz run --targets benchmarks/upstream/vllm_ep_scatter.py --target ep_scatter \\
        --kernel vllm-ep-scatter --time 10m

Domain: fp8 with H a multiple of 128. vLLM calls it from ``deepgemm_moe_permute`` on fp8
activations only, and always copies ``H // 128`` scale columns: with bf16 (no scales, S = 0)
or an fp8 H that is not a multiple of 128 (the contract's S = ceil(H / 128)) the copy reads and
writes outside the scale buffers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import triton
import triton.language as tl

from benchmarks.upstream._support import load_upstream, outside_domain, with_domain
from moefuzz.model.case import Case
from moefuzz_targets.ep_scatter import TARGET as EP_SCATTER
from moefuzz_targets.ep_scatter.oracle import device_dtype

if TYPE_CHECKING:
    from types import ModuleType

    from moefuzz.execute.launch import LaunchContext

RELEASE = "vllm-0.34.0"
SOURCE = "vllm/model_executor/layers/fused_moe/deep_gemm_utils.py"


class _ExpertTokensMetadata:
    """Stand-in for the annotation ``mk.ExpertTokensMetadata``."""


def _unused(*args: object, **kwargs: object) -> None:
    raise NotImplementedError("stand-in of a vllm helper ep_scatter and ep_gather do not call")


def _round_up(x: int, y: int) -> int:
    return -(-x // y) * y


STUBS: dict[str, dict[str, object]] = {
    "vllm.model_executor.layers.fused_moe.modular_kernel": {"ExpertTokensMetadata": _ExpertTokensMetadata},
    "vllm.model_executor.layers.fused_moe.utils": {"count_expert_num_tokens": _unused},
    "vllm.triton_utils": {"tl": tl, "triton": triton},
    "vllm.utils.deep_gemm": {"get_mk_alignment_for_contiguous_layout": _unused},
    "vllm.utils.math_utils": {"round_up": _round_up},
}


def upstream() -> ModuleType:
    """The upstream module (imported once per process)."""
    return load_upstream(RELEASE, SOURCE, STUBS)


def domain(case: Case) -> bool:
    """fp8 with H % 128 == 0."""
    return case.params["dtype"] == "fp8" and case.arrays["recv_x"].shape[1] % 128 == 0


def vllm_ep_scatter(ctx: LaunchContext) -> None:
    """Call vLLM's ``ep_scatter`` on the case (see the module doc for the mapping).

    Reads ``recv_x`` [N, H] float32 (cast to float8_e4m3fn), ``recv_x_scale`` [N, H / 128]
    float32, ``recv_topk`` [N, K] int32, ``num_recv_tokens_per_expert`` [E] int32; writes every
    output of the contract (``output_tensor`` widened back to float32).
    """
    if outside_domain(ctx, EP_SCATTER, domain):
        return
    out = ctx.outputs
    dtype = device_dtype(ctx.params["dtype"])
    output = ctx.scratch(tuple(out["output_tensor"].shape), dtype)
    upstream().ep_scatter(
        recv_x=ctx.inputs["recv_x"].to(dtype),
        recv_x_scale=ctx.inputs["recv_x_scale"],
        recv_topk=ctx.inputs["recv_topk"],
        num_recv_tokens_per_expert=ctx.inputs["num_recv_tokens_per_expert"],
        expert_map=None,
        expert_start_loc=out["expert_start_loc"],
        output_tensor=output,
        output_tensor_scale=out["output_tensor_scale"],
        m_indices=out["m_indices"],
        output_index=out["output_index"],
    )
    out["output_tensor"].copy_(output)


TARGET = with_domain(EP_SCATTER, "vllm-ep-scatter", vllm_ep_scatter, f"{RELEASE} {SOURCE} ep_scatter", domain)
