"""moe_permute: vLLM's expert-map permutation of the tokens a one-sided dispatch delivers.

Files: ``contract.py`` (preconditions, derived params, output specs, comparison, explanations),
``oracle.py`` (``moe_permute_torch``), ``kernels.py`` (moefuzz's Triton kernel: the correct
default, the ``bug-sentinel-minus-one`` model and its out-of-bounds twin
``bug-sentinel-minus-one-oob``), ``strategy.py`` (cases from the engine's padded-rank dispatch
strategy), ``shrink.py`` (passes that keep the padded-rank layout).
"""

from moefuzz.model.target import KernelSpec, Target
from moefuzz_targets.moe_permute import contract, shrink
from moefuzz_targets.moe_permute.domain import DOMAIN
from moefuzz_targets.moe_permute.strategy import cases

TARGET = Target(
    name="moe_permute",
    summary="EP permutation after a one-sided dispatch: expert_map lookup over padded ranks, offsets, both maps",
    source="vLLM csrc/moe/moe_permute_unpermute_op.cu moe_permute (preprocessTopkIdKernel, sortAndScanExpert)",
    strategy=cases,
    check=contract.check,
    output_specs=contract.output_specs,
    oracle="moefuzz_targets.moe_permute.oracle:moe_permute_torch",
    compare=contract.compare,
    explain=contract.explain,
    kernels=(
        KernelSpec(
            "triton",
            "moefuzz_targets.moe_permute.kernels:moe_permute_triton",
            "moefuzz's correct Triton counting sort with a guarded expert_map lookup",
        ),
        KernelSpec(
            "bug-sentinel-minus-one",
            "moefuzz_targets.moe_permute.kernels:moe_permute_bug_sentinel_minus_one",
            "unguarded expert_map[id]: a -1 pad reads expert_map[E-1] and becomes a local item",
            models_bug="vllm-project/vllm#42034: one-sided dispatch pads with -1, preprocessTopkIdKernel indexes "
            "expert_map with it",
        ),
        KernelSpec(
            "bug-sentinel-minus-one-oob",
            "moefuzz_targets.moe_permute.kernels:moe_permute_bug_sentinel_minus_one_oob",
            "unguarded expert_map[id] read as the GPU reads it: a -1 pad loads the int32 before expert_map",
            models_bug="vllm-project/vllm#42034 as the IMA the report saw: expert_map[-1] is outside the map "
            "(found on the CPU as crash:out-of-bounds-load; undefined on a GPU)",
        ),
    ),
    shrink_passes=shrink.passes(),
    size=shrink.size,
    derive=contract.derive,
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
    domain=DOMAIN,
)
