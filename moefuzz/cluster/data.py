"""What travels between a Ray campaign's driver and its actors, and the driver's status.

A finding travels as plain data: its JSON-able fields and its cases' arrays (numpy arrays,
which Ray's object store carries without copying them through pickle's code paths), never a
pickled :class:`~moefuzz.store.corpus.Finding`. The driver turns it back into a ``Finding`` and
saves it with the corpus code, as a campaign on one host does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moefuzz.engine.campaign import CampaignStatus
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch
from moefuzz.store.corpus import Finding


def case_to_data(case: Case) -> dict[str, Any]:
    """``{"arrays": {name: ndarray}, "params": {name: scalar}}``: a case as data."""
    return {"arrays": {name: np.asarray(array) for name, array in case.arrays.items()}, "params": dict(case.params)}


def case_from_data(data: dict[str, Any]) -> Case:
    """The case :func:`case_to_data` made.

    Raises:
        CaseError: arrays of a dtype a case may not hold.
    """
    return Case({name: np.asarray(array) for name, array in data["arrays"].items()}, dict(data["params"]))


def finding_to_data(finding: Finding) -> dict[str, Any]:
    """A finding as data: every field of :class:`~moefuzz.store.corpus.Finding`, the cases as
    :func:`case_to_data`, the mismatch as its JSON form."""
    return {
        "target": finding.target,
        "kernel": finding.kernel,
        "kind": finding.kind,
        "detail": finding.detail,
        "message": finding.message,
        "case": case_to_data(finding.case),
        "original_case": case_to_data(finding.original_case),
        "mismatch": finding.mismatch.to_json() if finding.mismatch is not None else None,
        "explanation": finding.explanation,
        "environment": dict(finding.environment),
        "found": dict(finding.found),
        "shrink": dict(finding.shrink),
        "sanitizer": [dict(entry) for entry in finding.sanitizer],
    }


def finding_from_data(data: dict[str, Any]) -> Finding:
    """The finding :func:`finding_to_data` made.

    Raises:
        CaseError: a case whose arrays a case may not hold.
        KeyError: a field missing.
    """
    mismatch = data.get("mismatch")
    return Finding(
        target=str(data["target"]),
        kernel=str(data["kernel"]),
        kind=str(data["kind"]),
        detail=str(data["detail"]),
        message=str(data["message"]),
        case=case_from_data(data["case"]),
        original_case=case_from_data(data["original_case"]),
        mismatch=Mismatch.from_json(mismatch) if mismatch else None,
        explanation=str(data.get("explanation", "")),
        environment=dict(data.get("environment", {})),
        found=dict(data.get("found", {})),
        shrink=dict(data.get("shrink", {})),
        sanitizer=[dict(entry) for entry in data.get("sanitizer", [])],
    )


def actor_seed(seed: int, slot: int, incarnation: int) -> int:
    """The seed of the case stream of actor ``slot`` in its ``incarnation``-th life (0 first,
    one more after each restart) in a campaign of ``seed``: a 63-bit hash of the three, so that
    no two actors, and no actor before and after a restart, draw the same stream. The finding
    records it as its ``seed``: ``moefuzz run --seed`` with it draws the same cases."""
    digest = hashlib.sha256(f"moefuzz-ray:{seed}:{slot}:{incarnation}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class ActorInfo:
    """One actor of a Ray campaign, as the driver last heard of it.

    Attributes:
        slot: the actor's number (0, 1, ...): its place in the campaign, kept across restarts.
        state: ``starting``, ``fuzzing``, ``done`` or ``dead`` (restarts exhausted).
        node: the Ray node id it runs on (``""`` until it started).
        gpus: the GPU ids Ray gave it (empty for a CPU actor).
        pid: its process id on its node.
        restarts: times it died and was started again.
        seed: the seed of its current case stream (:func:`actor_seed`).
        running: cases its workers were running at its last report (what its death blames).
    """

    slot: int
    state: str = "starting"
    node: str = ""
    gpus: list[str] = field(default_factory=list)
    pid: int = 0
    restarts: int = 0
    seed: int = 0
    running: int = 0


@dataclass
class ClusterStatus(CampaignStatus):
    """A :class:`~moefuzz.engine.campaign.CampaignStatus` of a campaign over a Ray cluster: the
    actors' counters summed (``workers`` and ``generators`` too), plus where it runs.

    Attributes:
        address: the cluster's address as given (``auto``, ``local``, ``ray://...``).
        nodes: nodes alive in the cluster.
        actors: one :class:`ActorInfo` per actor slot.
        actor_restarts: actors that died and were started again.
        blamed: cases in flight in an actor when it died, saved as ``crash:actor-died`` findings
            (or counted as known when the corpus held one already).
    """

    address: str = ""
    nodes: int = 0
    actors: list[ActorInfo] = field(default_factory=list)
    actor_restarts: int = 0
    blamed: int = 0

    @property
    def gpus(self) -> int:
        """GPUs of the actors not dead for good (a finished campaign still counts those it ran on)."""
        return sum(len(actor.gpus) for actor in self.actors if actor.state != "dead")

    @property
    def cluster_text(self) -> str:
        """``ray auto: 2 nodes, 4 actors (4 fuzzing), 4 GPUs, 1 actor restart``."""
        fuzzing = sum(actor.state == "fuzzing" for actor in self.actors)
        restarts = f", {self.actor_restarts} actor restarts" if self.actor_restarts else ""
        return (
            f"ray {self.address}: {self.nodes} nodes, {len(self.actors)} actors ({fuzzing} fuzzing), "
            f"{self.gpus} GPUs{restarts}"
        )
