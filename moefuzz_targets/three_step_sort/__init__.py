"""three_step_sort: the expert-map sort of TensorRT-LLM / FlashInfer's cutlass fused MoE.

Files: ``contract.py`` (preconditions, output specs, comparison, explanations), ``oracle.py``
(``three_step_sort_torch``), ``kernels.py`` (moefuzz's Triton kernels: the correct default and
the ``bug-duplicate-topk`` model), ``cuda/`` and ``cuda_kernels.py`` (the same in CUDA C++, with
``bug-cuda-first-match``), ``strategy.py`` (cases from the engine's routing tables).
"""

from moefuzz.model.convention import conventional_target, kernel
from moefuzz_targets.three_step_sort import cuda

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
        kernel(
            "cuda",
            "moefuzz's correct CUDA kernels (cuda/three_step_sort.cu): block radix sort, T > 256 three steps",
            entry="moefuzz_targets.three_step_sort.cuda_kernels:three_step_sort_cuda",
            build=cuda.BUILD,
        ),
        kernel(
            "bug-cuda-first-match",
            "CUDA: a token's top-k loop stops at the first slot matching the expert (T > 256)",
            models_bug="flashinfer-ai/flashinfer#3011 as upstream wrote it: break in blockExpertPrefixSumKernel",
            entry="moefuzz_targets.three_step_sort.cuda_kernels:three_step_sort_cuda_bug_first_match",
            build=cuda.BUILD_FIRST_MATCH,
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
)
