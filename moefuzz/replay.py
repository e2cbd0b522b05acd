"""Replaying saved reproducers against a kernel (what CI runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moefuzz.corpus import Finding, iter_finding_paths, load_finding
from moefuzz.isolation import Executor
from moefuzz.outcome import Outcome
from moefuzz.registry import get_target


@dataclass(frozen=True)
class ReplayResult:
    """One reproducer replayed: where it lies, the kernel it ran on, what happened."""

    path: Path
    finding: Finding
    kernel: str
    outcome: Outcome


def replay_findings(
    paths: list[Path], kernel: str | None = None, device: str = "auto", case_timeout_s: float = 60.0
) -> list[ReplayResult]:
    """Run every finding under ``paths`` against ``kernel`` (default: the kernel it was found
    on). All findings are loaded and validated before any worker starts.

    Raises:
        CorpusError: a path that holds no finding, or a corrupt one.
        UnknownTargetError: a finding of a target or kernel this moefuzz does not have.
    """
    findings = [(path, load_finding(path)) for path in iter_finding_paths(paths)]
    groups: dict[tuple[str, str], list[tuple[Path, Finding]]] = {}
    for path, finding in findings:
        name = get_target(finding.target).kernel(kernel or finding.kernel).name
        groups.setdefault((finding.target, name), []).append((path, finding))
    results: list[ReplayResult] = []
    for (target, name), members in groups.items():
        with Executor(target, name, device, case_timeout_s, spare=False) as executor:
            for path, finding in members:
                results.append(ReplayResult(path, finding, name, executor.run(finding.case)))
    return sorted(results, key=lambda r: str(r.path))
