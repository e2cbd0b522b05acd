"""Launching a kernel on poisoned buffers and running an oracle, in this process.

The two steps every execution of a case takes, shared by the worker's
:class:`~moefuzz.worker.CaseRunner` and by kernel tests (the targets' own, or a user's). Imports
torch; never imported by the campaign's parent process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from moefuzz.case import Case
from moefuzz.launch import LaunchContext, poisoned
from moefuzz.oob import checked_memory
from moefuzz.target import OutputSpec


def launch_kernel(
    kernel: Callable[[LaunchContext], None],
    output_specs: Mapping[str, OutputSpec],
    case: Case,
    device: torch.device,
    config: Mapping[str, int] | None = None,
    check_memory: bool | None = None,
) -> dict[str, np.ndarray]:
    """The ``tri_*`` outputs of ``kernel`` on ``case``.

    Copies the case's arrays to ``device``, allocates every output of ``output_specs`` filled
    with poison, launches, and copies the outputs back (which waits for the device).

    ``check_memory`` (default: on for the CPU, where Triton kernels run in the interpreter)
    checks every access of the kernel's Triton launches against its inputs, outputs, scratch and
    launch arguments (:func:`moefuzz.oob.checked_memory`).

    Raises:
        OutOfBoundsAccess: with ``check_memory``, before an access outside every buffer (inside
            the interpreter's ``InterpreterError``; :func:`moefuzz.oob.find_out_of_bounds`).
        Whatever the kernel raises (a CUDA error surfaces here at the latest).
    """
    inputs = {name: torch.from_numpy(array).to(device) for name, array in case.arrays.items()}
    outputs = {name: poisoned(spec.shape, getattr(torch, spec.dtype), device) for name, spec in output_specs.items()}
    ctx = LaunchContext(inputs, outputs, case.params, device, dict(config or {}))
    if check_memory is None:
        check_memory = device.type == "cpu"
    guard: AbstractContextManager[Any] = checked_memory(lambda: launch_tensors(ctx)) if check_memory else nullcontext()
    with guard:
        kernel(ctx)
    return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}


def launch_tensors(ctx: LaunchContext) -> dict[str, torch.Tensor]:
    """Every tensor of ``ctx`` by the name a report gives it: the input's or output's name
    (``outputs.<name>`` when an input has it too), ``scratch[i]`` for scratch buffers."""
    named = dict(ctx.inputs)
    for name, tensor in ctx.outputs.items():
        named[f"outputs.{name}" if name in named else name] = tensor
    for i, tensor in enumerate(ctx.scratch_buffers):
        named[f"scratch[{i}]"] = tensor
    return named


def oracle_outputs(oracle: Callable[..., Mapping[str, torch.Tensor]], case: Case) -> dict[str, np.ndarray]:
    """The ``ref_*`` outputs of a plain-torch ``oracle`` on ``case``, on the CPU."""
    inputs = {name: torch.from_numpy(array) for name, array in case.arrays.items()}
    return {name: tensor.numpy() for name, tensor in oracle(inputs, case.params).items()}
