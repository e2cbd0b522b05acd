"""Launching a kernel on poisoned buffers and running an oracle, in this process.

The two steps every execution of a case takes, shared by the worker's
:class:`~moefuzz.worker.CaseRunner` and by kernel tests (the targets' own, or a user's). Imports
torch; never imported by the campaign's parent process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from moefuzz.case import Case
from moefuzz.launch import LaunchContext, poisoned
from moefuzz.target import OutputSpec


def launch_kernel(
    kernel: Callable[[LaunchContext], None],
    output_specs: Mapping[str, OutputSpec],
    case: Case,
    device: torch.device,
    config: Mapping[str, int] | None = None,
    poison: str = "default",
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The ``tri_*`` outputs of ``kernel`` on ``case``.

    Copies the case's arrays to ``device``, allocates every output of ``output_specs`` filled
    with the poison of ``poison`` (:data:`moefuzz.perturb.POISONS`; ``seed`` for ``random``),
    launches with the launch knobs ``config``, and copies the outputs back (which waits for the
    device).

    Raises:
        Whatever the kernel raises (a CUDA error surfaces here at the latest).
    """
    inputs = {name: torch.from_numpy(array).to(device) for name, array in case.arrays.items()}
    outputs = {
        name: poisoned(spec.shape, getattr(torch, spec.dtype), device, poison, seed + index)
        for index, (name, spec) in enumerate(output_specs.items())
    }
    kernel(LaunchContext(inputs, outputs, case.params, device, dict(config or {}), poison, seed))
    return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}


def oracle_outputs(oracle: Callable[..., Mapping[str, torch.Tensor]], case: Case) -> dict[str, np.ndarray]:
    """The ``ref_*`` outputs of a plain-torch ``oracle`` on ``case``, on the CPU."""
    inputs = {name: torch.from_numpy(array) for name, array in case.arrays.items()}
    return {name: tensor.numpy() for name, tensor in oracle(inputs, case.params).items()}
