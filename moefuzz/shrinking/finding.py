"""Minimizing a finding with the target's shrink passes, every candidate run in a worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from moefuzz.execute.perturb import Rate, rate_floor, recorded_plan
from moefuzz.model.case import Case
from moefuzz.model.outcome import Outcome
from moefuzz.model.target import Target
from moefuzz.runtime.isolation import Executor
from moefuzz.shrinking import Shrinker, ShrinkResult
from moefuzz.shrinking.flaky import cautious_rate, estimate_rate, keeps_rate
from moefuzz.store.corpus import Finding, save_finding

#: Least seconds between two progress saves while shrinking (the final result is always saved).
SAVE_INTERVAL_S = 2.0
#: Rounds in a row that must accept nothing before a flaky finding's shrink is complete: a
#: candidate the sequential test wrongly dropped (about one in ten of those that fail) runs
#: again in the next round (:class:`~moefuzz.shrinking.shrinker.Shrinker`'s ``confirm_rounds``).
FLAKY_CONFIRM_ROUNDS = 2
#: Kinds of finding found by one plain launch whose rate is estimated by relaunching
#: (:func:`~moefuzz.shrinking.flaky.estimate_rate`): a hang costs a timeout a launch, and an
#: error is the launcher refusing the input, which does not depend on the schedule.
RELAUNCHED_KINDS = ("crash", "divergence")


def minimize_finding(
    finding: Finding,
    target: Target,
    executor: Executor,
    budget_s: float,
    corpus: Path | None = None,
    directory: Path | None = None,
    on_progress: Callable[[Shrinker], None] | None = None,
) -> ShrinkResult:
    """Shrink ``finding.case`` in place to the smallest case that fails with the same signature.

    A finding found under schedule perturbation (``found["runs"] > 1``) runs every candidate
    under the same perturbation plan, and keeps it only while its failure rate stays at or
    above :func:`~moefuzz.execute.perturb.rate_floor` of the finding's rate; the rate of the shrunk case
    is recorded in ``finding.shrink["rate"]``.

    A crash or divergence found by one plain launch is relaunched first
    (:func:`~moefuzz.shrinking.flaky.estimate_rate`, out of the budget); its rate is recorded in
    ``finding.found["launch_rate"]`` (and reused by a later shrink). One that fails in some
    launches only is flaky: every candidate is launched until a sequential test
    (:func:`~moefuzz.shrinking.flaky.keeps_rate`) says whether its rate stays at or above half
    the finding's, and the rate the shrunk case showed goes in ``finding.shrink["rate"]``.

    Each improvement is saved to ``corpus`` (or to ``directory``, where the finding lies),
    atomically, at most every :data:`SAVE_INTERVAL_S` seconds and at the end, so a campaign
    killed mid-shrink keeps the best case so far. On
    return ``finding`` holds the shrunk case, its mismatch, explanation and shrink statistics.

    ``on_progress(shrinker)`` is called after every candidate run and every accepted one (its
    ``current_pass``, ``candidates`` and ``accepted`` say where the shrink stands).
    """
    signature = finding.signature
    outcomes: dict[str, Outcome] = {}
    rates: dict[str, Rate] = {}
    started = time.monotonic()
    last_save = started
    plan = recorded_plan(finding.found, target.launch_knobs)
    floor = rate_floor(Rate(int(finding.found.get("failures", 1)), int(finding.found.get("runs", 1))))
    launch_rate = None if plan is not None else _launch_rate(finding, executor, started + budget_s)

    def fails_same_way(candidate: Case) -> bool:
        if launch_rate is not None and launch_rate.flaky:
            return fails_often_enough(candidate, launch_rate)
        outcome = executor.run(candidate, plan=plan)
        if on_progress is not None:
            on_progress(shrinker)
        if outcome.signature == signature and outcome.rate.value >= floor:
            outcomes[candidate.digest()] = outcome
            return True
        return False

    def fails_often_enough(candidate: Case, rate: Rate) -> bool:
        failing: list[Outcome] = []

        def launch() -> bool:
            outcome = executor.run(candidate)
            if on_progress is not None:
                on_progress(shrinker)
            failing.extend([outcome] if outcome.signature == signature else [])
            return outcome.signature == signature

        kept, shown = keeps_rate(launch, cautious_rate(rate), stop=lambda: shrinker.exhausted)
        if kept:
            outcomes[candidate.digest()], rates[candidate.digest()] = failing[0], shown
        return kept

    def on_improvement(candidate: Case) -> None:
        nonlocal last_save
        _adopt(finding, target, candidate, outcomes[candidate.digest()])
        if on_progress is not None:
            on_progress(shrinker)
        if (corpus or directory) is not None and time.monotonic() - last_save >= SAVE_INTERVAL_S:
            save_finding(corpus, finding, directory)
            last_save = time.monotonic()

    shrinker = Shrinker(
        finding.case,
        fails_same_way,
        target.shrink_passes,
        target.size,
        target.check,
        max(0.0, budget_s - (time.monotonic() - started)),
        on_improvement,
        derive=target.derive,
        confirm_rounds=FLAKY_CONFIRM_ROUNDS if launch_rate is not None and launch_rate.flaky else 1,
    )
    result = shrinker.shrink()
    previous = finding.shrink
    finding.shrink = result.to_json()
    if previous.get("original_size"):
        finding.shrink["original_size"] = previous["original_size"]
        finding.shrink["seconds"] = round(float(previous.get("seconds", 0)) + result.seconds, 3)
    if plan is not None and finding.case.digest() in outcomes:
        finding.shrink["rate"] = str(outcomes[finding.case.digest()].rate)
    elif launch_rate is not None and launch_rate.flaky:
        finding.shrink["rate"] = str(rates.get(finding.case.digest(), launch_rate))
    if finding.mismatch is not None:
        finding.explanation = target.explain(finding.case, finding.mismatch)
    else:
        finding.explanation = target.explain_crash(finding.case)
    if (corpus or directory) is not None:
        save_finding(corpus, finding, directory)
    return result


def _launch_rate(finding: Finding, executor: Executor, deadline: float) -> Rate | None:
    """The finding's rate over plain launches: recorded in ``found["launch_rate"]`` by an
    earlier shrink, else estimated now by relaunching its case (until ``deadline``, a
    :func:`time.monotonic` time) and recorded there; None for a kind not in
    :data:`RELAUNCHED_KINDS`."""
    if finding.kind not in RELAUNCHED_KINDS:
        return None
    recorded = str(finding.found.get("launch_rate", ""))
    if "/" in recorded:
        failures, runs = recorded.split("/")
        return Rate(int(failures), int(runs))

    def launch() -> bool:
        return executor.run(finding.case).signature == finding.signature

    rate = estimate_rate(launch, stop=lambda: time.monotonic() >= deadline)
    finding.found["launch_rate"] = str(rate)
    return rate


def _adopt(finding: Finding, target: Target, case: Case, outcome: Outcome) -> None:
    finding.case = case
    finding.message = outcome.message
    finding.mismatch = outcome.mismatch
