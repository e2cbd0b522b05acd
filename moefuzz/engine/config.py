"""What a campaign is given (:class:`CampaignConfig`) and what it reports while it runs
(:class:`CampaignStatus`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from moefuzz.model.domain import Coverage
from moefuzz.model.target import Limits
from moefuzz.store.corpus import Finding

#: Engines that choose a campaign's cases: ``random`` (seeded random bytes through the target's
#: strategy, the default) and ``atheris`` (libFuzzer's coverage-guided mutations of those bytes).
ENGINES = ("random", "atheris")
#: Former engine names still accepted, each with the name it stands for now.
ENGINE_ALIASES = {"hypothesis": "random"}


def engine_name(name: str) -> str:
    """The current name of engine ``name`` (a former name maps to its new one; any other name is
    returned as it is, for the caller to reject)."""
    return ENGINE_ALIASES.get(name, name)


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
            :mod:`moefuzz.execute.perturb`).
        caching_allocator: False sets ``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` in the workers, so
            every buffer is a fresh allocation (stale reads see what the driver leaves).
        engine: what chooses the cases: ``random`` (seeded random bytes through the target's
            strategy) or ``atheris`` (libFuzzer's coverage-guided mutations of those bytes); a
            former name (``hypothesis``) becomes its new one.
        workers: worker processes running cases at once (``None``:
            :func:`~moefuzz.engine.sizing.auto_workers`); the atheris engine uses one.
        devices: CUDA device indices to spread the workers over, round robin (each worker sees
            its one as ``cuda:0`` through ``CUDA_VISIBLE_DEVICES``); empty: the default device.
        max_findings: end the campaign once this many new findings are saved and shrunk
            (``None``: run the whole budget; benchmarks of time to bug take 1).
        generators: CPU-only processes drawing cases and running the oracle for the workers
            (``0``: each worker draws its own; ``None``:
            :func:`~moefuzz.engine.sizing.auto_generators`, none in the interpreter); the atheris
            engine draws in its own process.
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
    engine: str = "random"
    workers: int | None = None
    devices: tuple[int, ...] = ()
    max_findings: int | None = None
    generators: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "engine", engine_name(self.engine))  # a former name: its new one


@dataclass
class CampaignStatus:
    """Live counters, handed to the status callback (what :mod:`moefuzz.ui.status` shows).

    Attributes:
        target, kernel: what runs.
        device: the worker's device name (``cpu (Triton interpreter...)`` without a GPU).
        device_kind: ``cuda`` or ``cpu`` once a worker started, else ``""``.
        environment: the worker's versions and device (what findings record).
        started, fuzzing_since: ``time.monotonic()`` at start and once workers were ready.
        fuzzing_until: ``time.monotonic()`` when the campaign began to close (its workers and
            generators stopping), else ``None``: the end of what :attr:`execs_per_s` counts.
        first_case_at: ``time.monotonic()`` when the first case's outcome came in (generators
            started and the kernel compiled by then), else ``None``.
        execs, exec_seconds: cases run while fuzzing, and their summed worker time.
        findings: new findings, each with the directory it was saved to.
        known: failures whose finding the corpus already held; ``matched`` counts them by id.
        corpus_size: reproducers of this target in the corpus, new ones included.
        corpus_problems: one line per directory of this target in the corpus that holds no valid
            finding (see :func:`~moefuzz.store.corpus.scan_target`); not counted as known.
        shrinking: id of the finding being shrunk, else ``None``; ``shrink_pass``,
            ``shrink_candidates`` and ``shrink_accepted`` say where that shrink stands.
        worker_restarts: workers replaced after a crash or a hang.
        recovery_seconds: for each replacement, seconds from the failure's report to the end of
            the next case the new worker ran.
        workers: workers running cases (``0`` until the first is ready).
        generators: processes drawing cases for them (``0``: the workers draw their own).
        unconfirmed_hangs: cases that hung once but finished when run again with a longer timeout
            (counted, not saved: a slow first compile, not a hang).
        engine_stats: the engine's own closing figures, such as libFuzzer's coverage counts;
            empty for the default engine.
        generator_restarts: generators replaced after they died.
        resource_failures: cases the machine could not run (``cuda-oom``, ``host-oom``), by
            class: counted, never saved as findings.
        skipped_known_crashers: cases not run because they looked like a known crasher's
            (:mod:`moefuzz.engine.storm`).
        interrupted: the signal that stopped the campaign early (``SIGINT``, ``SIGTERM``), else
            empty.
        skipped_outside_domain: drawn cases outside the kernel's domain, never launched.
        coverage: the target's domain points hit by the cases drawn (a
            :class:`~moefuzz.model.domain.Coverage`; ``None`` before the first or without a domain).
        build: how the kernel's CUDA source was built (``compiled in 41.2 s``, ``cached ...``),
            "" for a kernel without one.
    """

    target: str
    kernel: str
    device: str = "starting"
    device_kind: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    fuzzing_since: float | None = None
    fuzzing_until: float | None = None
    first_case_at: float | None = None
    execs: int = 0
    launches: int = 0
    exec_seconds: float = 0.0
    findings: list[tuple[Path, Finding]] = field(default_factory=list)
    known: int = 0
    matched: dict[str, int] = field(default_factory=dict)
    corpus_size: int = 0
    corpus_problems: list[str] = field(default_factory=list)
    shrinking: str | None = None
    shrink_pass: str = ""
    shrink_candidates: int = 0
    shrink_accepted: int = 0
    worker_restarts: int = 0
    recovery_seconds: list[float] = field(default_factory=list)
    workers: int = 0
    generators: int = 0
    engine_stats: str = ""
    unconfirmed_hangs: int = 0
    generator_restarts: int = 0
    resource_failures: dict[str, int] = field(default_factory=dict)
    skipped_known_crashers: int = 0
    interrupted: str = ""
    skipped_outside_domain: int = 0
    coverage: Coverage | None = None
    build: str = ""

    @property
    def findings_by_kind(self) -> dict[str, int]:
        """New findings per outcome kind: always ``divergence``, ``crash`` and ``hang``, plus
        any other kind met (``error``, ``oracle-error``)."""
        counts = dict.fromkeys(("divergence", "crash", "hang"), 0)
        for _, finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def execs_per_s(self) -> float:
        """Executions per second of fuzzing: from the first worker ready to the campaign's close
        (or now, while it runs). Start-up and the stopping of workers and generators are excluded."""
        if self.fuzzing_since is None:
            return 0.0
        seconds = (self.fuzzing_until or time.monotonic()) - self.fuzzing_since
        return self.execs / seconds if seconds > 0 else 0.0

    @property
    def steady_execs_per_s(self) -> float | None:
        """Executions per second from the first case's outcome to the campaign's close (or now):
        :attr:`execs_per_s` without the generators' start-up and the first kernel load, the rate a
        long campaign converges to; ``None`` before any case came back."""
        if self.first_case_at is None:
            return None
        seconds = (self.fuzzing_until or time.monotonic()) - self.first_case_at
        return (self.execs - 1) / seconds if seconds > 0 else 0.0
