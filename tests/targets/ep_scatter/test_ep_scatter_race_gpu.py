"""The LightLLM stale start-offset read on a GPU: schedule perturbation exposes it, the correct
kernel stays clean under the same perturbation. Configurations from benchmarks/race_rate.py on an
H100 (docs/gpu-races.md): at num_warps=32 the model read a stale start in 148 of 200 launches
with the -1 poison at E=128; the correct kernel passed 200 of 200 with side-stream stress."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moefuzz.execute.perturb import Perturbation, plan_perturbations
from moefuzz_targets.ep_scatter import TARGET
from moefuzz_targets.ep_scatter.strategy import make_case

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="a cross-warp race needs a CUDA device"),
]


def _case(experts: int):
    return make_case(np.arange(experts, dtype=np.int32)[:, None], experts, 128, "bf16", seed=0)


def _runner(kernel: str):
    from moefuzz.runtime.worker import CaseRunner

    return CaseRunner("ep_scatter", kernel, "cuda")


def test_the_stale_start_read_fires_at_32_warps_with_the_minus_one_poison():
    plan = [Perturbation({"num_warps": 32}, "minus_one", seed) for seed in range(50)]
    outcome = _runner("bug-stale-start-loc").run_plan(_case(128), plan)
    assert outcome.kind == "divergence" and outcome.rate.failures >= 5, outcome


@pytest.mark.parametrize("experts", [64, 256, 512])
def test_the_correct_scatter_passes_every_perturbed_launch(experts):
    plan = plan_perturbations(TARGET.launch_knobs, 40, seed=experts)
    plan += [
        Perturbation({"num_warps": 32}, poison, seed, True) for seed, poison in enumerate(("default", "minus_one"))
    ]
    outcome = _runner("triton").run_plan(_case(experts), plan)
    assert outcome.kind == "pass" and outcome.runs == len(plan), outcome
