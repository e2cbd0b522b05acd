"""moe_align_block_size: vLLM's expert grouping ahead of the fused-MoE GEMM, padded to blocks.

Files: ``contract.py`` (preconditions, buffer sizes, set-per-segment comparison, explanations),
``oracle.py`` (``moe_align_block_size_torch``), ``kernels.py`` (moefuzz's Triton kernel: the
correct default and the ``bug-negative-id`` model), ``strategy.py`` (cases from the engine's
routing tables and expert maps), ``shrink.py`` (map-, block- and padding-aware passes).
"""

from moefuzz.model.target import KernelSpec, Target
from moefuzz_targets.moe_align_block_size import contract, shrink
from moefuzz_targets.moe_align_block_size.domain import DOMAIN
from moefuzz_targets.moe_align_block_size.strategy import cases

TARGET = Target(
    name="moe_align_block_size",
    summary="Group routed items by (local) expert, each expert padded to whole blocks, with expert_map",
    source="vLLM csrc/moe/moe_align_sum_kernels.cu moe_align_block_size (ignore_invalid_experts=True)",
    strategy=cases,
    check=contract.check,
    output_specs=contract.output_specs,
    oracle="moefuzz_targets.moe_align_block_size.oracle:moe_align_block_size_torch",
    compare=contract.compare,
    explain=contract.explain,
    kernels=(
        KernelSpec(
            "triton",
            "moefuzz_targets.moe_align_block_size.kernels:moe_align_block_size_triton",
            "moefuzz's correct Triton kernel: count, scan, atomic placement",
        ),
        KernelSpec(
            "bug-negative-id",
            "moefuzz_targets.moe_align_block_size.kernels:moe_align_block_size_bug_negative_id",
            "a -1 id is not skipped: it is counted and placed as expert E-1",
            models_bug="vLLM moe_align_block_size small-batch kernel: tokens_cnts indexed by an unguarded -1 id",
        ),
    ),
    shrink_passes=shrink.PASSES,
    size=shrink.size,
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
    domain=DOMAIN,
)
