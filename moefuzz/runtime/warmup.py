"""A worker's warm-up: the cases it runs before it reports ready, so that the first cases it is
sent (as a spare promoted after a crash, most of all) find their kernels compiled and loaded.

A campaign's first launch of a Triton kernel in a process pays for far more than the launch:
hashing the Triton installation for the compile cache's key, loading the cached binary and its
launcher, creating the CUDA context. The strategy's simplest case (all-zero bytes) often has no
token and launches nothing, so the warm-up also runs the cases drawn from a few fixed byte
buffers (:data:`WARM_UP_DRAWS`).

A warm-up case can crash the worker, as any case can. Before each one the worker notes its seed
(:func:`moefuzz.runtime.deaths.write_note`); a worker that dies while starting is asked
:func:`crashed_warm_up`, and the executor starts the next one without that seed
(:class:`moefuzz.runtime.isolation.Executor`). The seeds a campaign may not use shrink to none,
never to a campaign that cannot start.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moefuzz.engine.generate import DRAW_BYTES, draw_checked
from moefuzz.runtime.deaths import read_note, write_note

__all__ = ["WARM_UP_BUDGET_S", "WARM_UP_DRAWS", "crashed_warm_up", "warm_up", "warm_up_bytes"]

#: Seeds of the warm-up draws, in order: 0 is the simplest case (all-zero bytes), each other
#: seed the bytes of ``random.Random(seed)``.
WARM_UP_DRAWS = (0, 1, 2, 3)
#: Seconds after which a worker starts no further warm-up case.
WARM_UP_BUDGET_S = 20.0
#: Keys of the warm-up in a worker's note.
_CASE_KEY, _DONE_KEY = "warm_up_case", "warm_up_done"


def warm_up_bytes(seed: int) -> bytes:
    """The :data:`~moefuzz.engine.generate.DRAW_BYTES` bytes the warm-up draws its case ``seed``
    from: zeros for 0, else ``random.Random(seed).randbytes``."""
    return bytes(DRAW_BYTES) if seed == 0 else random.Random(seed).randbytes(DRAW_BYTES)


def warm_up(runner: Any, source: Any, seeds: Sequence[int], note: str | None) -> int | None:
    """Run the cases drawn from ``seeds`` (:func:`warm_up_bytes`) on ``runner`` (a
    :class:`~moefuzz.runtime.worker.CaseRunner`), creating the CUDA context first on a GPU; a
    draw the strategy rejects or the contract refuses, or a case outside the kernel's domain, is
    passed over. Returns the seed whose case ended the worker (a CUDA error: the worker must
    exit), else ``None``. Each seed is written to the ``note`` first, so that a death mid-case
    names it (:func:`crashed_warm_up`)."""
    import torch

    if runner.device.type == "cuda":
        torch.zeros(1, device=runner.device)
    started = time.perf_counter()
    for seed in seeds:
        if time.perf_counter() - started > WARM_UP_BUDGET_S:
            break
        case, error = draw_checked(source, runner.target.check, warm_up_bytes(seed))
        if case is None or error:
            continue
        write_note(note, _CASE_KEY, seed)
        if runner.run(case).ends_worker:
            return seed
    write_note(note, _DONE_KEY, True)
    return None


def crashed_warm_up(note: str | Path) -> int | None:
    """The seed of the warm-up case a worker that died while starting was running (from its
    note), ``None`` if it was not running one."""
    written = read_note(note, latest=True)
    seed = written.get(_CASE_KEY)
    return seed if isinstance(seed, int) and not written.get(_DONE_KEY) else None
