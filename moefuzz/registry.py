"""Finding targets: the built-in ``targets`` package, plus modules named in ``MOEFUZZ_TARGETS``.

A target module (or package) defines ``TARGET``, a :class:`~moefuzz.target.Target`, or
``TARGETS``, a sequence of them. ``MOEFUZZ_TARGETS`` holds comma-separated module names or paths
of ``.py`` files; workers inherit it, so they see the same targets as the parent. Importing a
target is cheap (numpy and hypothesis only): kernels and oracles are ``"module:function"``
entries that only workers import.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

from moefuzz.errors import UnknownTargetError, UsageError
from moefuzz.target import Target

#: Environment variable naming extra target modules or files, comma-separated.
TARGETS_ENV = "MOEFUZZ_TARGETS"

_cache: dict[str, dict[str, Target]] = {}


def builtin_targets() -> dict[str, Target]:
    """Every target: built-in ones, then those of ``MOEFUZZ_TARGETS``, by name.

    Raises:
        UsageError: a module or file in ``MOEFUZZ_TARGETS`` that cannot be imported.
    """
    extra = os.environ.get(TARGETS_ENV, "")
    if extra not in _cache:
        import targets

        found: dict[str, Target] = {}
        for info in sorted(pkgutil.iter_modules(targets.__path__), key=lambda m: m.name):
            _collect(importlib.import_module(f"targets.{info.name}"), found)
        for spec in filter(None, (part.strip() for part in extra.split(","))):
            _collect(_import(spec), found)
        _cache[extra] = found
    return _cache[extra]


def get_target(name: str) -> Target:
    """The target called ``name``.

    Raises:
        UnknownTargetError: no such target; the message lists the known ones.
    """
    known = builtin_targets()
    if name not in known:
        raise UnknownTargetError(f"unknown target={name!r} (known: {', '.join(known) or 'none'})")
    return known[name]


def _collect(module: ModuleType, found: dict[str, Target]) -> None:
    single = getattr(module, "TARGET", None)
    for target in ([single] if single is not None else []) + list(getattr(module, "TARGETS", ())):
        if isinstance(target, Target):
            found[target.name] = target


def _import(spec: str) -> ModuleType:
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec).resolve()
            name = f"moefuzz_user_targets_{path.stem}"
            if name in sys.modules:
                return sys.modules[name]
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"not a Python file: {path}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            return module
        return importlib.import_module(spec)
    except (ImportError, OSError, SyntaxError) as exc:
        raise UsageError(f"cannot import targets={spec!r}: {exc}") from None
