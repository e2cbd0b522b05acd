"""Findings that fail in some launches only: their rate, and a sequential test for candidates.

A race shows in some launches of one input and not in others, and a crash takes its worker with
it, so the k-of-N rate of a crash cannot come from one worker's perturbation plan (the first
failing launch ends the worker). :func:`estimate_rate` relaunches the case, each launch a fresh
``executor.run`` (a crash's worker is replaced before the next one), and counts the launches
that fail with the finding's signature. A case that failed in every relaunch is deterministic
and shrinks as before, one launch a candidate.

A flaky finding's candidate is kept while its rate stays at or above
:func:`~moefuzz.execute.perturb.rate_floor` (half the finding's rate). One launch cannot say so,
and a fixed number of launches spends as many on a candidate that plainly fails (or plainly
does not) as on a borderline one, so :func:`keeps_rate` runs Wald's sequential probability
ratio test between the finding's rate ``p`` (keep) and ``p / 4`` (drop), whose even point lies
near ``p / 2``: a candidate at the finding's rate is kept after about two failing launches, one
that no longer fails is dropped after a handful of passing ones (launches that cost no worker).

Pure functions of a ``launch() -> bool`` callable: nothing here runs a worker itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from moefuzz.execute.perturb import Rate

#: Relaunches that decide whether a finding is flaky: failing in all of them, it is taken as
#: deterministic (rate 1) and shrinks one launch a candidate. A 1-in-3 race fails all five
#: in 0.4 % of findings (all three in 3.7 %, and one taken as deterministic barely shrinks).
CONFIRM_RUNS = 5
#: Relaunches (all told, the confirming ones included) that estimate a flaky finding's rate.
RATE_RUNS = 8
#: Error probabilities of the sequential test: keeping a candidate at a quarter of the
#: finding's rate, and dropping one at the finding's rate.
ALPHA = BETA = 0.1
#: Most launches the sequential test gives one candidate; it then keeps the candidate if its
#: observed rate is at least half the finding's.
MAX_TEST_RUNS = 24
#: Normal quantile of the one-sided lower bound :func:`cautious_rate` takes (90 %).
CAUTION_Z = 1.2816


def estimate_rate(
    launch: Callable[[], bool],
    confirm_runs: int = CONFIRM_RUNS,
    rate_runs: int = RATE_RUNS,
    stop: Callable[[], bool] = lambda: False,
) -> Rate:
    """The rate of a finding's case, from relaunches after the launch that found it.

    ``launch()`` runs the case once (in a fresh worker after a crash) and says whether it failed
    with the finding's signature. The first ``confirm_runs`` relaunches all failing make the
    rate 1 (``Rate(n, n)``, deterministic); otherwise relaunching goes on to ``rate_runs`` and
    the rate counts the finding's own launch too (k + 1 of N + 1: a case that failed once is
    never given a rate of 0). ``stop()`` (a spent budget) ends the relaunches early; a finding
    with no relaunch at all keeps the rate 1/1 of its one launch.
    """
    failures = runs = 0
    while runs < rate_runs and not stop():
        failures += launch()
        runs += 1
        if runs == confirm_runs and failures == runs:
            break
    if failures == runs:
        return Rate(runs + 1, runs + 1) if runs else Rate(1, 1)
    return Rate(failures + 1, runs + 1)


def cautious_rate(rate: Rate, z: float = CAUTION_Z) -> float:
    """The rate a flaky finding's candidates are tested against: the Wilson lower bound of
    ``rate`` (one-sided, quantile ``z``), never above its observed value.

    Nine launches estimate a rate loosely: a 1-in-3 race shows anywhere from 2/9 to 6/9. Tested
    against 6/9, a candidate that keeps the race's true rate sits at the test's indifference
    point (half of 6/9): it is dropped half the time, after up to :data:`MAX_TEST_RUNS` launches,
    each failing one a new worker. The lower bound (0.45 for 6/9, 0.17 for 3/9) keeps such a
    candidate after about two failing launches, and one that lost the bug is still dropped.
    """
    n, p = rate.runs, rate.value
    if n == 0:
        return p
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return min(p, max(0.0, centre - margin))


def keeps_rate(
    launch: Callable[[], bool],
    rate: Rate | float,
    max_runs: int = MAX_TEST_RUNS,
    stop: Callable[[], bool] = lambda: False,
) -> tuple[bool, Rate]:
    """Whether a candidate keeps a flaky finding's rate (``rate``, 0 < p < 1: a :class:`Rate`
    or a probability, such as :func:`cautious_rate`'s), and the rate it showed: Wald's SPRT of
    p (keep) against p / 4 (drop) with error probabilities :data:`ALPHA` and :data:`BETA`, at
    most ``max_runs`` launches (then: kept if failures/runs >= p / 2). ``stop()`` ends the test
    early as a drop."""
    p = rate.value if isinstance(rate, Rate) else float(rate)
    if not 0.0 < p < 1.0:
        raise ValueError(f"keeps_rate tests a flaky rate, not {rate}")
    low = p / 4
    on_failure = math.log(p / low)
    on_pass = math.log((1 - p) / (1 - low))
    accept, reject = math.log((1 - BETA) / ALPHA), math.log(BETA / (1 - ALPHA))
    evidence, failures, runs = 0.0, 0, 0
    while runs < max_runs:
        if stop():
            return False, Rate(failures, runs)
        failed = launch()
        failures += failed
        runs += 1
        evidence += on_failure if failed else on_pass
        if evidence >= accept:
            return True, Rate(failures, runs)
        if evidence <= reject:
            return False, Rate(failures, runs)
    return failures / runs >= p / 2, Rate(failures, runs)
