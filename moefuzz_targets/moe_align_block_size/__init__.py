"""moe_align_block_size: vLLM's expert grouping ahead of the fused-MoE GEMM, padded to blocks.

Files: ``contract.py`` (preconditions, buffer sizes, set-per-segment comparison, explanations),
``oracle.py`` (``moe_align_block_size_torch``), ``kernels.py`` (moefuzz's Triton kernel: the
correct default and the ``bug-negative-id`` model), ``strategy.py`` (cases from the engine's
routing tables and expert maps), ``shrink.py`` (map-, block- and padding-aware passes).
"""

from moefuzz.model.convention import conventional_target, kernel

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
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
)
