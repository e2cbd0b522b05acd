"""The outcome of running one case, and the signature that says whether two failures are the same.

Kinds:

- ``pass``: outputs equal the oracle's on every entry the contract specifies.
- ``divergence``: some specified entry differs (a poisoned, never-written entry included).
- ``crash``: the worker died or its device context broke: a CUDA error (illegal memory
  access, device-side assert, misaligned address...), a signal (SIGSEGV, SIGABRT) or an exit;
  or, under the Triton interpreter, an out-of-bounds load, store or atomic that
  :mod:`moefuzz.execute.oob` refused before it happened (the worker stays up for those).
- ``hang``: no answer within the per-case timeout; the worker was killed.
- ``error``: the kernel raised a Python exception on a valid input (a compile error, a launcher
  check that rejects a legal shape).
- ``oracle-error``: the oracle raised (findings saved before ``harness`` existed; no longer
  produced).
- ``harness``: the target's own code raised (``output_specs``, the oracle, ``compare``, the
  strategy): a bug of the target, never a kernel finding; ``detail`` is ``<stage>-<Exception>``.
  A campaign stops at the first one (:class:`~moefuzz.errors.HarnessError`, exit 3).
- ``resource``: the machine ran out of something: ``cuda-oom`` (``torch.cuda.OutOfMemoryError``
  or a CUDA "out of memory" error) or ``host-oom`` (the worker was SIGKILLed while the host's OOM
  killer ran). Not a kernel finding: counted, never saved; the worker is replaced.

Two more kinds answer a request to draw a case from bytes (:class:`moefuzz.runtime.isolation.Request`)
and are not failures of the kernel: ``rejected`` (the strategy rejected the bytes: nothing ran)
and ``invalid`` (the drawn case broke the contract's preconditions: a bug of the target's
strategy; nothing ran). ``skipped`` (detail ``outside-domain``): the case lies outside the
kernel's declared domain (:attr:`moefuzz.model.target.KernelSpec.domain`), so it was not launched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from moefuzz.execute.perturb import Rate
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch

KINDS = (
    "pass",
    "divergence",
    "crash",
    "hang",
    "error",
    "oracle-error",
    "harness",
    "resource",
    "rejected",
    "invalid",
    "skipped",
    "avoided",
)

#: Kinds that say nothing about the kernel: no case ran (``avoided``: the case looked like a known
#: crasher's, see :mod:`moefuzz.engine.storm`).
NOT_RUN = frozenset({"rejected", "invalid", "skipped", "avoided"})
#: Kinds that are not the kernel's failure: the target's own code, or the machine.
NOT_KERNEL = frozenset({"harness", "resource"})

#: Crash classes of accesses :mod:`moefuzz.execute.oob` refused before they happened, keyed by the start
#: of :class:`~moefuzz.execute.oob.OutOfBoundsAccess`'s message. Nothing was read or written, so the
#: process that reports one is intact and keeps running.
_CAUGHT_CRASH_CLASSES = (
    ("out-of-bounds load", "out-of-bounds-load"),
    ("out-of-bounds store", "out-of-bounds-store"),
    ("out-of-bounds atomic", "out-of-bounds-atomic"),
)
CAUGHT_CRASHES = frozenset(name for _, name in _CAUGHT_CRASH_CLASSES)

#: Crash classes whose CUDA error leaves the device context usable: a launch the driver refused
#: for its configuration (too much shared memory, too many registers or threads), so nothing
#: ran. A worker that reports one checks its context (a synchronize and a small kernel) and, if
#: that works, goes on (:attr:`Outcome.context_intact`); starting a new worker costs seconds.
NON_STICKY_CRASHES = frozenset({"launch-failure"})

#: Substrings of CUDA error texts, mapped to the short class a signature uses, most specific first.
_CUDA_ERROR_CLASSES = (
    ("illegal memory access", "illegal-memory-access"),
    ("misaligned address", "misaligned-address"),
    ("device-side assert triggered", "device-side-assert"),
    ("illegal instruction", "illegal-instruction"),
    ("unspecified launch failure", "unspecified-launch-failure"),
    ("out of memory", "out-of-memory"),
    ("kernel launch failed", "launch-failure"),
    ("too many resources requested for launch", "launch-failure"),
    ("an illegal", "illegal-address"),
)


def is_cuda_oom(text: str) -> bool:
    """Whether an error text is the device running out of memory (``torch.cuda.OutOfMemoryError``
    or a CUDA "out of memory" error), not a kernel's crash."""
    lowered = text.lower()
    return "outofmemoryerror" in lowered or ("out of memory" in lowered and "cuda" in lowered)


