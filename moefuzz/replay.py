"""Replaying saved reproducers against a kernel (what CI runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moefuzz.corpus import Finding, iter_finding_paths, load_finding
from moefuzz.isolation import Executor
from moefuzz.outcome import Outcome
from moefuzz.perturb import Rate, recorded_plan, runs_for_confidence
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

    A finding found under schedule perturbation runs under the same plan; a flaky one (it
    failed in some runs only) runs :func:`confident_runs` times, so that a pass means fixed
    with 99.9 % confidence. Each result's ``outcome.rate`` says how often it failed.

    Raises:
        CorpusError: a path that holds no finding, or a corrupt one.
        UnknownTargetError: a finding of a target or kernel this moefuzz does not have.
    """
    findings = [(path, load_finding(path)) for path in iter_finding_paths(paths)]
    groups: dict[tuple[str, str], list[tuple[Path, Finding]]] = {}
    for path, finding in findings:
        name = get_target(finding.target).kernel(kernel or finding.kernel).name
        groups.setdefault((finding.target, name), []).append((path, finding))
    target_knobs = {target: get_target(target).launch_knobs for target, _ in groups}
    results: list[ReplayResult] = []
    for (target, name), members in groups.items():
        with Executor(target, name, device, case_timeout_s, spare=False) as executor:
            for path, finding in members:
                plan = recorded_plan(finding.found, target_knobs[target], confident_runs(finding))
                results.append(ReplayResult(path, finding, name, executor.run(finding.case, plan=plan)))
    return sorted(results, key=lambda r: str(r.path))


def recorded_rate(finding: Finding) -> Rate:
    """The failure rate of the finding's (shrunk) case as recorded: the shrinker's last
    measure if it took one, else the campaign's."""
    shrunk = str(finding.shrink.get("rate", ""))
    if "/" in shrunk:
        failures, runs = shrunk.split("/")
        return Rate(int(failures), int(runs))
    return Rate(int(finding.found.get("failures", 1)), int(finding.found.get("runs", 1)))


def confident_runs(finding: Finding) -> int:
    """Runs that a replay gives the finding: its recorded runs, or for a flaky finding enough
    runs that a bug still failing at its recorded rate fails at least once with probability
    1 - :data:`~moefuzz.perturb.MISS_PROBABILITY` (see :func:`~moefuzz.perturb.runs_for_confidence`)."""
    rate = recorded_rate(finding)
    recorded = max(int(finding.found.get("runs", 1)), 1)
    if not rate.flaky:
        return recorded
    return max(recorded, runs_for_confidence(rate.value))
