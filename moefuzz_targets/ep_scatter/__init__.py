"""ep_scatter: DeepEP-received tokens expanded into expert-grouped rows for DeepGEMM (LightLLM).

Files: ``contract.py`` (preconditions, output specs, set-wise comparison, explanations),
``oracle.py`` (``ep_scatter_torch``), ``kernels.py`` (moefuzz's Triton kernels: the correct
default, the ``bug-stale-start-loc`` and ``bug-wide-local-experts`` models), ``domain.py`` (its
input domain), ``strategy.py`` (cases from the engine's
expert-parallel strategies), ``shrink.py`` (the hidden-size pass, shared with ep_gather).
"""

from moefuzz.model.case import Case
from moefuzz.model.convention import conventional_target, kernel
from moefuzz.shrinking.routing import routing_passes, routing_size
from moefuzz_targets.ep_scatter.shrink import SCATTER_HIDDEN_PASS
from moefuzz_targets.ep_scatter.strategy import LAYOUT

_routing_size = routing_size(LAYOUT)


def size(case: Case) -> tuple[int, ...]:
    """The routing order (tokens, K, experts...), then the hidden size."""
    return (*_routing_size(case), int(case.arrays["recv_x"].shape[1]))


TARGET = conventional_target(
    __name__,
    summary="EP scatter: received tokens to 128-aligned expert segments, m_indices, output_index (bf16/fp8)",
    source="LightLLM deepep_scatter_gather.py ep_scatter (_fwd_kernel_ep_scatter_1/2); SGLang, vLLM, RTP-LLM copies",
    kernels=(
        kernel(
            "triton",
            "moefuzz's correct Triton kernels: register prefix, atomic row scatter",
        ),
        kernel(
            "bug-stale-start-loc",
            "stores the prefix to expert_start_loc and reads its own start back (a GPU race; right on CPU)",
            models_bug="LightLLM _fwd_kernel_ep_scatter_1: cross-warp stale read of expert_start_loc "
            "(alibaba/rtp-llm#1098)",
        ),
        kernel(
            "bug-wide-local-experts",
            "prefix block of 512 experts: with E local > 512 the later experts start at row 0",
            models_bug="a domain-edge bug: a kernel sized for E local <= 512 (wrong only past it)",
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16, 32)},
    shrink_passes=(*routing_passes(LAYOUT), SCATTER_HIDDEN_PASS),
    size=size,
)
