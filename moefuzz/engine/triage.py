"""What becomes of a failing case: confirmed (a hang), saved as a finding at once, shrunk, saved
again; or counted, when the corpus already holds its finding."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

from moefuzz.engine.config import CampaignConfig, CampaignStatus
from moefuzz.errors import HarnessError
from moefuzz.execute.perturb import Perturbation
from moefuzz.model.case import Case
from moefuzz.model.outcome import Outcome
from moefuzz.model.target import Target
from moefuzz.runtime import stopping
from moefuzz.runtime.isolation import Executor
from moefuzz.shrinking import Shrinker
from moefuzz.shrinking.finding import minimize_finding
from moefuzz.store.corpus import Finding, save_finding, scan_target

#: A case that hangs is run again with this many times the case timeout before it is saved.
HANG_CONFIRM_FACTOR = 4


def check_outcome(target: Target, status: CampaignStatus, outcome: Outcome, case: Case | None) -> None:
    """Stop at the target's own code raising (a ``harness`` outcome: a bug of the target, exit 3,
    nothing saved); count a ``resource`` outcome in ``status`` (the machine, not the kernel).

    Raises:
        HarnessError: ``outcome`` is a harness error.
    """
    if outcome.kind == "harness":
        where = f" on a case of size {target.size(case)}" if case is not None else ""
        raise HarnessError(
            f"target {target.name!r}: {outcome.message}{where} (a bug of the target, not a kernel "
            f"finding; nothing saved for it)\n{outcome.log_tail.rstrip()}"
        )
    if outcome.kind == "resource":
        status.resource_failures[outcome.detail] = status.resource_failures.get(outcome.detail, 0) + 1


def default_shrink_budget(duration_s: float) -> float:
    """Seconds to shrink each finding of a campaign of ``duration_s`` seconds: a quarter of it,
    at least 60 s, at most 600 s."""
    return min(600.0, max(60.0, duration_s / 4))


def known_finding_ids(corpus: Path, target: str) -> set[str]:
    """Ids of the findings of ``target`` the corpus directory ``corpus`` holds: only directories
    with a valid finding (see :func:`~moefuzz.store.corpus.scan_target`)."""
    return scan_target(corpus, target).known


def new_finding(
    target: Target,
    kernel: str,
    case: Case,
    outcome: Outcome,
    environment: dict[str, str],
    seed: int,
    plan_seed: int,
    when: tuple[float, int],
    index: int | None = None,
) -> Finding:
    """The finding of a failing ``outcome`` of ``case``, not yet shrunk. ``when``: the campaign's
    elapsed seconds and executions when the failure came back; ``index``: the case's buffer in
    the campaign's byte stream, when it was drawn from one."""
    return Finding(
        target=target.name,
        kernel=kernel,
        kind=outcome.kind,
        detail=outcome.detail,
        message=outcome.message,
        case=case,
        original_case=case,
        mismatch=outcome.mismatch,
        environment=environment,
        found={
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seed": seed,
            "elapsed_s": when[0],
            "execs": when[1],
            "runs": outcome.runs,
            "failures": outcome.rate.failures,
            "plan_seed": plan_seed,
            "perturbation": outcome.perturbation,
            "nondeterministic": outcome.nondeterministic,
            **({"stream_index": index} if index is not None else {}),
        },
        shrink={"original_size": list(target.size(case))},
    )


class Triage:
    """Settles the failures of one campaign: see :meth:`settle`.

    Args:
        config: the campaign's config (corpus, seed, shrink budget).
        target, kernel: what runs.
        executor: where hangs are confirmed and shrink candidates run.
        status: the campaign's live status (findings, known, shrinking counters).
        notify: called with the status as a finding is saved and while it shrinks.

    Attributes:
        known_ids: ids of the findings the corpus holds (:meth:`load_known` reads them).
        environment: the worker's environment, recorded with every finding.
    """

    def __init__(
        self,
        config: CampaignConfig,
        target: Target,
        kernel: str,
        executor: Executor,
        status: CampaignStatus,
        notify: Callable[[CampaignStatus], None],
    ) -> None:
        self.config, self.target, self.kernel = config, target, kernel
        self.executor, self.status, self._notify = executor, status, notify
        self.shrink_budget_s = config.shrink_budget_s or default_shrink_budget(config.duration_s)
        self.known_ids: set[str] = set()
        self.environment: dict[str, str] = {}

    def load_known(self) -> None:
        """Read the ids of the findings the corpus holds already."""
        scan = scan_target(self.config.corpus, self.target.name)  # only valid findings are known
        self.known_ids, self.status.corpus_problems = scan.known, scan.problems
        self.status.corpus_size = len(self.known_ids)

    def settle(
        self,
        case: Case,
        plan: list[Perturbation],
        plan_seed: int,
        outcome: Outcome,
        when: tuple[float, int],
        index: int | None = None,
    ) -> None:
        """Save, shrink and save again a new failure of ``case``; count a known one. A hang is
        confirmed first (:meth:`confirm_hang`). ``when``: the campaign's elapsed seconds and
        executions when the failure came back; ``index``: the case's buffer in the campaign's
        :func:`~moefuzz.engine.generate.byte_stream`, when it was drawn from one."""
        if outcome.kind == "hang":
            if stopping.requested():  # no time to confirm it: not saved, as an unconfirmed one
                self.status.unconfirmed_hangs += 1
                return
            outcome = self.confirm_hang(case, plan, outcome)
        if not outcome.failed:
            return
        status = self.status
        finding = new_finding(
            self.target, self.kernel, case, outcome, self.environment, self.config.seed, plan_seed, when, index
        )
        if finding.finding_id in self.known_ids:
            status.known += 1
            status.matched[finding.finding_id] = status.matched.get(finding.finding_id, 0) + 1
            return
        self.known_ids.add(finding.finding_id)
        path = save_finding(self.config.corpus, finding)
        status.findings.append((path, finding))
        status.corpus_size = len(self.known_ids)
        if stopping.requested():  # saved as found; `moefuzz shrink` can shrink it later
            return
        status.shrinking = finding.finding_id
        self._notify(status)

        def on_shrink_progress(shrinker: Shrinker) -> None:
            status.shrink_pass = shrinker.current_pass
            status.shrink_candidates = shrinker.candidates
            status.shrink_accepted = shrinker.accepted
            if stopping.requested():
                shrinker.stop()  # the best case so far is saved on the way out
            self._notify(status)

        budget, corpus = self.shrink_budget_s, self.config.corpus
        minimize_finding(finding, self.target, self.executor, budget, corpus=corpus, on_progress=on_shrink_progress)
        status.shrinking, status.shrink_pass = None, ""
        status.shrink_candidates = status.shrink_accepted = 0

    def confirm_hang(self, case: Case, plan: list[Perturbation], first: Outcome) -> Outcome:
        """Run a case that hung once more with :data:`HANG_CONFIRM_FACTOR` times the timeout
        (a fresh worker, the compile cache now warmer). A first launch can spend the whole case
        timeout in Triton's compiler when many campaigns compile at once; only a case that hangs
        again is a hang. Returns the second outcome (a pass, a failure, or the confirmed hang)."""
        timeout = self.executor.case_timeout_s
        self.executor.case_timeout_s = timeout * HANG_CONFIRM_FACTOR
        try:
            second = self.executor.run(case, plan=plan)
        finally:
            self.executor.case_timeout_s = timeout
        self.status.unconfirmed_hangs += second.kind != "hang"
        return second if second.kind != "hang" else first
