"""What a target is: the contract between the engine and one fuzzed operation.

A target bundles, for one operation (say the three-step sort of a fused-MoE prologue):

- a hypothesis strategy of :class:`~moefuzz.model.case.Case` (what inputs look like),
- ``check``: the contract's preconditions on a case (numpy, raises :class:`CaseError`),
- ``output_specs``: the shape and dtype of every output buffer the kernel writes, so that the
  engine can allocate them poisoned,
- an oracle in plain torch and one or more kernels, named as ``"module:function"`` entries that
  only worker processes import (the parent never touches the device),
- ``compare``: the contract's equality on outputs (numpy), returning the first
  :class:`~moefuzz.model.compare.Mismatch` or ``None``,
- the shrink passes that apply to its cases and the ``size`` order they reduce,
- ``derive``: recomputes the arrays and params a case derives from its routing table (counts
  per expert, padded lengths) after a shrink pass edited the table; identity by default.
- ``explain_crash``: for a crash or hang (no mismatch to read), the entries of a case a kernel
  could read out of bounds (``request 0 page 1: page_table[0, 1]=2147483599 ...``); empty by
  default.
- ``launch_knobs``: the launch configurations its kernels honour through ``ctx.config``
  (``{"num_warps": (1, 2, 4, 8)}``), which schedule perturbation varies.

The engine knows nothing else about a target, and a target knows nothing of how it is scheduled.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from moefuzz.errors import UnknownTargetError, UsageError
from moefuzz.model.case import Case
from moefuzz.model.domain import Domain

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from moefuzz.execute.cuda_build import CudaBuild
    from moefuzz.model.compare import Mismatch
    from moefuzz.shrinking.passes import ShrinkPass


@dataclass(frozen=True)
class Limits:
    """Upper bounds on generated sizes, chosen per device.

    Attributes:
        max_tokens: most tokens (rows of a routing table) a case may have.
        max_topk: most experts per token (K).
        max_experts: most global experts (E).
    """

    max_tokens: int = 16384
    max_topk: int = 8
    max_experts: int = 1024


#: Smaller sizes for the Triton interpreter: it runs every program instance in numpy on the CPU,
#: about 10^4 times slower than a GPU, so a 16384-token case would take minutes.
INTERPRETER_LIMITS = Limits(max_tokens=2048, max_topk=8, max_experts=1024)


def default_limits(device: str) -> Limits:
    """The size limits of a campaign on ``device`` (``cuda``: full sizes; else the
    interpreter's)."""
    return Limits() if device == "cuda" else INTERPRETER_LIMITS


@dataclass(frozen=True)
class KernelSpec:
    """One implementation of a target's contract.

    Attributes:
        name: CLI name (``triton`` for moefuzz's own correct kernel, ``bug-*`` for bug models).
        entry: ``"module:function"``; the function takes a
            :class:`moefuzz.execute.launch.LaunchContext` and writes the context's outputs.
        summary: one line for ``moefuzz targets``.
        models_bug: for ``bug-*`` kernels, the bug class it models and the report it comes from.
        build: C++/CUDA source the entry calls into (a
            :class:`~moefuzz.execute.cuda_build.CudaBuild`): compiled once per source and
            machine before the workers start; ``None`` for Triton and plain torch kernels.
        domain: the inputs the kernel supports, a module-level ``pred(case) -> bool``
            (``None``: the whole contract). A case outside is never launched on this kernel: the
            campaign draws again from derived bytes a few times, then counts it as skipped
            (``skipped_outside_domain``); shrinking, replay and export keep to it.
    """

    name: str
    entry: str
    summary: str
    models_bug: str | None = None
    build: CudaBuild | None = None
    domain: Callable[[Case], bool] | None = field(default=None, compare=False)

    @property
    def is_bug_model(self) -> bool:
        return self.models_bug is not None

    @property
    def domain_entry(self) -> str:
        """``"module:function"`` of :attr:`domain`, ``""`` without one."""
        return "" if self.domain is None else entry_of(self.domain)

    def supports(self, case: Case) -> bool:
        """Whether ``case`` lies in the kernel's domain (always, without one)."""
        return self.domain is None or bool(self.domain(case))


@dataclass(frozen=True)
class OutputSpec:
    """Shape and numpy dtype name of one output buffer (``int32``, ``int64``, ``float32``...)."""

    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Target:
    """A fuzzable operation: contract, oracle, kernels and shrink passes (see the module doc)."""

    name: str
    summary: str
    source: str
    strategy: Callable[[Limits], SearchStrategy[Case]]
    check: Callable[[Case], None]
    output_specs: Callable[[Case], Mapping[str, OutputSpec]]
    oracle: str
    compare: Callable[[Case, Mapping[str, np.ndarray], Mapping[str, np.ndarray]], Mismatch | None]
    kernels: Sequence[KernelSpec]
    shrink_passes: Sequence[ShrinkPass]
    size: Callable[[Case], tuple[int, ...]]
    explain: Callable[[Case, Mismatch], str] = field(default=lambda case, mismatch: "")
    derive: Callable[[Case], Case] = field(default=lambda case: case)
    launch_knobs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    explain_crash: Callable[[Case], str] = field(default=lambda case: "")
    domain: Domain | None = None

    @property
    def default_kernel(self) -> KernelSpec:
        return self.kernels[0]

    def kernel(self, name: str | None) -> KernelSpec:
        """The kernel called ``name`` (the default one for ``None``).

        Raises:
            UnknownTargetError: no kernel of that name; the message lists the known ones.
        """
        if name is None:
            return self.default_kernel
        for spec in self.kernels:
            if spec.name == name:
                return spec
        known = ", ".join(k.name for k in self.kernels)
        raise UnknownTargetError(f"target {self.name!r} has no kernel={name!r} (known: {known})")

    def with_kernel(
        self,
        name: str,
        kernel: str | Callable[..., None],
        summary: str = "",
        *,
        models_bug: str | None = None,
        build: CudaBuild | None = None,
        domain: Callable[[Case], bool] | None = None,
    ) -> Target:
        """This target with one more kernel: fuzz your own implementation against its contract.

        The strategy, oracle, comparison and shrink passes stay the target's; the new kernel is
        added after the existing ones (the default kernel does not change). Put the result in a
        plugin's ``TARGET`` (see :mod:`moefuzz.model.plugin`): the registry merges it into the target
        of the same name, so ``moefuzz run --targets my_plugin.py --target <name> --kernel
        <kernel name>`` fuzzes it.

        Args:
            name: the kernel's CLI name (``--kernel NAME``), new to this target, no spaces.
            kernel: ``"module:function"``, or the function itself: a module-level
                ``run(ctx: LaunchContext) -> None`` that reads ``ctx.inputs`` / ``ctx.params``
                and writes every buffer of ``ctx.outputs`` (workers import it by module and name).
            summary: one line for ``moefuzz targets`` (default: the entry).
            models_bug: for a planted bug, what it models (lists it as a bug model).
            build: the C++/CUDA source the kernel calls into (:class:`~moefuzz.execute.cuda_build.CudaBuild`),
                compiled before the campaign's workers start; the kernel loads it with
                :func:`moefuzz.execute.cuda_compile.load_extension`.
            domain: the inputs the kernel supports, a module-level ``pred(case) -> bool``
                (``case.arrays``, ``case.params``), such as ``hidden % 128 == 0``: cases outside
                are never launched on it (see :class:`KernelSpec`).

        Raises:
            UsageError: an empty, spaced or taken name, or a function (kernel or domain)
                workers cannot import (a lambda, a nested function or method, one defined in
                ``__main__``).
        """
        if not name or any(c.isspace() for c in name) or "," in name:
            raise UsageError(f"kernel name={name!r} must be non-empty, without spaces or commas")
        if any(spec.name == name for spec in self.kernels):
            raise UsageError(f"target {self.name!r} already has a kernel name={name!r}")
        entry = kernel if isinstance(kernel, str) else entry_of(kernel)
        if entry.count(":") != 1 or not all(entry.partition(":")[::2]):
            raise UsageError(f"kernel entry={entry!r} is not 'module:function'")
        if domain is not None:
            entry_of(domain)  # the same import rule as the kernel's: workers look it up by name
        spec = KernelSpec(name, entry, summary or entry, models_bug, build, domain)
        return replace(self, kernels=(*self.kernels, spec))


def entry_of(function: Callable[..., Any]) -> str:
    """``"module:function"`` of a module-level function, the form workers import.

    Raises:
        UsageError: a lambda, a nested function or method, or a function of ``__main__``.
    """
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", "")
    if not module or module == "__main__" or not qualname.isidentifier():
        raise UsageError(
            f"kernel function={qualname or function!r} of module={module!r} cannot be imported by a worker: "
            "use a module-level function of an importable module or a --targets file"
        )
    return f"{module}:{qualname}"


def resolve_entry(entry: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute (worker side)."""
    module_name, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module_name), attr)
