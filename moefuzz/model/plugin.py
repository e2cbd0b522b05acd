"""Loading user targets: files, modules, and the ``moefuzz.targets`` entry point group.

A plugin is anything that yields :class:`~moefuzz.model.target.Target` values:

- a ``.py`` file or a package directory, named by path (``--targets my_targets.py``);
- an importable module, named by its dotted name (``--targets mypkg.moefuzz_targets``);
- an entry point of the group ``moefuzz.targets`` in an installed distribution, whose object is
  a Target, a sequence of Targets, or a module defining ``TARGET`` and/or ``TARGETS``::

      # pyproject.toml of a kernel repository
      [project.entry-points."moefuzz.targets"]
      my_sort = "my_kernels.moefuzz_targets"

A file or a package directory is imported as the module ``moefuzz_user_targets_<stem>`` (plus a
hash of its path when another plugin took that name), so a function it defines has the kernel
entry ``"moefuzz_user_targets_<stem>:<function>"``; :func:`~moefuzz.model.target.entry_of` and
:meth:`Target.with_kernel <moefuzz.model.target.Target.with_kernel>` write it for you. Workers
import the same plugins (``MOEFUZZ_TARGETS`` and the entry points) before resolving a kernel.

Every failure to load a plugin (a missing file, an import error, an exception raised while
importing, nothing that is a Target in it) raises :class:`~moefuzz.errors.UsageError` with a
one-line message that names the plugin.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from moefuzz.errors import UsageError
from moefuzz.model.target import Target

#: The entry point group an installed distribution declares its targets in.
ENTRY_POINT_GROUP = "moefuzz.targets"
#: Prefix of the module name a plugin file or directory is imported under.
FILE_MODULE_PREFIX = "moefuzz_user_targets_"


def is_path_spec(spec: str) -> bool:
    """True if ``spec`` names a file or directory rather than a dotted module name."""
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)


def load_spec(spec: str) -> list[Target]:
    """The targets of the plugin ``spec``: a ``.py`` file or package directory path, or a module.

    Raises:
        UsageError: it cannot be imported, raises while importing, or defines no target.
    """
    origin = f"targets={spec!r}"
    try:
        module = _import_path(Path(spec)) if is_path_spec(spec) else importlib.import_module(spec)
    except UsageError:
        raise
    except (Exception, SystemExit) as exc:  # a plugin's import may raise anything
        raise UsageError(f"cannot import {origin}: {_one_line(exc)}") from None
    return targets_of(module, origin)


def entry_point_targets() -> list[tuple[str, list[Target]]]:
    """``(origin, targets)`` of every entry point of :data:`ENTRY_POINT_GROUP`, by name.

    Raises:
        UsageError: an entry point that cannot be loaded or whose object holds no target.
    """
    found = []
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = f"entry point {ENTRY_POINT_GROUP}:{entry.name}={entry.value!r}"
        try:
            obj = entry.load()
        except (Exception, SystemExit) as exc:
            raise UsageError(f"cannot load {origin}: {_one_line(exc)}") from None
        found.append((origin, targets_of(obj, origin)))
    return found


def targets_of(obj: object, origin: str) -> list[Target]:
    """The targets ``obj`` holds: itself if a Target, its items if a sequence, else its
    ``TARGET`` and ``TARGETS`` attributes (a module).

    Raises:
        UsageError: no target at all, or something in it that is not a Target.
    """
    if isinstance(obj, Target):
        return [obj]
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        items: list[object] = list(obj)
    else:
        single = getattr(obj, "TARGET", None)
        items = ([single] if single is not None else []) + list(getattr(obj, "TARGETS", ()))
    bad = [item for item in items if not isinstance(item, Target)]
    if bad:
        raise UsageError(f"{origin} holds {type(bad[0]).__name__}={bad[0]!r:.60}, not a moefuzz Target")
    if not items:
        raise UsageError(f"{origin} defines no target (expected TARGET or TARGETS, a moefuzz Target)")
    return [item for item in items if isinstance(item, Target)]


def _import_path(path: Path) -> ModuleType:
    path = path.resolve()
    if path.is_dir():
        file, locations = path / "__init__.py", [str(path)]
    else:
        file, locations = path, None
    if not file.is_file():
        missing = "a package directory without __init__.py" if path.is_dir() else "no such file"
        raise UsageError(f"cannot import targets={str(path)!r}: {missing}")
    name = FILE_MODULE_PREFIX + (path.name if path.is_dir() else path.stem)
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) != str(file):
        # Another plugin of the same name: a name of its own, the same in every worker.
        name += "_" + hashlib.sha1(str(file).encode()).hexdigest()[:8]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file, submodule_search_locations=locations)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import targets={str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
