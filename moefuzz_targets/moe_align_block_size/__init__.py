"""moe_align_block_size: vLLM's expert grouping ahead of the fused-MoE GEMM, padded to blocks.

Files: ``contract.py`` (preconditions, buffer sizes, set-per-segment comparison, explanations),
``oracle.py`` (``moe_align_block_size_torch``), ``kernels.py`` (moefuzz's Triton kernel: the
correct default and the ``bug-negative-id`` model), ``cuda/`` and ``cuda_kernels.py`` (the same
structure in CUDA C++, with ``bug-cuda-negative-id`` and ``bug-cuda-smem-experts``), ``strategy.py``
(cases from the engine's routing tables and expert maps), ``shrink.py`` (map-, block- and padding-aware passes).
"""

from moefuzz.model.convention import conventional_target, kernel
from moefuzz_targets.moe_align_block_size import cuda

TARGET = conventional_target(
    __name__,
    summary="Group routed items by (local) expert, each expert padded to whole blocks, with expert_map",
    source="vLLM csrc/moe/moe_align_sum_kernels.cu moe_align_block_size (ignore_invalid_experts=True)",
    kernels=(
        kernel(
            "triton",
            "moefuzz's correct Triton kernel: count, scan, atomic placement",
        ),
        kernel(
            "bug-negative-id",
            "a -1 id is not skipped: it is counted and placed as expert E-1",
            models_bug="vLLM moe_align_block_size small-batch kernel: tokens_cnts indexed by an unguarded -1 id",
        ),
        kernel(
            "cuda",
            "moefuzz's correct CUDA kernels (cuda/moe_align_block_size.cu): per-thread counts, cumsum, padding",
            entry="moefuzz_targets.moe_align_block_size.cuda_kernels:moe_align_block_size_cuda",
            build=cuda.BUILD,
        ),
        kernel(
            "bug-cuda-negative-id",
            "CUDA: only id >= E is skipped; a -1 id indexes the per-thread counters and the cumsum",
            models_bug="vLLM moe_align_sum_kernels.cu: `if (expert_id >= num_experts) continue;` lets -1 through",
            entry="moefuzz_targets.moe_align_block_size.cuda_kernels:moe_align_block_size_cuda_bug_negative_id",
            build=cuda.BUILD_NEGATIVE_ID,
        ),
        kernel(
            "bug-cuda-smem-experts",
            "CUDA: the per-thread-count kernel for any E; its shared memory grows with E and the launch fails",
            models_bug="vLLM moe_align_sum_kernels.cu small-batch kernel without its E <= 64 guard: "
            "((threads + 1) * E) ints of shared memory",
            entry="moefuzz_targets.moe_align_block_size.cuda_kernels:moe_align_block_size_cuda_bug_smem_experts",
            build=cuda.BUILD_SMEM_EXPERTS,
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
)
