"""How much of a target's input domain a campaign's case source reaches, without running a kernel.

:func:`draw_coverage` draws the first ``cases`` cases a campaign of ``seed`` would run (the same
:func:`~moefuzz.engine.generate.byte_stream` and strategy; rejected bytes skipped, as the campaign
skips them) and counts the points of the target's :class:`~moefuzz.model.domain.Domain` each one
hits. ``moefuzz coverage`` prints it; a campaign's JSON report counts the same points on the cases
it drew.
"""

from __future__ import annotations

from moefuzz.engine.generate import CaseSource
from moefuzz.errors import UsageError
from moefuzz.model.domain import Coverage, coverage_of
from moefuzz.model.target import Limits, Target


def draw_coverage(target: Target, limits: Limits, cases: int, seed: int = 0) -> Coverage:
    """Coverage of ``target``'s domain by the first ``cases`` cases of a campaign of ``seed``
    within ``limits``.

    Raises:
        UsageError: the target declares no domain.
    """
    coverage = coverage_of(target.domain, limits)
    if coverage is None:
        raise UsageError(f"target {target.name!r} declares no input domain")
    source = CaseSource(target.strategy(limits), seed)
    for _ in range(cases):
        coverage.add(source.draw())
    return coverage
