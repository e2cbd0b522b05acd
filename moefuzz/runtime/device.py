"""The device a worker runs its cases on: which one (:func:`choose_device`), what it is
(:func:`describe_environment`), and whether its CUDA context still works after a crash
(:func:`context_works`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["choose_device", "context_works", "describe_environment"]


def describe_environment(device: str) -> dict[str, str]:
    """Versions and device name, recorded with every finding."""
    import numpy
    import torch
    import triton

    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "triton": triton.__version__,
        "numpy": numpy.__version__,
        "device": device,
    }
    if device == "cuda":
        env["device_name"] = torch.cuda.get_device_name(0)
        env["cuda"] = str(torch.version.cuda)
    else:
        env["device_name"] = "cpu (Triton interpreter, TRITON_INTERPRET=1)"
    return env


def choose_device(requested: str) -> str:
    """``cuda`` or ``cpu`` for a request of ``auto``, ``cuda`` or ``cpu``; ``cpu`` sets
    ``TRITON_INTERPRET=1`` before triton is imported, so Triton kernels run in the interpreter."""
    import torch

    device = requested
    if requested == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"
    elif not torch.cuda.is_available():
        raise RuntimeError("device='cuda' requested but torch sees no CUDA device")
    return device


def context_works(device: Any) -> bool:
    """Whether this process's context on ``device`` (``cuda``/``cpu``, a name or a
    ``torch.device``) still runs work: a synchronize, then a small kernel whose result is read
    back. A sticky CUDA error (an illegal memory access...) makes both raise; an error that left
    the context usable (a launch refused for its configuration) does not. Always true on the CPU,
    which has no context to lose. Never raises.
    """
    import torch

    if torch.device(device).type != "cuda":
        return True
    try:
        torch.cuda.synchronize()
        probe = torch.arange(4, device=device, dtype=torch.int32) + 1
        return int(probe.sum().item()) == 10
    except Exception:
        return False
