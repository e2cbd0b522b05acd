"""``moefuzz export``: a finding as a standalone script for a bug report.

:func:`export_finding` writes ``repro.py`` (and ``repro.npz`` beside it when the case has large
arrays): the case, poisoned output buffers, the kernel's launch, the oracle and a plain
comparison, runnable where only torch, triton, numpy and the kernel's own package are installed.
Modules: :mod:`~moefuzz.ui.export.script` (writes the text), :mod:`~moefuzz.ui.export.runtime` (the
script's body, copied in), :mod:`~moefuzz.ui.export.checks` (what to compare, read off the
contract), :mod:`~moefuzz.ui.export.importscan` (does the kernel's module import moefuzz?).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from moefuzz import __version__
from moefuzz.errors import ExportError, UsageError
from moefuzz.model.registry import get_target
from moefuzz.model.target import KernelSpec, Target, resolve_entry
from moefuzz.store.corpus import Finding, load_finding
from moefuzz.ui.export.checks import OutputCheck, derive_checks
from moefuzz.ui.export.importscan import MoefuzzImport, moefuzz_imports
from moefuzz.ui.export.script import INLINE_MAX_ENTRIES, ScriptParts, npz_bytes, render_script

__all__ = ["ExportResult", "export_finding"]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_finding` wrote.

    Attributes:
        script: the ``.py`` file.
        npz: the ``.npz`` beside it with the large arrays, or ``None`` when all are inline.
        kernel: the kernel the script launches.
        checks: per output, what the script compares.
        moefuzz_imports: module-level imports of moefuzz the kernel's or oracle's modules would
            run; non-empty means the script needs moefuzz installed after all.
        unimportable: the kernel's or oracle's modules that no ``sys.path`` entry provides by
            name (a target file named in ``MOEFUZZ_TARGETS`` by path): the script cannot import
            them unless their directory is put on ``PYTHONPATH`` under that name.
    """

    script: Path
    npz: Path | None
    kernel: KernelSpec
    checks: dict[str, OutputCheck]
    moefuzz_imports: list[MoefuzzImport]
    unimportable: list[str]


def export_finding(
    path: Path, output: Path, kernel: str | None = None, inline_max: int = INLINE_MAX_ENTRIES
) -> ExportResult:
    """Write the finding at ``path`` (a finding directory or its ``finding.json``) as a script.

    Args:
        path: the finding, as ``moefuzz show`` takes it.
        output: the script to write (``.py``); large arrays go to the same name with ``.npz``.
        kernel: the target's kernel to launch (default: the one the finding was recorded on).
        inline_max: arrays with more entries go to the ``.npz``.

    Runs the target's oracle once on the CPU (plain torch), to read the contract's checks off
    its outputs; never a kernel.

    Raises:
        CorpusError: no finding at ``path``, or a corrupt one.
        UnknownTargetError: a target or kernel this moefuzz does not have.
        UsageError: ``output`` is not a ``.py`` file name in an existing directory.
        ExportError: the oracle fails on the case, or the contract rejects the oracle's outputs.
    """
    if output.suffix != ".py":
        raise UsageError(f"output={str(output)!r} must name a .py file")
    if not output.parent.is_dir():
        raise UsageError(f"output={str(output)!r}: no such directory {str(output.parent)!r}")
    if inline_max < 0:
        raise UsageError(f"inline_max={inline_max!r} must be >= 0")
    finding = load_finding(path)
    target = get_target(finding.target)
    spec = target.kernel(kernel or finding.kernel)
    ref = _oracle_outputs(target, finding)
    try:
        checks = derive_checks(target.compare, finding.case, ref)
    except ValueError as exc:
        raise ExportError(f"target={target.name!r}: {exc} on the case of path={str(path)!r}") from None
    npz_path = output.with_suffix(".npz")
    parts = ScriptParts(
        header=_header(finding, target, spec, path),
        kernel_entry=spec.entry,
        oracle_entry=target.oracle,
        recorded=f"{finding.signature} on kernel {finding.kernel}: {finding.message}",
        script_name=output.name,
        npz_name=npz_path.name,
    )
    text, large = render_script(parts, finding.case, target.output_specs(finding.case), checks, inline_max)
    if large:
        _write(npz_path, npz_bytes(large))
    _write(output, text.encode())
    output.chmod(0o755)
    entries = [spec.entry, target.oracle]
    return ExportResult(
        output, npz_path if large else None, spec, checks, moefuzz_imports(entries), _unimportable(entries)
    )


def _unimportable(entries: list[str]) -> list[str]:
    """Entry modules whose top-level package no import finder provides (``sys.modules`` aside:
    a target file loaded by path is there under a name nothing else knows)."""
    missing = []
    for module in dict.fromkeys(entry.partition(":")[0] for entry in entries):
        top = module.split(".")[0]
        finders = [f for f in sys.meta_path if hasattr(f, "find_spec")]
        if not any(_provides(finder, top) for finder in finders):
            missing.append(module)
    return missing


def _provides(finder: object, name: str) -> bool:
    try:
        return finder.find_spec(name, None) is not None  # type: ignore[attr-defined]
    except (ImportError, ValueError, TypeError):
        return False


def _oracle_outputs(target: Target, finding: Finding) -> dict:
    from moefuzz.execute.inprocess import oracle_outputs

    try:
        return oracle_outputs(resolve_entry(target.oracle), finding.case)
    except Exception as exc:
        raise ExportError(
            f"oracle={target.oracle!r} fails on the case of finding={finding.finding_id!r}: {type(exc).__name__}: {exc}"
        ) from None


def _header(finding: Finding, target: Target, spec: KernelSpec, path: Path) -> list[str]:
    env, found = finding.environment, finding.found
    lines = [
        f"{target.name} / kernel {spec.name}: {finding.signature}",
        "",
        f"target     {target.name}: {target.summary}",
        f"contract   {target.source}",
        f"kernel     {spec.name} = {spec.entry}",
    ]
    if spec.models_bug:
        lines.append(f"           models {spec.models_bug}")
    if spec.name != finding.kernel:
        lines.append(f"           (the finding was recorded on kernel {finding.kernel})")
    lines += [
        f"oracle     {target.oracle} (plain torch, on the CPU)",
        f"signature  {finding.signature}",
        f"message    {finding.message}",
    ]
    lines += [f"where      {part}" for part in finding.explanation.splitlines()]
    lines.append(f"case       {finding.case.describe()}")
    if env:
        lines.append(
            f"found on   {env.get('device_name', env.get('device', '?'))}, torch {env.get('torch', '?')}, "
            f"triton {env.get('triton', '?')}, python {env.get('python', '?')}"
            + (f" (seed {found['seed']}, after {found.get('elapsed_s', '?')} s)" if "seed" in found else "")
        )
    lines.append(f"exported   by moefuzz {__version__} from {path}")
    return lines


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