def classify_crash_text(text: str) -> str:
    """The short class of a crash message: an interpreter out-of-bounds class, a CUDA error class,
    else ``cuda-error``, else the first line's exception name."""
    lowered = text.lower()
    for needle, name in _CAUGHT_CRASH_CLASSES + _CUDA_ERROR_CLASSES:
        if needle in lowered:
            return name
    if "cuda" in lowered:
        return "cuda-error"
    first = text.strip().splitlines()[0] if text.strip() else "unknown"
    return re.sub(r"[^A-Za-z0-9]+", "-", first.split(":")[0]).strip("-").lower() or "unknown"


@dataclass(frozen=True)
class Outcome:
    """What happened when a case ran.

    Attributes:
        kind: one of :data:`KINDS`.
        detail: the part of the signature after the kind: the diverging output, the crash class,
            the exception type; empty for ``pass`` and ``hang``.
        message: a human line (the mismatch headline, the CUDA error text, the signal).
        mismatch: for divergences, the first mismatching entry.
        seconds: wall time of the execution in the worker (kernel, oracle, compare).
        log_tail: the last lines of a traceback or of the worker's stderr.
        runs: launches of the case (several under schedule perturbation).
        failures: launches that failed with this outcome's signature.
        perturbation: the first failing launch's :class:`~moefuzz.execute.perturb.Perturbation`, as JSON.
        nondeterministic: launches of the same input disagreed (some passed, or failed with
            different values or signatures): the kernel's result depends on the schedule.
        case: the case a worker drew from bytes, sent back when it failed (or was invalid).
        size: ``target.size`` of a case the worker drew or was given drawn (``None`` for a case
            the parent sent): the campaign tells crash storms by it (:mod:`moefuzz.engine.storm`).
        coverage: the points of the target's domain the case hit, as a bit mask over
            :meth:`Domain.points <moefuzz.model.domain.Domain.points>` (0 when not counted).
        context_intact: the worker checked its device context after this crash (one of
            :data:`NON_STICKY_CRASHES`) and it still works: the worker goes on.
    """

    kind: str
    detail: str = ""
    message: str = ""
    mismatch: Mismatch | None = None
    seconds: float = 0.0
    log_tail: str = field(default="", compare=False)
    runs: int = 1
    failures: int = 0
    perturbation: dict[str, Any] | None = None
    nondeterministic: bool = False
    case: Case | None = field(default=None, compare=False, repr=False)
    size: tuple[int, ...] | None = field(default=None, compare=False, repr=False)
    coverage: int = field(default=0, compare=False, repr=False)
    context_intact: bool = field(default=False, compare=False)

    @property
    def rate(self) -> Rate:
        """Failures with this signature out of runs (a single failing run: 1/1)."""
        if self.kind == "pass":
            return Rate(0, self.runs)
        return Rate(max(self.failures, 1), max(self.runs, 1))

    @property
    def failed(self) -> bool:
        """A failure of the kernel (``pass``, the :data:`NOT_RUN` and the :data:`NOT_KERNEL` kinds
        are not)."""
        return self.kind != "pass" and self.kind not in NOT_RUN and self.kind not in NOT_KERNEL

    @property
    def ends_worker(self) -> bool:
        """Whether the worker that reported this outcome must be retired: every crash but one in
        :data:`CAUGHT_CRASHES`, which was stopped before it touched memory, or one whose worker
        found its context intact (:attr:`context_intact`), and every ``resource`` outcome (a
        fresh process and device context)."""
        crash_ends = self.detail not in CAUGHT_CRASHES and not self.context_intact
        return (self.kind == "crash" and crash_ends) or self.kind == "resource"

    @property
    def signature(self) -> str:
        """``kind:detail``, the identity of a failure: the shrinker keeps a candidate only if it
        fails with the same signature, and the corpus keeps one reproducer per signature."""
        return f"{self.kind}:{self.detail}" if self.detail else self.kind
