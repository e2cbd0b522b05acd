"""What a kernel sees when the engine launches it: device tensors, poisoned outputs, scratch.

Imported only in worker processes (it imports torch). A kernel entry is a function
``run(ctx: LaunchContext) -> None`` that reads ``ctx.inputs`` and writes every buffer of
``ctx.outputs``. Outputs and scratch come pre-filled with a poison value so that an entry the
kernel never writes shows up as a mismatch instead of as whatever the allocator left there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from moefuzz.execute.poison import FLOAT_POISON, INT_POISON
from moefuzz.model.case import Scalar


def poison_value(dtype: torch.dtype, pattern: str = "default") -> int | float:
    """The constant a buffer of ``dtype`` is filled with under ``pattern`` (one of
    :data:`moefuzz.execute.perturb.POISONS` except ``random``)."""
    if dtype == torch.bool:
        return True
    if dtype.is_floating_point:
        if pattern == "max":
            return float(torch.finfo(dtype).max)
        return -1.0 if pattern == "minus_one" else FLOAT_POISON
    if pattern == "max":
        return int(torch.iinfo(dtype).max)
    if pattern == "minus_one":
        return -1
    return INT_POISON if torch.iinfo(dtype).max >= INT_POISON else -1


def poisoned(
    shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, pattern: str = "default", seed: int = 0
) -> torch.Tensor:
    """A new tensor of ``shape`` and ``dtype`` on ``device``, every entry the poison of
    ``pattern`` (:data:`moefuzz.execute.perturb.POISONS`); ``random`` fills random bits from ``seed``
    (random finite values for float dtypes)."""
    if pattern != "random":
        return torch.full(shape, poison_value(dtype, pattern), dtype=dtype, device=device)
    generator = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        values = torch.randn(shape, generator=generator) * 1e3
    elif dtype == torch.bool:
        values = torch.randint(0, 2, shape, generator=generator).bool()
    else:
        info = torch.iinfo(dtype)
        values = torch.randint(max(info.min, -(2**62)), min(info.max, 2**62), shape, generator=generator)
    return values.to(dtype).to(device)


@dataclass
class LaunchContext:
    """The arguments of one kernel launch.

    Attributes:
        inputs: the case's arrays as tensors on ``device`` (same names, same dtypes).
        outputs: poisoned output buffers on ``device``, named and shaped by the target's
            ``output_specs``; the kernel must write every entry the contract specifies.
        params: the case's scalars.
        device: where the kernel runs (``cuda`` or ``cpu`` under ``TRITON_INTERPRET=1``).
        config: launch-configuration overrides (``num_warps``...) a kernel may honour.
        poison, seed: the fill pattern of outputs and scratch (see :func:`poisoned`).
        scratch_buffers: the buffers :meth:`scratch` handed out, in order (the out-of-bounds
            checker lets a kernel touch them).
    """

    inputs: Mapping[str, torch.Tensor]
    outputs: Mapping[str, torch.Tensor]
    params: Mapping[str, Scalar]
    device: torch.device
    config: Mapping[str, int] = field(default_factory=dict)
    poison: str = "default"
    seed: int = 0
    scratch_buffers: list[torch.Tensor] = field(default_factory=list)

    def scratch(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A poisoned scratch buffer on the context's device (the context's poison pattern)."""
        buffer = poisoned(shape, dtype, self.device, self.poison, self.seed + len(self.scratch_buffers))
        self.scratch_buffers.append(buffer)
        return buffer
