"""A Ray campaign's status, assembled by the driver from its actors' latest reports: the
counters (the skipped cases and the domain coverage among them) summed over the actors and their
restarts, the workers and generators of the live ones, the fuzzing window, the shrink in progress.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from moefuzz.cluster.data import ClusterStatus
from moefuzz.cluster.pool import SUMMED, ActorSlot, add_coverage
from moefuzz.model.domain import Coverage


def sum_status(
    status: ClusterStatus, slots: Sequence[ActorSlot], driver_known: int, driver_matched: dict[str, int]
) -> None:
    """Set ``status``'s counters from ``slots``: each :data:`~moefuzz.cluster.pool.SUMMED`
    counter over every incarnation of every actor, plus ``driver_known`` known failures (and
    their ``driver_matched`` counts per finding id) the driver counted itself; the domain
    coverage, its cases and each point's hits summed the same way (``None`` while no actor sent
    one); the workers and generators of the actors fuzzing or done; the earliest start of
    fuzzing and first case (``time.monotonic()`` seconds); the shrink one actor runs, if any."""
    for name in SUMMED:
        total = sum(s.base.get(name, 0) + s.current.get(name, 0) for s in slots)
        setattr(status, name, total)
    status.known += driver_known
    matched = dict(driver_matched)
    for slot in slots:
        for source in (slot.base.get("matched", {}), slot.current.get("matched", {})):
            for key, count in source.items():
                matched[key] = matched.get(key, 0) + count
    status.matched = matched
    coverage = None
    for slot in slots:
        for part in (slot.base.get("coverage"), slot.current.get("coverage")):
            coverage = add_coverage(coverage, part)
    status.coverage = None if coverage is None else Coverage.from_hits(coverage["hits"], coverage["cases"])
    status.recovery_seconds = [x for s in slots for x in s.current.get("recovery_seconds", [])]
    live = [s for s in slots if s.info.state in ("fuzzing", "done")]
    status.workers = sum(int(s.current.get("workers", 0)) for s in live)
    status.generators = sum(int(s.current.get("generators", 0)) for s in live)
    since = [s.fuzzing_since for s in slots if s.fuzzing_since is not None]
    first = [s.first_case_at for s in slots if s.first_case_at is not None]
    status.fuzzing_since = min(since) if since else None
    status.first_case_at = min(first) if first else None
    shrinking = next((s.current for s in live if s.current.get("shrinking")), None)
    if shrinking is not None:
        status.shrinking = shrinking["shrinking"]
        status.shrink_pass = shrinking.get("shrink_pass", "")
        status.shrink_candidates = int(shrinking.get("shrink_candidates", 0))
        status.shrink_accepted = int(shrinking.get("shrink_accepted", 0))
    else:
        status.shrinking, status.shrink_pass = None, ""
        status.shrink_candidates = status.shrink_accepted = 0


def close_status(status: ClusterStatus, slots: Sequence[ActorSlot]) -> ClusterStatus:
    """``status`` at the campaign's end: fuzzing ended when the last actor stopped (now, if it
    fuzzed and none said when), and no shrink runs."""
    until = [s.fuzzing_until for s in slots if s.fuzzing_until is not None]
    if status.fuzzing_since is not None:
        status.fuzzing_until = max(until) if until else time.monotonic()
    status.shrinking = None
    return status
