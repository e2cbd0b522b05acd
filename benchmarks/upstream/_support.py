"""What the upstream adapters share: load a kernel file of a fetched wheel, and declare a domain.

The adapters of ``benchmarks/upstream/`` fuzz kernels as their projects ship them on PyPI.
``fetch.sh`` extracts the few ``.py`` files they need under ``benchmarks/upstream/src/`` (or
``$MOEFUZZ_UPSTREAM_DIR``); :func:`load_upstream` imports one of them by path, with stand-ins for
the package-level imports it makes (``sglang.srt.utils``, ``vllm.triton_utils``...), so that
neither sglang nor vllm needs to be installed. A stand-in is the smallest thing the module's
import line needs (a constant, a three-line helper); the Triton kernels and their Python
launchers run as shipped.

Importing an adapter imports triton: set ``TRITON_INTERPRET=1`` first to run on the CPU.
"""

from __future__ import annotations

import builtins
import functools
import importlib.util
import inspect
import os
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import triton.language as tl

from moefuzz.model.case import Case
from moefuzz.model.target import Target, resolve_entry

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext

#: Where fetch.sh puts the extracted sources by default.
DEFAULT_SOURCE_DIR = Path(__file__).resolve().parent / "src"


def source_dir() -> Path:
    """The directory holding ``<project>-<version>/<package path>`` files: ``$MOEFUZZ_UPSTREAM_DIR``
    or ``benchmarks/upstream/src``."""
    return Path(os.environ.get("MOEFUZZ_UPSTREAM_DIR", DEFAULT_SOURCE_DIR))


def load_upstream(
    release: str, path: str, stubs: Mapping[str, Mapping[str, Any]] | None = None, loop_vars_to: bool = False
) -> types.ModuleType:
    """Import the upstream file ``path`` of ``release`` (``"sglang-0.5.23"``) as a private module.

    Args:
        release: the directory fetch.sh made, ``<project>-<version>``.
        path: the file inside the wheel, ``sglang/kernels/ops/memory/allocator.py``.
        stubs: module name -> attributes of a stand-in module, installed in ``sys.modules`` while
            the file runs its top-level code and removed after (a parent package is made for
            each dotted name). Only names the file imports at top level need one.
        loop_vars_to: under the Triton interpreter only, give the module's loop variables the
            ``.to(dtype)`` they have when compiled (see :func:`give_loop_vars_to`).

    Returns:
        The module, cached in ``sys.modules`` under ``moefuzz_upstream_<release>_<stem>`` (Triton
        reads a kernel's source and globals from it).

    Raises:
        FileNotFoundError: the file was not fetched; the message names ``fetch.sh``.
    """
    file = source_dir() / release / path
    name = "moefuzz_upstream_" + "".join(c if c.isalnum() else "_" for c in f"{release}_{Path(path).stem}")
    if name in sys.modules:
        return sys.modules[name]
    if not file.is_file():
        raise FileNotFoundError(f"upstream source file={str(file)!r} missing: run benchmarks/upstream/fetch.sh first")
    installed = _install_stubs(stubs or {})
    try:
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    finally:
        for stub in installed:
            del sys.modules[stub]
    if loop_vars_to and os.environ.get("TRITON_INTERPRET") == "1":
        give_loop_vars_to(module)
    return module


class _LoopVar(int):
    """A loop variable under the interpreter, with the ``.to`` of a compiled one (a Python int
    has no width, so the cast is the identity)."""

    def to(self, dtype: object, *args: object, **kwargs: object) -> _LoopVar:
        return self


def _loop_vars(make_range: Callable[..., Any]) -> Callable[..., Any]:
    def ranged(*args: Any, **kwargs: Any) -> Any:
        for value in make_range(*args, **kwargs):
            yield _LoopVar(value)

    return ranged


class _LanguageWithLoopVars(types.ModuleType):
    """``triton.language`` as the interpreter patches it, with ``range`` / ``static_range``
    yielding :class:`_LoopVar`."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(tl, name)
        return _loop_vars(value) if name in ("range", "static_range") else value


def give_loop_vars_to(module: types.ModuleType) -> None:
    """Let the Triton interpreter run kernels that cast a loop variable (``token_id_int32.to(
    tl.int64)``): compiled, a ``range`` / ``tl.range`` loop variable is a tensor; interpreted, it
    is a Python int without ``.to``. The module's ``range`` and ``tl`` are rebound to yield ints
    that have it; ``triton.language`` stays visible under another name, as the interpreter
    requires. Only for the interpreter: compiled kernels never see this."""
    module.range = _loop_vars(builtins.range)  # type: ignore[attr-defined]
    module.tl = _LanguageWithLoopVars("triton.language")  # type: ignore[attr-defined]
    module._moefuzz_triton_language = tl  # type: ignore[attr-defined]


def _install_stubs(stubs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Put a stand-in module for each name (and its missing parent packages) in ``sys.modules``;
    return the names added, children first."""
    added: list[str] = []
    for dotted, attributes in stubs.items():
        parts = dotted.split(".")
        for depth in range(1, len(parts) + 1):
            module_name = ".".join(parts[:depth])
            if module_name not in sys.modules:
                module = types.ModuleType(module_name)
                module.__path__ = []  # a package, so that children import
                sys.modules[module_name] = module
                added.append(module_name)
            if depth > 1:
                setattr(sys.modules[".".join(parts[: depth - 1])], parts[depth - 1], sys.modules[module_name])
        for attribute, value in attributes.items():
            setattr(sys.modules[dotted], attribute, value)
    return added[::-1]


def is_power_of_two(n: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return n >= 1 and n & (n - 1) == 0


def case_of(ctx: LaunchContext) -> Case:
    """The case a launch context was made from (arrays copied back to host numpy)."""
    return Case(
        arrays={name: tensor.detach().cpu().numpy() for name, tensor in ctx.inputs.items()},
        params=dict(ctx.params),
    )


@functools.cache
def takes_domains() -> bool:
    """True when this moefuzz's ``Target.with_kernel`` takes ``domain=``."""
    return "domain" in inspect.signature(Target.with_kernel).parameters


def with_domain(
    target: Target, name: str, kernel: Callable[..., None], summary: str, domain: Callable[[Case], bool]
) -> Target:
    """``target.with_kernel(name, kernel, summary, domain=domain)`` where moefuzz takes kernel
    domains; else the same target and kernel without it (the kernel must then call
    :func:`outside_domain` first, see there).

    Args:
        target: a built-in target whose contract the kernel implements.
        name, kernel, summary: as :meth:`moefuzz.model.target.Target.with_kernel`.
        domain: module-level ``pred(case) -> bool``, True for the inputs the kernel supports.
    """
    if takes_domains():
        return target.with_kernel(name, kernel, summary, domain=domain)  # type: ignore[call-arg]
    return target.with_kernel(name, kernel, f"{summary} (domain: {domain.__doc__ or domain.__name__})")


def outside_domain(ctx: LaunchContext, target: Target, domain: Callable[[Case], bool]) -> bool:
    """For a moefuzz without kernel domains: True, with the target's oracle's outputs written to
    ``ctx.outputs``, when the context's case is outside ``domain`` (the kernel must then return
    without launching: the case passes, as if skipped); False where moefuzz takes domains (it
    never launches such a case) or the case is inside."""
    if takes_domains() or domain(case_of(ctx)):
        return False
    expected = resolve_entry(target.oracle)(ctx.inputs, ctx.params)
    for output, buffer in ctx.outputs.items():
        buffer.copy_(expected[output].to(buffer.device, buffer.dtype))
    return True
