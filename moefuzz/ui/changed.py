"""Which kernels a change touches: for CI, to fuzz only what a pull request changed.

A kernel depends on the module of its entry, on the target's oracle module, and on the modules
that define the target's strategy, check, output specs, comparison and size (its contract);
and, transitively, on every module those import that lives in the repository. A kernel is
touched when one of those files is among the changed paths. Imports are followed by reading the
files' ``import`` statements with :mod:`ast`: nothing is imported or executed, so torch and
triton are never loaded. Modules outside the repository (torch, an installed moefuzz) never
count.

Bug models (``bug-*`` kernels) are left out: CI fuzzes kernels that are meant to pass.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

from moefuzz.model.target import Target

#: Target fields whose functions make up its contract.
CONTRACT_FIELDS = ("strategy", "check", "output_specs", "compare", "size", "derive", "explain")


def touched_kernels(targets: Iterable[Target], changed: Iterable[Path], root: Path) -> list[tuple[str, str]]:
    """``(target, kernel)`` of every non-bug-model kernel whose files ``changed`` touches.

    Args:
        targets: the targets to consider (usually every registered one).
        changed: changed paths, relative to ``root`` or absolute (``git diff --name-only``).
        root: the repository root; only files under it are followed and compared.
    """
    root = root.resolve()
    changed_files = {(root / path).resolve() for path in changed}
    finder = _ModuleFiles(root)
    touched = []
    for target in targets:
        contract = {_module_of(getattr(target, name)) for name in CONTRACT_FIELDS}
        contract.add(target.oracle.partition(":")[0])
        contract_files = finder.closure(contract)
        for kernel in target.kernels:
            if kernel.is_bug_model:
                continue
            files = contract_files | finder.closure({kernel.entry.partition(":")[0]})
            if kernel.build is not None:  # a CUDA kernel's C++/CUDA source files
                files |= {Path(source).resolve() for source in kernel.build.sources}
            if files & changed_files:
                touched.append((target.name, kernel.name))
    return touched


def _module_of(function: object) -> str:
    return str(getattr(function, "__module__", "") or "")


class _ModuleFiles:
    """Module name -> file under the root, and the repository modules a file imports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        entries = [Path(p or ".").resolve() for p in sys.path]
        self.search = [root] + [p for p in entries if p != root and _under(p, root)]
        self._closures: dict[str, set[Path]] = {}

    def closure(self, modules: set[str]) -> set[Path]:
        """Files under the root of ``modules`` and of everything they import, transitively."""
        files: set[Path] = set()
        for name in modules:
            if name not in self._closures:
                self._closures[name] = self._walk(name)
            files |= self._closures[name]
        return files

    def _walk(self, start: str) -> set[Path]:
        seen: set[Path] = set()
        parts = start.split(".")
        pending = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]  # importing it runs its packages
        while pending:
            name = pending.pop()
            file = self.file_of(name)
            if file is None or file in seen:
                continue
            seen.add(file)
            pending.extend(self.imports_of(file, name))
        return seen

    def file_of(self, name: str) -> Path | None:
        """The file of module ``name`` under the root, or ``None`` (elsewhere, or not found)."""
        module = sys.modules.get(name)
        loaded = getattr(module, "__file__", None)
        if loaded:
            path = Path(loaded).resolve()
            return path if _under(path, self.root) else None
        parts = name.split(".")
        for entry in self.search:
            for candidate in (entry.joinpath(*parts).with_suffix(".py"), entry.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    return candidate.resolve()
        return None

    def imports_of(self, file: Path, name: str) -> list[str]:
        """Module names ``file`` (module ``name``) imports, parent packages included."""
        try:
            tree = ast.parse(file.read_text(), str(file))
        except (OSError, SyntaxError, UnicodeDecodeError):
            return []
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        found: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: max(0, len(package.split(".")) - node.level + 1)]
                    base = ".".join([*filter(None, anchor), *filter(None, [base])])
                found.append(base)
                found += [f"{base}.{alias.name}" if base else alias.name for alias in node.names]
        names: list[str] = []
        for dotted in filter(None, found):
            parts = dotted.split(".")
            names += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return names


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
