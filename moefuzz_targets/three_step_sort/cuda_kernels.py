"""moefuzz's CUDA three-step sort (``cuda/three_step_sort.cu``) as kernel entries.

Same contract and buffers as ``kernels.py``; the compiled extension comes from moefuzz's build
cache (:func:`moefuzz.execute.cuda_compile.load_extension`), built before the workers start::

    token_selected_experts           [T, K] int32
    expert_first_token_offset        [E_local + 1] int64
    permuted_row_to_unpermuted_row   [T * K] int32
    unpermuted_row_to_permuted_row   [T * K] int32
    permuted_token_selected_experts  [T * K] int32
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moefuzz.execute.cuda_build import CudaBuild
    from moefuzz.execute.launch import LaunchContext

#: Tokens per block of the three-step path, and the most the fused single-block path takes.
BLOCK_TOKENS = 256


def _launch(ctx: LaunchContext, build: CudaBuild) -> None:
    import torch

    from moefuzz.execute.cuda_compile import load_extension

    ids = ctx.inputs["token_selected_experts"].contiguous()
    out = ctx.outputs
    num_tokens, top_k = ids.shape
    start = int(ctx.params["start_expert"])
    e_local = int(ctx.params["end_expert"]) - start
    if not 1 <= top_k <= 8 or not 0 <= e_local <= 1024:
        raise ValueError(f"three_step_sort CUDA kernels take K <= 8 and E_local <= 1024, got {(top_k, e_local)!r}")
    if num_tokens == 0 or e_local == 0:
        out["expert_first_token_offset"].zero_()
        return
    blocks = -(-num_tokens // BLOCK_TOKENS) if num_tokens > BLOCK_TOKENS else 0
    counts = ctx.scratch((e_local * blocks,), torch.int32)
    base = ctx.scratch((e_local * blocks,), torch.int32)
    rank = ctx.scratch((num_tokens * top_k if blocks else 0,), torch.int32)
    load_extension(build).three_step_sort(
        ids,
        out["expert_first_token_offset"],
        out["permuted_row_to_unpermuted_row"],
        out["unpermuted_row_to_permuted_row"],
        out["permuted_token_selected_experts"],
        counts,
        base,
        rank,
        start,
        e_local,
    )


def three_step_sort_cuda(ctx: LaunchContext) -> None:
    """moefuzz's correct CUDA three-step sort (fused block sort for T <= 256, three steps above).

    Raises:
        ValueError: K outside 1..8 or E_local above 1024.
        BuildError: the extension could not be built (normally built before the campaign).
    """
    from moefuzz_targets.three_step_sort.cuda import BUILD

    _launch(ctx, BUILD)


def three_step_sort_cuda_bug_first_match(ctx: LaunchContext) -> None:
    """Bug model of flashinfer-ai/flashinfer#3011 in CUDA: for T > 256 a token's loop over its
    top-k stops at the first slot matching the expert, so a repeated expert counts once and its
    later slots get no permuted row. Same arguments and errors as :func:`three_step_sort_cuda`."""
    from moefuzz_targets.three_step_sort.cuda import BUILD_FIRST_MATCH

    _launch(ctx, BUILD_FIRST_MATCH)
