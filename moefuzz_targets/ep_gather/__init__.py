"""ep_gather: expert-grouped rows reduced back to one weighted row per received token (LightLLM).

Files: ``contract.py`` (preconditions, output spec, comparison within a stated bf16 tolerance,
explanations), ``oracle.py`` (``ep_gather_torch``), ``kernels.py`` (moefuzz's Triton kernel: the
correct default and the ``bug-minus-one-slot`` model), ``strategy.py`` (cases laid out by the
oracle scatter of ep_scatter, with what a scatter leaves unwritten), ``shrink.py`` (row and
hidden-column passes).
"""

from moefuzz.model.case import Case
from moefuzz.model.convention import conventional_target, kernel
from moefuzz.shrinking.routing import routing_passes, routing_size
from moefuzz_targets.ep_gather.shrink import GATHER_PASSES
from moefuzz_targets.ep_gather.strategy import LAYOUT

_routing_size = routing_size(LAYOUT)


def size(case: Case) -> tuple[int, ...]:
    """The routing order (tokens, K, experts...), then the hidden size, then input rows M."""
    values = case.arrays["input_tensor"]
    return (*_routing_size(case), int(values.shape[1]), int(values.shape[0]))


TARGET = conventional_target(
    __name__,
    summary="EP gather: weighted sum of each token's expert rows (skipping -1 slots), fp32 then bf16",
    source="LightLLM deepep_scatter_gather.py ep_gather (_fwd_kernel_ep_gather); SGLang, vLLM, RTP-LLM copies",
    kernels=(
        kernel(
            "triton",
            "moefuzz's correct Triton kernel: 64 tokens x 128 columns a program, fp32 accumulation",
        ),
        kernel(
            "bug-minus-one-slot",
            "sums the -1 slots too, through the input_index entries the scatter never wrote",
            models_bug="vLLM deep_gemm_utils apply_expert_map without its `expert_id != -1` guard: -1 became "
            "expert_map[-1] and passed the gather's `expert_id >= 0` test",
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
    shrink_passes=(*routing_passes(LAYOUT), *GATHER_PASSES),
    size=size,
)
