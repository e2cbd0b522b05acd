"""Launching a kernel on poisoned buffers and running an oracle, in this process.

The two steps every execution of a case takes, shared by the worker's
:class:`~moefuzz.worker.CaseRunner` and by kernel tests (the targets' own, or a user's). Imports
torch; never imported by the campaign's parent process.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Mapping
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
    poison: str = "default",
    seed: int = 0,
    stress: bool = False,
    check_memory: bool | None = None,
) -> dict[str, np.ndarray]:
    """The ``tri_*`` outputs of ``kernel`` on ``case``.

    Copies the case's arrays to ``device`` (:func:`copy_in`), allocates every output of ``output_specs`` filled
    with the poison of ``poison`` (:data:`moefuzz.perturb.POISONS`; ``seed`` for ``random``),
    launches with the launch knobs ``config``, and copies the outputs back (which waits for the
    device: :func:`copy_back`). With ``stress`` on a CUDA device, memory-bound work queued on a side stream runs
    during the launch (:func:`side_stream_stress`).

    ``check_memory`` (default: on for the CPU, where Triton kernels run in the interpreter)
    checks every access of the kernel's Triton launches against its inputs, outputs, scratch and
    launch arguments (:func:`moefuzz.oob.checked_memory`).

    Raises:
        OutOfBoundsAccess: with ``check_memory``, before an access outside every buffer (inside
            the interpreter's ``InterpreterError``; :func:`moefuzz.oob.find_out_of_bounds`).
        Whatever the kernel raises (a CUDA error surfaces here at the latest).
    """
    inputs = copy_in(case.arrays, device)
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


#: How a launch's arrays cross between host and device on CUDA (the A/B switch of changes 8 and
#: 11 in benchmarks-notes.md), from ``MOEFUZZ_COPY_BACK`` at import (what reaches workers) or
#: set in-process (``benchmarks/case_profile.py``):
#:
#: - ``plain``: ``torch.from_numpy(array).to(device)`` an input, ``tensor.cpu()`` an output:
#:   a copy and a wait each.
#: - ``pinned``: inputs as ``plain``; outputs into new pinned host tensors without blocking,
#:   then one synchronize (torch's pinned allocator a buffer).
#: - ``staged``: both ways through two pinned host buffers of this process, allocated once and
#:   reused by every launch: inputs are packed into one and copied without blocking, outputs
#:   copied into the other without blocking, then one synchronize.
COPY_MODES = ("plain", "pinned", "staged")
COPY_MODE = os.environ.get("MOEFUZZ_COPY_BACK") or "pinned"
#: Offsets of the arrays packed into a staging buffer are multiples of this (bytes).
STAGING_ALIGN = 64


class _Staging:
    """A pinned host buffer of bytes that grows to the largest launch seen (doubling, from
    1 MiB) and is reused, with a flag that says copies into or out of it may be in flight."""

    def __init__(self) -> None:
        self._buffer: torch.Tensor | None = None
        self.in_flight = False

    def views(self, arrays: Mapping[str, tuple[tuple[int, ...], torch.dtype]]) -> dict[str, torch.Tensor]:
        """A host tensor for each ``name: (shape, dtype)``, packed into the buffer at aligned
        offsets; what the previous launch staged is overwritten."""
        sizes = [math.prod(shape) * dtype.itemsize for shape, dtype in arrays.values()]
        total = sum(-(-size // STAGING_ALIGN) * STAGING_ALIGN for size in sizes)
        if self._buffer is None or self._buffer.numel() < total:
            capacity = max(1 << 20, 1 << max(total - 1, 1).bit_length())
            self._buffer = torch.empty(capacity, dtype=torch.uint8, pin_memory=True)
        views, offset = {}, 0
        for (name, (shape, dtype)), size in zip(arrays.items(), sizes, strict=True):
            views[name] = self._buffer[offset : offset + size].view(dtype).view(shape)
            offset += -(-size // STAGING_ALIGN) * STAGING_ALIGN
        return views


_staging: dict[tuple[torch.device, str], _Staging] = {}


def _staging_of(device: torch.device, way: str) -> _Staging:
    """This process's staging buffer for copies to (``in``) or from (``out``) ``device``; if a
    launch left copies through it in flight (it raised before its copy back), waits for them
    first, so that no queued copy reads or writes what the next launch stages."""
    staging = _staging.setdefault((device, way), _Staging())
    if staging.in_flight:
        torch.cuda.current_stream(device).synchronize()
        staging.in_flight = False
    return staging


def _copy_mode() -> str:
    if COPY_MODE not in COPY_MODES:
        raise ValueError(f"MOEFUZZ_COPY_BACK={COPY_MODE!r}: expected one of {', '.join(COPY_MODES)}")
    return COPY_MODE


def copy_in(arrays: Mapping[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """Every array of ``arrays`` as a new tensor on ``device`` (same name, shape and dtype);
    each its own allocation, so that a read past one is a read past an allocation.

    Under the ``staged`` :data:`COPY_MODE` on CUDA the copies do not block: the kernel's
    launches queue behind them on the current stream, and :func:`copy_back` waits.

    Raises:
        ValueError: ``MOEFUZZ_COPY_BACK`` is none of :data:`COPY_MODES`.
    """
    if device.type != "cuda" or _copy_mode() != "staged":
        return {name: torch.from_numpy(array).to(device) for name, array in arrays.items()}
    host = {name: torch.from_numpy(array) for name, array in arrays.items()}
    staging = _staging_of(device, "in")
    views = staging.views({name: (tuple(t.shape), t.dtype) for name, t in host.items()})
    tensors = {}
    for name, tensor in host.items():
        views[name].copy_(tensor)
        tensors[name] = torch.empty_like(tensor, device=device)  # its strides too, as .to() keeps them
        tensors[name].copy_(views[name], non_blocking=True)
        staging.in_flight = True
    return tensors


def copy_back(outputs: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, np.ndarray]:
    """Every tensor of ``outputs`` as a host array, once the work queued on ``device``'s current
    stream is done (what ``tensor.cpu()`` waits for; work on another stream that the current one
    does not wait for is not waited for either).

    On a CUDA device (:data:`COPY_MODE` ``pinned`` or ``staged``) the copies go to pinned host
    memory without blocking, then the stream is synchronized once: one wait instead of one per
    output (benchmarks-notes.md, changes 8 and 11). A kernel's asynchronous CUDA error (an
    illegal memory access) is raised by that synchronize.

    Raises:
        ValueError: ``MOEFUZZ_COPY_BACK`` is none of :data:`COPY_MODES`.
    """
    mode = _copy_mode() if device.type == "cuda" else "plain"
    if mode == "plain":
        return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}
    if mode == "pinned":
        host = {}
        for name, tensor in outputs.items():
            host[name] = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            host[name].copy_(tensor, non_blocking=True)
        torch.cuda.current_stream(device).synchronize()
        return {name: tensor.numpy() for name, tensor in host.items()}
    staging = _staging_of(device, "out")
    views = staging.views({name: (tuple(t.shape), t.dtype) for name, t in outputs.items()})
    for name, tensor in outputs.items():
        views[name].copy_(tensor, non_blocking=True)
        staging.in_flight = True
    torch.cuda.current_stream(device).synchronize()
    staging.in_flight = False
    if (device, "in") in _staging:
        _staging[(device, "in")].in_flight = False
    return {name: view.numpy().copy() for name, view in views.items()}  # the buffer is reused


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
