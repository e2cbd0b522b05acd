"""A time-budgeted fuzzing campaign of one target and kernel.

Loop: draw a case, check the contract's preconditions, run it in the executor's worker. A failing
outcome becomes a :class:`~moefuzz.corpus.Finding`, saved to the corpus at once (before any
shrinking, so it cannot be lost), then minimized and saved again. A failure whose finding id the
corpus already holds is counted, not saved twice. The campaign never stops at a finding.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from moefuzz.corpus import Finding, save_finding
from moefuzz.errors import CaseError, MoefuzzError
from moefuzz.generate import CaseSource
from moefuzz.isolation import Executor
from moefuzz.minimize import minimize_finding
from moefuzz.perturb import plan_perturbations
from moefuzz.registry import get_target
from moefuzz.target import INTERPRETER_LIMITS, Limits


@dataclass(frozen=True)
class CampaignConfig:
    """What to fuzz and for how long.

    Attributes:
        target, kernel: names (``kernel=None`` takes the target's default kernel).
        duration_s: fuzzing budget in seconds (shrinking a finding may run past it, up to
            ``shrink_budget_s``).
        corpus: the corpus directory; findings go to ``corpus/<target>/<finding-id>/``.
        seed: seeds the case source; the same seed draws the same cases.
        device: ``auto``, ``cuda`` or ``cpu`` (Triton interpreter).
        case_timeout_s: a case running longer is a hang (default 30 s on a GPU, where the first
            launch of a shape includes Triton's compile; 120 s in the interpreter).
        shrink_budget_s: seconds to shrink each finding (default: a quarter of the duration,
            at least 60 s, at most 600 s).
        limits: size limits (default: full sizes on a GPU, smaller in the interpreter).
        perturb_runs: launches per case under schedule perturbation (1: one plain launch; more:
            the plain launch, then the target's launch knobs and poison patterns varied, see
            :mod:`moefuzz.perturb`).
        caching_allocator: False sets ``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` in the workers, so
            every buffer is a fresh allocation (stale reads see what the driver leaves).
    """

    target: str
    kernel: str | None
    duration_s: float
    corpus: Path
    seed: int = 0
    device: str = "auto"
    case_timeout_s: float | None = None
    shrink_budget_s: float | None = None
    limits: Limits | None = None
    perturb_runs: int = 1
    caching_allocator: bool = True


@dataclass
class CampaignStatus:
    """Live counters, handed to the status callback."""

    target: str
    kernel: str
    device: str = "starting"
    started: float = field(default_factory=time.monotonic)
    fuzzing_since: float | None = None
    execs: int = 0
    launches: int = 0
    exec_seconds: float = 0.0
    findings: list[tuple[Path, Finding]] = field(default_factory=list)
    known: int = 0
    shrinking: str | None = None
    worker_restarts: int = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def execs_per_s(self) -> float:
        """Executions per second since fuzzing began (worker start-up excluded)."""
        if self.fuzzing_since is None:
            return 0.0
        seconds = time.monotonic() - self.fuzzing_since
        return self.execs / seconds if seconds > 0 else 0.0


def run_campaign(config: CampaignConfig, on_status: Callable[[CampaignStatus], None] | None = None) -> CampaignStatus:
    """Fuzz ``config.target`` for ``config.duration_s`` seconds; return the final status.

    Raises:
        UnknownTargetError: unknown target or kernel.
        WorkerError: no worker could start.
        MoefuzzError: the strategy produced a case the contract rejects (a target bug).
    """
    target = get_target(config.target)
    kernel = target.kernel(config.kernel)
    status = CampaignStatus(target.name, kernel.name)
    notify = on_status or (lambda _: None)
    case_timeout = config.case_timeout_s
    env = {} if config.caching_allocator else {"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}
    executor = Executor(target.name, kernel.name, config.device, case_timeout_s=case_timeout or 120.0, env=env)
    try:
        environment = executor.start()
        status.device = environment.get("device_name", environment.get("device", "?"))
        if case_timeout is None:
            executor.case_timeout_s = 30.0 if executor.device == "cuda" else 120.0
        limits = config.limits or (Limits() if executor.device == "cuda" else INTERPRETER_LIMITS)
        source = CaseSource(target.strategy(limits), config.seed)
        shrink_budget = config.shrink_budget_s or min(600.0, max(60.0, config.duration_s / 4))
        status.fuzzing_since = time.monotonic()
        deadline = status.fuzzing_since + config.duration_s
        known_ids = {p.name for p in (config.corpus / target.name).glob("*") if p.is_dir()}
        while time.monotonic() < deadline:
            case = source.draw()
            try:
                target.check(case)
            except CaseError as exc:
                raise MoefuzzError(f"target {target.name!r} generated a case its contract rejects: {exc}") from None
            plan_seed = config.seed * 1_000_003 + status.execs
            plan = plan_perturbations(target.launch_knobs, config.perturb_runs, plan_seed)
            outcome = executor.run(case, plan=plan)
            status.execs += 1
            status.launches += outcome.runs
            status.exec_seconds += outcome.seconds
            status.worker_restarts = executor.replacements
            if outcome.failed:
                finding = Finding(
                    target=target.name,
                    kernel=kernel.name,
                    kind=outcome.kind,
                    detail=outcome.detail,
                    message=outcome.message,
                    case=case,
                    original_case=case,
                    mismatch=outcome.mismatch,
                    environment=environment,
                    found={
                        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                        "seed": config.seed,
                        "elapsed_s": round(status.elapsed, 3),
                        "execs": status.execs,
                        "runs": outcome.runs,
                        "failures": outcome.rate.failures,
                        "plan_seed": plan_seed,
                        "perturbation": outcome.perturbation,
                        "nondeterministic": outcome.nondeterministic,
                    },
                    shrink={"original_size": list(target.size(case))},
                )
                if finding.finding_id in known_ids:
                    status.known += 1
                else:
                    known_ids.add(finding.finding_id)
                    path = save_finding(config.corpus, finding)
                    status.findings.append((path, finding))
                    status.shrinking = finding.finding_id
                    notify(status)
                    minimize_finding(
                        finding,
                        target,
                        executor,
                        shrink_budget,
                        corpus=config.corpus,
                        on_progress=lambda _r, _c: notify(status),
                    )
                    status.shrinking = None
                    status.worker_restarts = executor.replacements
            notify(status)
    finally:
        executor.close()
    return status
