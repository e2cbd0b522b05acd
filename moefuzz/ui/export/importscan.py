"""Does importing a kernel's module import moefuzz? Read from the source, without importing it.

An exported reproducer imports the kernel's and the oracle's modules the way
:func:`moefuzz.ui.export.runtime.import_entry` does: the packages above each module are bound bare
(their ``__init__`` not run), the module and what it imports at module level run normally. This
module walks the same path through the source: module-level ``import`` statements (those under
``if TYPE_CHECKING:`` and inside functions excluded), into every imported module of the same
top-level package, and into the ``__init__`` of every package it enters that the script does not
bind bare. Third-party modules (torch, triton) are not entered.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MoefuzzImport:
    """A module-level import of moefuzz: in ``module`` (a file), line ``line``, of ``name``."""

    module: str
    line: int
    name: str

    def __str__(self) -> str:
        return f"{self.module} line {self.line} imports {self.name}"


def moefuzz_imports(entries: Iterable[str]) -> list[MoefuzzImport]:
    """The module-level imports of moefuzz that importing ``entries`` (``"module:function"``)
    would run, as an exported script imports them; empty when the script needs no moefuzz."""
    modules = [entry.partition(":")[0] for entry in entries]
    bare = {".".join(m.split(".")[:i]) for m in modules for i in range(1, len(m.split(".")))}
    local = {m.split(".")[0] for m in modules}
    found: list[MoefuzzImport] = []
    seen: set[str] = set()
    pending = list(modules)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        source = _source_of(name)
        if source is None:
            continue
        path, is_package = source
        for line, imported, names in _module_level_imports(path, name, is_package):
            if imported == "moefuzz" or imported.startswith("moefuzz."):
                found.append(MoefuzzImport(name, line, imported))
            elif imported.split(".")[0] in local:
                parts = imported.split(".")
                # what runs: the parents' __init__ unless bound bare, the module, and any
                # submodules named by ``from imported import name``
                pending += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
                pending += [f"{imported}.{n}" for n in names]
        pending = [p for p in pending if p not in bare]
    return sorted(found, key=lambda f: (f.module, f.line))


def _source_of(name: str) -> tuple[Path, bool] | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin), spec.submodule_search_locations is not None


def _module_level_imports(path: Path, module: str, is_package: bool) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module name, names imported from it) of each import statement run when
    ``module`` is imported (``import a.b`` gives ``a.b`` and no names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    for node in _executed_statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base, [alias.name for alias in node.names if alias.name != "*"]


def _executed_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements of a module body that run at import: into ``if``/``try``/``with`` blocks, not
    into functions, classes' method bodies or ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _executed_statements(node.body)
            yield from _executed_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _executed_statements(block)
        elif isinstance(node, ast.With):
            yield from _executed_statements(node.body)
        elif isinstance(node, ast.ClassDef):
            yield from _executed_statements(node.body)
        else:
            yield node


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
