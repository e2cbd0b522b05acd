"""Launching a kernel on poisoned buffers and running an oracle, in this process.

The two steps every execution of a case takes, shared by the worker's
:class:`~moefuzz.runtime.worker.CaseRunner` and by kernel tests (the targets' own, or a user's). Imports
torch; never imported by the campaign's parent process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from moefuzz.execute.launch import LaunchContext, poisoned
from moefuzz.execute.oob import checked_memory
from moefuzz.model.case import Case
from moefuzz.model.target import OutputSpec


def launch_kernel(
    kernel: Callable[[LaunchContext], None],
    output_specs: Mapping[str, OutputSpec],
    case: Case,
    device: torch.device,
    config: Mapping[str, int] | None = None,
    poison: str = "default",
    seed: int = 0,
    stress: bool = False,
    check_memory: bool | None = None,
) -> dict[str, np.ndarray]:
    """The ``tri_*`` outputs of ``kernel`` on ``case``.

    Copies the case's arrays to ``device``, allocates every output of ``output_specs`` filled
    with the poison of ``poison`` (:data:`moefuzz.execute.perturb.POISONS`; ``seed`` for ``random``),
    launches with the launch knobs ``config``, and copies the outputs back (which waits for the
    device: :func:`copy_back`). With ``stress`` on a CUDA device, memory-bound work queued on a side stream runs
    during the launch (:func:`side_stream_stress`).

    ``check_memory`` (default: on for the CPU, where Triton kernels run in the interpreter)
    checks every access of the kernel's Triton launches against its inputs, outputs, scratch and
    launch arguments (:func:`moefuzz.execute.oob.checked_memory`).

    Raises:
        OutOfBoundsAccess: with ``check_memory``, before an access outside every buffer (inside
            the interpreter's ``InterpreterError``; :func:`moefuzz.execute.oob.find_out_of_bounds`).
        Whatever the kernel raises (a CUDA error surfaces here at the latest).
    """
    inputs = {name: torch.from_numpy(array).to(device) for name, array in case.arrays.items()}
    outputs = {
        name: poisoned(spec.shape, getattr(torch, spec.dtype), device, poison, seed + index)
        for index, (name, spec) in enumerate(output_specs.items())
    }
    ctx = LaunchContext(inputs, outputs, case.params, device, dict(config or {}), poison, seed)
    if check_memory is None:
        check_memory = device.type == "cpu"
    guard: AbstractContextManager[Any] = checked_memory(lambda: launch_tensors(ctx)) if check_memory else nullcontext()
    stressed: AbstractContextManager[Any] = (
        side_stream_stress(device) if stress and device.type == "cuda" else nullcontext()
    )
    with guard, stressed:
        kernel(ctx)
    return copy_back(outputs, device)


def copy_back(outputs: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, np.ndarray]:
    """Every tensor of ``outputs`` as a host array, once the work queued on ``device``'s current
    stream is done (what ``tensor.cpu()`` waits for; work on another stream that the current one
    does not wait for is not waited for either).

    On a CUDA device the copies go to pinned host buffers without blocking, then the stream is
    synchronized once: one wait instead of one per output. A kernel's asynchronous CUDA error
    (an illegal memory access) is raised by that synchronize.
    """
    if device.type != "cuda":
        return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}
    host = {}
    for name, tensor in outputs.items():
        host[name] = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host[name].copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(device).synchronize()
    return {name: tensor.numpy() for name, tensor in host.items()}


#: Elements of each side-stream stress buffer (float32: 64 MiB each, three of them).
STRESS_ELEMENTS = 16 << 20
#: Passes of the stress loop queued before the launch: several times a typical kernel's length.
STRESS_PASSES = 6
_stress_buffers: dict[torch.device, tuple[torch.cuda.Stream, list[torch.Tensor]]] = {}


@contextlib.contextmanager
def side_stream_stress(device: torch.device) -> Iterator[None]:
    """Queue memory-bound elementwise work on a side stream, then run the body (the kernel
    launch) on the current stream while it executes; the current stream waits for the side
    stream on exit. The buffers (192 MiB) are allocated once per device and process."""
    if device not in _stress_buffers:
        buffers = [torch.rand(STRESS_ELEMENTS, device=device) for _ in range(3)]
        _stress_buffers[device] = (torch.cuda.Stream(device), buffers)
    side, (a, b, c) = _stress_buffers[device]
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(STRESS_PASSES):
            torch.add(a, b, out=c)
            torch.mul(c, 0.5, out=a)
    try:
        yield
    finally:
        torch.cuda.current_stream(device).wait_stream(side)


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
