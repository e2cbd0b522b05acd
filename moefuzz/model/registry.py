"""Finding targets by name: the built-in ``targets`` package, entry points, ``MOEFUZZ_TARGETS``.

Targets come from, in this order:

1. the built-in ``moefuzz_targets`` package (one sub-package per target, each defining ``TARGET``);
2. the entry points of the group ``moefuzz.targets`` of installed distributions;
3. the plugins named in ``MOEFUZZ_TARGETS``: comma-separated module names or paths of ``.py``
   files or package directories (the CLI's ``--targets`` appends to it).

How plugins are loaded is :mod:`moefuzz.model.plugin`'s job. Workers inherit the environment and the
installed distributions, so they see the same targets as the parent. Importing a target is cheap
(numpy and hypothesis only): kernels and oracles are ``"module:function"`` entries that only
workers import.

A later target with the name of an earlier one extends it when both share one contract (the
same oracle and comparison: what :meth:`Target.with_kernel <moefuzz.model.target.Target.with_kernel>`
returns); its kernels are added to the earlier one's. Any other reuse of a name is an error.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import sys

from moefuzz.errors import UnknownTargetError, UsageError
from moefuzz.model.plugin import entry_point_targets, is_path_spec, load_spec, targets_of
from moefuzz.model.target import Target

#: Environment variable naming extra target modules or files, comma-separated.
TARGETS_ENV = "MOEFUZZ_TARGETS"

_cache: dict[tuple[str, tuple[str, ...]], dict[str, Target]] = {}


def builtin_targets() -> dict[str, Target]:
    """Every target: built-in ones, then entry points', then those of ``MOEFUZZ_TARGETS``.

    Raises:
        UsageError: a plugin that cannot be loaded or holds no target, or a target whose name
            another target with a different contract already has.
    """
    extra = os.environ.get(TARGETS_ENV, "")
    key = (extra, tuple(sys.path))
    if key not in _cache:
        import moefuzz_targets

        found: dict[str, Target] = {}
        for info in sorted(pkgutil.iter_modules(moefuzz_targets.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"moefuzz_targets.{info.name}")
            if hasattr(module, "TARGET") or hasattr(module, "TARGETS"):  # skip helper modules
                for target in targets_of(module, f"built-in moefuzz_targets.{info.name}"):
                    _add(found, target, f"moefuzz_targets.{info.name}")
        for origin, loaded in entry_point_targets():
            for target in loaded:
                _add(found, target, origin)
        for spec in target_specs(extra):
            for target in load_spec(spec):
                _add(found, target, f"targets={spec!r}")
        _cache[key] = found
    return _cache[key]


def get_target(name: str) -> Target:
    """The target called ``name``.

    Raises:
        UnknownTargetError: no such target; the message lists the known ones.
    """
    known = builtin_targets()
    if name not in known:
        raise UnknownTargetError(f"unknown target={name!r} (known: {', '.join(known) or 'none'})")
    return known[name]


def target_specs(value: str) -> list[str]:
    """The plugin specs of a ``MOEFUZZ_TARGETS`` value, in order, blanks dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]


def add_target_specs(specs: list[str] | tuple[str, ...]) -> None:
    """Append plugin specs to ``MOEFUZZ_TARGETS`` (paths made absolute), so that this process
    and every worker it starts from now on load them. Loads nothing; call
    :func:`builtin_targets` to load and check them."""
    current = target_specs(os.environ.get(TARGETS_ENV, ""))
    for spec in specs:
        spec = os.path.abspath(spec) if is_path_spec(spec) else spec
        if spec not in current:
            current.append(spec)
    os.environ[TARGETS_ENV] = ",".join(current)


def _add(found: dict[str, Target], target: Target, origin: str) -> None:
    known = found.get(target.name)
    if known is None:
        found[target.name] = target
        return
    if known.oracle != target.oracle or known.compare is not target.compare:
        raise UsageError(
            f"{origin} defines target={target.name!r} with another contract than the one already "
            f"registered (oracle {target.oracle!r} vs {known.oracle!r}); give it a name of its own"
        )
    kernels = {spec.name: spec for spec in known.kernels}
    for spec in target.kernels:
        if spec.name in kernels and kernels[spec.name].entry != spec.entry:
            raise UsageError(
                f"{origin} defines kernel={spec.name!r} of target {target.name!r} as {spec.entry!r}, "
                f"already registered as {kernels[spec.name].entry!r}"
            )
        kernels.setdefault(spec.name, spec)
    found[target.name] = dataclasses.replace(known, kernels=tuple(kernels.values()))
