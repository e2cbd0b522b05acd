"""Replaying saved reproducers against a kernel (what CI runs: ``moefuzz replay``, the pytest
plugin)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from moefuzz.execute.perturb import Rate, recorded_plan, runs_for_confidence
from moefuzz.model.outcome import Outcome
from moefuzz.model.registry import get_target
from moefuzz.runtime.isolation import Executor
from moefuzz.store.corpus import Finding, iter_finding_paths, load_finding


@dataclass(frozen=True)
class ReplayResult:
    """One reproducer replayed: where it lies, the kernel it ran on, what happened, and the
    worker's environment (versions, ``device_name``)."""

    path: Path
    finding: Finding
    kernel: str
    outcome: Outcome
    environment: dict[str, str] = field(default_factory=dict)


class Replayer:
    """Replays findings in isolated workers, one (target, kernel) at a time.

    A worker starts on the first finding of a (target, kernel) pair and is kept while the next
    findings use the same pair; another pair closes it and starts its own. Use as a context
    manager, or call :meth:`close`.

    Args:
        kernel: replay every finding against this kernel (``None``: the kernel it was found on).
        device: ``auto``, ``cuda`` or ``cpu``.
        case_timeout_s: seconds before a replayed case is a hang.
    """

    def __init__(self, kernel: str | None = None, device: str = "auto", case_timeout_s: float = 60.0) -> None:
        self.kernel = kernel
        self.device = device
        self.case_timeout_s = case_timeout_s
        self._key: tuple[str, str] | None = None
        self._executor: Executor | None = None

    def kernel_for(self, finding: Finding) -> str:
        """The kernel ``finding`` replays on.

        Raises:
            UnknownTargetError: a target or kernel this moefuzz does not have.
        """
        return get_target(finding.target).kernel(self.kernel or finding.kernel).name

    def replay(self, path: Path, finding: Finding) -> ReplayResult:
        """Run ``finding``'s case (under its perturbation plan, :func:`confident_runs` times for
        a flaky finding) and return what happened.

        Raises:
            UnknownTargetError: as :meth:`kernel_for`.
            WorkerError: no worker could start for its target and kernel.
        """
        key = (finding.target, self.kernel_for(finding))
        if key != self._key or self._executor is None:
            self.close()
            self._executor = Executor(key[0], key[1], self.device, self.case_timeout_s, spare=False)
            self._key = key
            self._executor.start()
        plan = recorded_plan(finding.found, get_target(finding.target).launch_knobs, confident_runs(finding))
        outcome = self._executor.run(finding.case, plan=plan)
        return ReplayResult(path, finding, key[1], outcome, dict(self._executor.environment))

    def close(self) -> None:
        """Stop the worker, if any."""
        if self._executor is not None:
            self._executor.close()
        self._executor, self._key = None, None

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
    with Replayer(kernel, device, case_timeout_s) as replayer:
        keyed = sorted(findings, key=lambda item: (item[1].target, replayer.kernel_for(item[1]), str(item[0])))
        results = [replayer.replay(path, finding) for path, finding in keyed]
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
    1 - :data:`~moefuzz.execute.perturb.MISS_PROBABILITY` (see :func:`~moefuzz.execute.perturb.runs_for_confidence`)."""
    rate = recorded_rate(finding)
    recorded = max(int(finding.found.get("runs", 1)), 1)
    if not rate.flaky:
        return recorded
    return max(recorded, runs_for_confidence(rate.value))
