"""sglang 0.5.23 ``ep_scatter`` fuzzed against moefuzz's ep_scatter contract.

Upstream: ``sglang/kernels/ops/moe/ep_moe_kernels.py`` ``ep_scatter`` (``_fwd_kernel_ep_scatter_1``
then ``_fwd_kernel_ep_scatter_2``, LightLLM's kernels with a ``num_valid_tokens_per_expert``
argument), called through its Python launcher as shipped. The launcher's module imports
``sglang.srt.environ`` and ``sglang.srt.utils``; stand-ins provide ``envs``, ``ceil_div`` and
``is_cuda`` / ``is_musa`` returning False (so the module skips its fp8 quantization import and
launches with ``ATOMIC_ADD_SEM=None``, as on CUDA). Under the Triton interpreter the kernels'
loop variables get the ``.to()`` they have when compiled (``_support.give_loop_vars_to``).

Mapping: ``num_valid_tokens_per_expert`` is the aligned counts themselves, so ``m_indices`` holds
e on the whole aligned segment of e (the contract's LightLLM form; with the real counts sglang
writes -1 on the padding rows); ``expert_start=0`` (``recv_topk`` holds local ids). bf16 cases
pass ``recv_x_scale`` [N, 0], which the launcher does not read (``is_fp8`` is False for bf16).

Run ``benchmarks/upstream/fetch.sh`` first, then::

    moefuzz run --targets benchmarks/upstream/sglang_ep_scatter.py --target ep_scatter \\
        --kernel sglang-ep-scatter --time 10m

Domain: H >= 128, and with fp8 H a multiple of 128. The launcher takes ``H // 128`` scale columns
(the contract's fp8 has ceil(H / 128)) and asserts the scales have as many; the row kernel
builds ``tl.arange(0, next_power_of_2(H // 128))`` even for bf16, which cannot be built for
H < 128.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.upstream._support import load_upstream, outside_domain, with_domain
from moefuzz.model.case import Case
from moefuzz_targets.ep_scatter import TARGET as EP_SCATTER
from moefuzz_targets.ep_scatter.oracle import device_dtype

if TYPE_CHECKING:
    from types import ModuleType

    from moefuzz.execute.launch import LaunchContext

RELEASE = "sglang-0.5.23"
SOURCE = "sglang/kernels/ops/moe/ep_moe_kernels.py"


def _false() -> bool:
    return False


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


#: Stand-ins for the module's top-level imports (sglang.srt.utils' own definitions of ceil_div;
#: is_cuda False keeps the module from importing its fp8 quantization kernels).
STUBS: dict[str, dict[str, object]] = {
    "sglang.srt.environ": {"envs": object()},
    "sglang.srt.utils": {"ceil_div": _ceil_div, "is_cuda": _false, "is_musa": _false},
}


def upstream() -> ModuleType:
    """The upstream module (imported once per process)."""
    return load_upstream(RELEASE, SOURCE, STUBS, loop_vars_to=True)


def domain(case: Case) -> bool:
    """H >= 128, and H % 128 == 0 for fp8."""
    hidden = case.arrays["recv_x"].shape[1]
    return hidden >= 128 and (case.params["dtype"] == "bf16" or hidden % 128 == 0)


def sglang_ep_scatter(ctx: LaunchContext) -> None:
    """Call sglang's ``ep_scatter`` on the case (see the module doc for the mapping).

    Reads ``recv_x`` [N, H] float32 (cast to bf16 or float8_e4m3fn), ``recv_x_scale`` [N, S]
    float32, ``recv_topk`` [N, K] int32, ``num_recv_tokens_per_expert`` [E] int32; writes every
    output of the contract (``output_tensor`` widened back to float32).
    """
    if outside_domain(ctx, EP_SCATTER, domain):
        return
    out = ctx.outputs
    dtype = device_dtype(ctx.params["dtype"])
    recv_x = ctx.inputs["recv_x"].to(dtype)
    output = ctx.scratch(tuple(out["output_tensor"].shape), dtype)
    counts = ctx.inputs["num_recv_tokens_per_expert"]
    upstream().ep_scatter(
        recv_x,
        ctx.inputs["recv_x_scale"],
        ctx.inputs["recv_topk"],
        counts,
        counts,
        out["expert_start_loc"],
        output,
        out["output_tensor_scale"],
        out["m_indices"],
        out["output_index"],
    )
    out["output_tensor"].copy_(output)


TARGET = with_domain(EP_SCATTER, "sglang-ep-scatter", sglang_ep_scatter, f"{RELEASE} {SOURCE} ep_scatter", domain)
