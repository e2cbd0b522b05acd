"""A target is one folder that uses only public moefuzz APIs (read from the source, no import).

Pins the layout of ``moefuzz_targets``: no module imports a private moefuzz module or name (a
name component starting with ``_``), no target imports another target's package (code they share
lives in ``moefuzz_targets/shared``, which imports no target), and every target folder has its
contract, oracle and kernels modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "moefuzz_targets"
SHARED = "shared"
TARGET_DIRS = sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file() and p.name != SHARED)
REQUIRED_MODULES = ("contract.py", "oracle.py", "kernels.py")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, absolute name) of every module and name imported anywhere in ``path`` (the module
    ``module``, by default its name under ``moefuzz_targets``), function bodies and
    ``TYPE_CHECKING`` blocks included: ``from a.b import c`` gives ``a.b.c``."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_layout_has_targets_to_check():
    assert len(TARGET_DIRS) >= 9 and (PACKAGE / SHARED / "__init__.py").is_file()


def test_no_module_imports_a_private_moefuzz_module_or_name():
    private = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {name}"
        for path in _sources()
        for line, name in imports_of(path)
        if name.split(".")[0] == "moefuzz" and any(part.startswith("_") for part in name.split(".")[1:])
    ]
    assert private == []


def test_no_target_imports_another_targets_package():
    crossing = []
    for path in _sources():
        owner = path.relative_to(PACKAGE).parts[0]
        for line, name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "moefuzz_targets" and len(parts) > 1 and parts[1] not in (owner, SHARED):
                crossing.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name}")
    assert crossing == []


def test_shared_imports_no_target():
    found = [
        f"{path.name}:{line}: {name}"
        for path in (PACKAGE / SHARED).rglob("*.py")
        for line, name in imports_of(path)
        if name.startswith("moefuzz_targets.") and name.split(".")[1] != SHARED
    ]
    assert found == []


@pytest.mark.parametrize("folder", TARGET_DIRS, ids=lambda p: p.name)
def test_every_target_folder_has_contract_oracle_and_kernels(folder: Path):
    assert [name for name in REQUIRED_MODULES if not (folder / name).is_file()] == []


def test_imports_of_finds_relative_nested_and_type_checking_imports(tmp_path: Path):
    source = tmp_path / "kernels.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..ep_scatter import shrink\n"
        "if TYPE_CHECKING:\n"
        "    from moefuzz.strategies._routing import x\n"
        "def f():\n"
        "    from . import oracle\n"
    )
    names = {name for _, name in imports_of(source, "moefuzz_targets.ep_gather.kernels")}
    assert {
        "moefuzz_targets.ep_scatter.shrink",
        "moefuzz.strategies._routing.x",
        "moefuzz_targets.ep_gather.oracle",
    } <= names


@pytest.mark.parametrize("folder", TARGET_DIRS, ids=lambda path: path.name)
def test_every_target_has_its_tests_in_a_mirrored_folder(folder: Path):
    tests = Path(__file__).resolve().parent / "targets" / folder.name
    names = {path.name for path in tests.glob("test_*.py")}
    assert {f"test_{folder.name}_contract.py", f"test_{folder.name}_oracle.py"} <= names
    assert not list(Path(__file__).resolve().parent.glob(f"test_{folder.name}_*.py"))
