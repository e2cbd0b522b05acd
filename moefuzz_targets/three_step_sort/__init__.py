"""three_step_sort: the expert-map sort of TensorRT-LLM / FlashInfer's cutlass fused MoE.

Files: ``contract.py`` (preconditions, output specs, comparison, explanations), ``oracle.py``
(``three_step_sort_torch``), ``kernels.py`` (moefuzz's Triton kernels: the correct default and
the ``bug-duplicate-topk`` model), ``strategy.py`` (cases from the engine's routing tables).
"""

from moefuzz.model.convention import conventional_target, kernel

TARGET = conventional_target(
    __name__,
    summary="MoE permutation prologue: expert offsets and both row maps (fused T<=256, three-step T>256)",
    source="TensorRT-LLM/FlashInfer cutlass_fused_moe_kernels.cuh threeStepBuildExpertMapsSortFirstToken",
    kernels=(
        kernel(
            "triton",
            "moefuzz's correct Triton kernels, fused and three-step paths",
        ),
        kernel(
            "bug-duplicate-topk",
            "three-step path counts only the first of repeated experts in a token's top-k",
            models_bug="flashinfer-ai/flashinfer#3011: break after the first top-k match (T > 256)",
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
)
