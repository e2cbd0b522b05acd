"""moefuzz's CUDA moe_align_block_size (``cuda/moe_align_block_size.cu``) as kernel entries.

Same contract and buffers as ``kernels.py``; the compiled extension comes from moefuzz's build
cache (:func:`moefuzz.execute.cuda_compile.load_extension`), built before the workers start::

    topk_ids                [M, K] int32
    expert_map              [E] int32 (optional)
    sorted_token_ids        [max_num_tokens_padded] int32
    expert_ids              [cdiv(max_num_tokens_padded, B)] int32
    num_tokens_post_padded  [1] int32
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moefuzz.execute.cuda_build import CudaBuild
    from moefuzz.execute.launch import LaunchContext


def _launch(ctx: LaunchContext, build: CudaBuild) -> None:
    import torch

    from moefuzz.execute.cuda_compile import load_extension

    ids = ctx.inputs["topk_ids"].contiguous()
    expert_map = ctx.inputs.get("expert_map")
    out = ctx.outputs
    num_experts = int(ctx.params["num_experts"])
    block_size = int(ctx.params["block_size"])
    if not 1 <= num_experts <= 1024 or block_size < 1:
        raise ValueError(f"CUDA moe_align_block_size takes 1 <= E <= 1024, B >= 1: {(num_experts, block_size)!r}")
    if ids.numel() == 0:  # every buffer but the total is empty
        out["num_tokens_post_padded"].zero_()
        return
    no_map = torch.empty(0, dtype=torch.int32, device=ids.device)
    cursor = ctx.scratch((num_experts + 2,), torch.int32).zero_()
    error = load_extension(build).moe_align_block_size(
        ids,
        expert_map.contiguous() if expert_map is not None else no_map,
        out["sorted_token_ids"],
        out["expert_ids"],
        out["num_tokens_post_padded"],
        cursor,
        num_experts,
        block_size,
    )
    if error:  # a kernel did not launch: the extension returns the CUDA error rather than throwing
        raise RuntimeError(error)


def moe_align_block_size_cuda(ctx: LaunchContext) -> None:
    """moefuzz's correct CUDA moe_align_block_size: vLLM's small-batch kernel (per-thread counts
    in shared memory) for fewer than 1024 items and E <= 64, else shared counts, a block scan and
    atomic placement.

    Raises:
        ValueError: E outside 1..1024 or B < 1.
        RuntimeError: ``CUDA kernel launch failed: ...`` when a kernel could not be launched.
        BuildError: the extension could not be built (normally built before the campaign).
    """
    from moefuzz_targets.moe_align_block_size.cuda import BUILD

    _launch(ctx, BUILD)


def moe_align_block_size_cuda_bug_negative_id(ctx: LaunchContext) -> None:
    """Bug model of the unguarded -1 id in CUDA: only ``id >= num_experts`` is skipped, and a -1
    indexes the per-thread counters and the cumsum (see the ``.cu`` header for where it lands).
    Same arguments and errors as :func:`moe_align_block_size_cuda`."""
    from moefuzz_targets.moe_align_block_size.cuda import BUILD_NEGATIVE_ID

    _launch(ctx, BUILD_NEGATIVE_ID)


def moe_align_block_size_cuda_bug_smem_experts(ctx: LaunchContext) -> None:
    """Bug model of shared memory that grows with E: the small-batch kernel without its E <= 64
    guard asks for ((threads + 1) * E + E + 2) ints of shared memory, and past 48 KiB (E ~ 110)
    its launch fails: ``RuntimeError: CUDA kernel launch failed: ...``, a ``crash:launch-failure``.
    Same arguments and errors as :func:`moe_align_block_size_cuda`."""
    from moefuzz_targets.moe_align_block_size.cuda import BUILD_SMEM_EXPERTS

    _launch(ctx, BUILD_SMEM_EXPERTS)
