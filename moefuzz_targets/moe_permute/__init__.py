"""moe_permute: vLLM's expert-map permutation of the tokens a one-sided dispatch delivers.

Files: ``contract.py`` (preconditions, derived params, output specs, comparison, explanations),
``oracle.py`` (``moe_permute_torch``), ``kernels.py`` (moefuzz's Triton kernel: the correct
default, the ``bug-sentinel-minus-one`` model and its out-of-bounds twin
``bug-sentinel-minus-one-oob``), ``strategy.py`` (cases from the engine's padded-rank dispatch
strategy), ``shrink.py`` (passes that keep the padded-rank layout).
"""

from moefuzz.model.convention import conventional_target, kernel

TARGET = conventional_target(
    __name__,
    summary="EP permutation after a one-sided dispatch: expert_map lookup over padded ranks, offsets, both maps",
    source="vLLM csrc/moe/moe_permute_unpermute_op.cu moe_permute (preprocessTopkIdKernel, sortAndScanExpert)",
    kernels=(
        kernel(
            "triton",
            "moefuzz's correct Triton counting sort with a guarded expert_map lookup",
        ),
        kernel(
            "bug-sentinel-minus-one",
            "unguarded expert_map[id]: a -1 pad reads expert_map[E-1] and becomes a local item",
            models_bug="vllm-project/vllm#42034: one-sided dispatch pads with -1, preprocessTopkIdKernel indexes "
            "expert_map with it",
        ),
        kernel(
            "bug-sentinel-minus-one-oob",
            "unguarded expert_map[id] read as the GPU reads it: a -1 pad loads the int32 before expert_map",
            models_bug="vllm-project/vllm#42034 as the IMA the report saw: expert_map[-1] is outside the map "
            "(found on the CPU as crash:out-of-bounds-load; undefined on a GPU)",
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
)
