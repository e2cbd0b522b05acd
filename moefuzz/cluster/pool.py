"""The driver's record of its Ray actors: one :class:`ActorSlot` per actor, what starting it asks
of it, its counters across the restarts Ray makes, and the cases a dead actor leaves behind.

Nothing here talks to Ray; :mod:`moefuzz.cluster.driver` does, and keeps these records.
"""

from __future__ import annotations

import datetime
import itertools
import os
import time
from dataclasses import dataclass, field
from typing import Any

from moefuzz.cluster.actor import FORWARDED_ENV
from moefuzz.cluster.data import ActorInfo
from moefuzz.engine.campaign import CampaignConfig
from moefuzz.engine.generate import CaseSource, byte_stream
from moefuzz.model.target import KernelSpec, Limits, Target
from moefuzz.store.corpus import Finding

#: Counters summed over the actors (and over the incarnations of each).
SUMMED = (
    "execs",
    "launches",
    "exec_seconds",
    "known",
    "worker_restarts",
    "unconfirmed_hangs",
    "skipped_outside_domain",
    "skipped_known_crashers",
)


@dataclass
class ActorSlot:
    """The driver's side of one actor."""

    info: ActorInfo
    handle: Any
    incarnation: int = 0
    pending: Any = None  # the ObjectRef of the call in progress
    pending_kind: str = ""  # "start" or "poll"
    instance: str = ""  # the actor's life that started its campaign
    last_poll: float = 0.0
    known_sent: int = 0  # entries of the driver's known ids this incarnation has been sent
    base: dict[str, Any] = field(default_factory=dict)  # counters of its earlier incarnations
    current: dict[str, Any] = field(default_factory=dict)  # its latest counters
    in_flight: list[int] = field(default_factory=list)
    in_flight_at: float = 0.0
    limits: dict[str, int] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    fuzzing_since: float | None = None
    first_case_at: float | None = None
    fuzzing_until: float | None = None


def start_spec(
    config: CampaignConfig, slot: ActorSlot, device: str, remaining_s: float, known: list[str]
) -> dict[str, Any]:
    """What :meth:`~moefuzz.cluster.actor.FuzzActor.start` takes: the campaign ``slot``'s actor
    runs for ``remaining_s`` seconds (at least 0) on its own seed (``slot.info.seed``), counting
    the finding ids in ``known`` as known, with this process's values of the forwarded variables."""
    return {
        "target": config.target,
        "kernel": config.kernel,
        "duration_s": max(0.0, remaining_s),
        "seed": slot.info.seed,
        "device": device,
        "case_timeout_s": config.case_timeout_s,
        "shrink_budget_s": config.shrink_budget_s or min(600.0, max(60.0, config.duration_s / 4)),
        "limits": None if config.limits is None else dict(config.limits.__dict__),
        "perturb_runs": config.perturb_runs,
        "caching_allocator": config.caching_allocator,
        "engine": config.engine,
        "workers": config.workers,
        "max_findings": None,
        "generators": config.generators,
        "known": list(known),
        "env": {name: os.environ.get(name) for name in FORWARDED_ENV},
    }


def add_coverage(total: dict[str, Any] | None, part: dict[str, Any] | None) -> dict[str, Any] | None:
    """The domain coverage of ``total``'s cases and ``part``'s together, as data
    (``{"cases": N, "hits": {point name: count}}``, an actor's ``coverage`` counter): cases and
    each point's hits added, points in the order first met; ``None`` when both are. Neither
    argument is changed."""
    if part is None:
        return total
    if total is None:
        return {"cases": int(part["cases"]), "hits": dict(part["hits"])}
    hits = dict(total["hits"])
    for name, count in part["hits"].items():
        hits[name] = hits.get(name, 0) + count
    return {"cases": int(total["cases"]) + int(part["cases"]), "hits": hits}


def fold_counters(slot: ActorSlot) -> None:
    """``slot``'s actor died: add its latest counters (the :data:`SUMMED` ones, the ``matched``
    counts per finding id and the domain ``coverage``) to those of its earlier incarnations, and
    clear them."""
    for name, value in slot.current.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name in SUMMED:
            slot.base[name] = slot.base.get(name, 0) + value
        elif name == "matched":
            merged = slot.base.setdefault("matched", {})
            for key, count in value.items():
                merged[key] = merged.get(key, 0) + count
        elif name == "coverage":
            slot.base["coverage"] = add_coverage(slot.base.get("coverage"), value)
    slot.current = {}


def blamed_findings(slot: ActorSlot, target: Target, kernel: KernelSpec, reason: str) -> list[Finding]:
    """The cases ``slot``'s workers were running at its actor's last report, drawn again from
    its stream (``slot.info.seed``, the indices in ``slot.in_flight``), as ``crash:actor-died``
    findings; none when the actor never reported its limits or ran nothing."""
    if not slot.in_flight or not slot.limits:
        return []
    source = CaseSource(target.strategy(Limits(**slot.limits)), 0, domain=kernel.domain)  # as the workers drew
    age = time.monotonic() - slot.in_flight_at
    findings = []
    for index in slot.in_flight:
        buffer = next(itertools.islice(byte_stream(slot.info.seed), index, None))
        case = source.from_bytes(buffer)
        if case is None:
            continue
        findings.append(
            Finding(
                target=target.name,
                kernel=kernel.name,
                kind="crash",
                detail="actor-died",
                message=(
                    f"Ray actor {slot.info.slot} died ({reason}) with this case running in one of its workers "
                    f"at its last report, {age:.1f} s before"
                ),
                case=case,
                original_case=case,
                environment=slot.environment,
                found={
                    "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "seed": slot.info.seed,
                    "stream_index": index,
                    "plan_seed": slot.info.seed * 1_000_003 + index,
                    "runs": 1,
                    "failures": 1,
                    "actor": slot.info.slot,
                    "node": slot.info.node,
                },
                shrink={"original_size": list(target.size(case))},
            )
        )
    return findings
