"""three_step_sort: the expert-map sort of TensorRT-LLM / FlashInfer's cutlass fused MoE.

Files: ``contract.py`` (preconditions, output specs, comparison, explanations), ``oracle.py``
(``three_step_sort_torch``), ``kernels.py`` (moefuzz's Triton kernels: the correct default and
the ``bug-duplicate-topk`` model), ``strategy.py`` (cases from the engine's routing tables).
"""

from moefuzz.model.target import KernelSpec, Target
from moefuzz.shrinking.routing import routing_passes, routing_size
from moefuzz_targets.three_step_sort import contract
from moefuzz_targets.three_step_sort.domain import DOMAIN
from moefuzz_targets.three_step_sort.strategy import LAYOUT, cases

TARGET = Target(
    name="three_step_sort",
    summary="MoE permutation prologue: expert offsets and both row maps (fused T<=256, three-step T>256)",
    source="TensorRT-LLM/FlashInfer cutlass_fused_moe_kernels.cuh threeStepBuildExpertMapsSortFirstToken",
    strategy=cases,
    check=contract.check,
    output_specs=contract.output_specs,
    oracle="moefuzz_targets.three_step_sort.oracle:three_step_sort_torch",
    compare=contract.compare,
    explain=contract.explain,
    kernels=(
        KernelSpec(
            "triton",
            "moefuzz_targets.three_step_sort.kernels:three_step_sort_triton",
            "moefuzz's correct Triton kernels, fused and three-step paths",
        ),
        KernelSpec(
            "bug-duplicate-topk",
            "moefuzz_targets.three_step_sort.kernels:three_step_sort_bug_duplicate_topk",
            "three-step path counts only the first of repeated experts in a token's top-k",
            models_bug="flashinfer-ai/flashinfer#3011: break after the first top-k match (T > 256)",
        ),
    ),
    shrink_passes=routing_passes(LAYOUT),
    size=routing_size(LAYOUT),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
    domain=DOMAIN,
)
