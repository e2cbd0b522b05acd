"""Ground truth of ep_scatter's bug models for the benchmarks: where each bug lives and when it fires.

Magma's levels as numpy predicates on a case, no kernel run (see
:class:`~moefuzz_targets.shared.ground_truth.BugModel`): ``reached`` (the case takes the bug's
code path in ``kernels.py``), ``triggered`` (the case meets the bug's condition), and the smallest
failing case known, by hand. ``benchmarks.bug_models`` collects them; the engine never imports
this module.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz_targets.shared.ground_truth import BugModel


# Models ModelTC/LightLLM _fwd_kernel_ep_scatter_1's cross-warp stale read of expert_start_loc
# (alibaba/rtp-llm#1098; seed lightllm-ep-scatter-stale-read.txt). A GPU race: the interpreter
# runs a program's operations in order and reads the right start.
def stale_start_reached(case: Case) -> bool:
    """Every case: each of the E programs of ``_expert_start_kernel`` (STALE_START_LOC) stores the
    prefix to ``expert_start_loc`` [E] int32 and loads its own start back, with no barrier."""
    return case.arrays["num_recv_tokens_per_expert"].shape[0] >= 1


def stale_start_triggered(case: Case) -> bool:
    """Exists (t, k): recv_topk[t, k] >= 0, i.e. some expert e has a_e > 0 aligned rows.

    From ``_expert_start_kernel``: a stale ``start`` is used only by the m_indices stores of the
    program's a_e rows, so a case can show it (a wrong m_indices row, or a wild store) only when
    some expert has items. Whether it does depends on the schedule and on the stale value (the
    buffer's old contents): on the CPU the bug model passes every case.
    ``recv_topk`` [N, K] int32, local ids or -1.
    """
    return bool((case.arrays["recv_topk"] >= 0).any())


def stale_start_minimum() -> Case:
    """(N, K, E, duplicates, distinct rows, -, sum |ids|, H) = (1, 1, 1, 0, 1, 0, 0, 1): one bf16
    token [1.0] on expert 0 (128 aligned rows). Its one program stores start 0 and reads it
    back: another warp may read the slot first. On an H200 (torch 2.11, triton 3.6) it failed at
    num_warps=32: crash:illegal-memory-access at the first launch with the default poison,
    divergence:m_indices in 1 of 200 with the -1 fill; 0 of 200 at num_warps 4, 8 and 16 (the
    correct kernel: 0 of 400 at 32). The fuzzer's shortest GPU reproducer was N = 1, K = 4, E = 9
    (docs/gpu-races.md)."""
    return Case(
        {
            "recv_x": np.ones((1, 1), dtype=np.float32),
            "recv_x_scale": np.zeros((1, 0), dtype=np.float32),
            "recv_topk": np.zeros((1, 1), dtype=np.int32),
            "num_recv_tokens_per_expert": np.full(1, 128, dtype=np.int32),
        },
        {"num_experts": 1, "dtype": "bf16"},
    )


# A domain-edge bug (issue 15): a prefix block sized for 512 local experts.
#: Local experts the ``bug-wide-local-experts`` prefix block holds (``kernels.NARROW_EXPERTS_BLOCK``).
WIDE_BLOCK = 512


def wide_reached(case: Case) -> bool:
    """E local > 512: experts from 512 on fall outside ``_expert_start_kernel``'s block."""
    return case.arrays["num_recv_tokens_per_expert"].shape[0] > WIDE_BLOCK


def wide_triggered(case: Case) -> bool:
    """E > 512 and some item on an expert below E - 1: expert e >= 512 reads its start as 0, so
    ``expert_start_loc[e]`` is wrong exactly when start_e > 0, i.e. an earlier expert has items;
    the last expert has the most earlier ones. ``recv_topk`` [N, K] int32, local ids or -1."""
    num_experts = case.arrays["num_recv_tokens_per_expert"].shape[0]
    ids = case.arrays["recv_topk"]
    return num_experts > WIDE_BLOCK and bool(((ids >= 0) & (ids < num_experts - 1)).any())


def wide_minimum() -> Case:
    """(N, K, E, duplicates, distinct rows, -, sum |ids|, H) = (1, 1, 513, 0, 1, 0, 0, 1): one
    bf16 token on expert 0 of 513; expert 512's cursor should be 128 (after expert 0's rows),
    the kernel leaves 0."""
    return Case(
        {
            "recv_x": np.ones((1, 1), dtype=np.float32),
            "recv_x_scale": np.zeros((1, 0), dtype=np.float32),
            "recv_topk": np.zeros((1, 1), dtype=np.int32),
            "num_recv_tokens_per_expert": np.array([128] + [0] * WIDE_BLOCK, dtype=np.int32),
        },
        {"num_experts": WIDE_BLOCK + 1, "dtype": "bf16"},
    )


BUG_MODELS: tuple[BugModel, ...] = (
    BugModel(
        "ep_scatter",
        "bug-stale-start-loc",
        stale_start_reached,
        stale_start_triggered,
        stale_start_minimum(),
        race=True,
        perturb=8,
    ),
    BugModel("ep_scatter", "bug-wide-local-experts", wide_reached, wide_triggered, wide_minimum()),
)
