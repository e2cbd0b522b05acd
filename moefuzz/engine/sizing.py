"""How many worker and generator processes a campaign starts when its config does not say.

A worker launches the kernel and compares; a generator (:mod:`moefuzz.runtime.generators`)
draws cases and runs the oracle on the CPU, ahead of the workers. In the Triton interpreter the
worker is the bottleneck, so a campaign runs one worker and no generator. On a GPU drawing a case
costs more than running it, so generators feed one or two workers a GPU; without generators each
worker draws its own cases, and more workers share the GPU.
"""

from __future__ import annotations

import os
from typing import Any

#: Most workers a GPU campaign without generators starts: each draws its own cases (one CPU core
#: each, plus a warm spare mostly idle).
MAX_AUTO_WORKERS = 8

#: Workers a GPU runs when generators feed them, on a host with :data:`CORES_FOR_TWO_WORKERS`
#: cores a GPU. A worker fed by generators is CPU-bound in Python between its launches; a second
#: one on the same GPU fills the first one's gaps (docs/benchmarks.md).
WORKERS_PER_GPU = 2
#: Cores a GPU needs for a second worker: the two workers, the parent and the generators that
#: keep two workers fed.
CORES_FOR_TWO_WORKERS = 12

#: Most generators a GPU campaign starts by default (one torch thread each).
MAX_AUTO_GENERATORS = 8


def auto_workers(device: str, devices: tuple[int, ...] = (), generators: int = 0, cpus: int | None = None) -> int:
    """Workers of a campaign that does not say.

    Args:
        device: ``cuda`` or ``cpu`` (the Triton interpreter).
        devices: the CUDA device indices the workers are spread over (empty: one GPU).
        generators: generator processes feeding the workers (``0``: each worker draws its own).
        cpus: CPU cores of the host (default: ``os.cpu_count()``).

    Returns:
        In the interpreter, one (it is CPU-bound). On a GPU with generators,
        :data:`WORKERS_PER_GPU` a GPU where the host has :data:`CORES_FOR_TWO_WORKERS` cores a
        GPU, else one a GPU. On a GPU without generators, half the CPU cores, at most
        :data:`MAX_AUTO_WORKERS`, at least one per GPU (more workers on one GPU time-slice
        between CUDA contexts and run no faster; docs/benchmarks.md).
    """
    if device != "cuda":
        return 1
    cpus = cpus or os.cpu_count() or 2
    gpus = max(1, len(devices))
    if generators:
        return gpus * (WORKERS_PER_GPU if cpus // gpus >= CORES_FOR_TWO_WORKERS else 1)
    return max(gpus, min(MAX_AUTO_WORKERS, cpus // 2))


def auto_generators(device: str, devices: tuple[int, ...] = (), cpus: int | None = None) -> int:
    """Generators of a campaign that does not say. In the interpreter none: the worker is the
    bottleneck there (a kernel runs in numpy), and a generator would take a core from it. On a
    GPU, the cores left over by the parent and a worker and its spare per GPU, at least one, at
    most :data:`MAX_AUTO_GENERATORS`."""
    if device != "cuda":
        return 0
    cpus = cpus or os.cpu_count() or 2
    return max(1, min(MAX_AUTO_GENERATORS, cpus - 1 - 2 * max(1, len(devices))))


def likely_device(requested: str) -> str:
    """The device a campaign of ``requested`` (``auto``, ``cuda``, ``cpu``) will run on, guessed
    in the parent without importing torch: ``auto`` is ``cuda`` where the NVIDIA driver's
    control device exists. Only a guess to start generators early; the first worker says for
    sure."""
    if requested != "auto":
        return requested
    return "cuda" if os.path.exists("/dev/nvidiactl") else "cpu"


def worker_count(config: Any, device: str, generators: int) -> int:
    """Workers a campaign runs on ``device``: one for an engine that draws in its own process,
    else the configured count or :func:`~moefuzz.engine.sizing.auto_workers`."""
    if config.engine != "random":
        return 1
    return config.workers or auto_workers(device, config.devices, generators)


def generator_count(config: Any, device: str) -> int:
    """Generators a campaign runs on ``device``: the configured count, else
    :func:`~moefuzz.engine.sizing.auto_generators`; none for an engine that draws in its own
    process."""
    if config.engine != "random":
        return 0
    return config.generators if config.generators is not None else auto_generators(device, config.devices)
