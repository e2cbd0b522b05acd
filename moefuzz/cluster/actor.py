"""What runs in one actor of a Ray campaign: a :class:`~moefuzz.engine.campaign.Campaign` of its
own, with its workers, generators and isolation unchanged (a crashing kernel kills a worker process
of the actor, never the actor).

The campaign runs in a thread of the actor; the driver calls :meth:`FuzzActor.poll` a few times a
second, which hands it the findings met since (as data, :mod:`moefuzz.cluster.data`), the
actor's counters, and the stream indices of the cases in flight (what the driver blames if the
actor dies), and takes the finding ids the driver knows (so the actor counts those as known and
neither reports nor shrinks them again).

The actor's campaign saves its findings to a scratch corpus of its own, as any campaign does;
the driver's corpus is the one that counts. A new finding is reported at once, before it is
shrunk (so an actor lost mid-shrink loses nothing), then again while it shrinks (at most every
:data:`~moefuzz.shrinking.finding.SAVE_INTERVAL_S` seconds) and once shrunk: the shrink runs on
the actor that found the failure, on its GPU.

This module does not import Ray: the driver makes the class an actor
(``ray.remote(...)(FuzzActor)``); it runs as a plain object too.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from moefuzz.cluster.data import finding_to_data
from moefuzz.engine.campaign import Campaign, CampaignConfig, CampaignStatus
from moefuzz.errors import MoefuzzError
from moefuzz.model.target import Limits
from moefuzz.shrinking.finding import SAVE_INTERVAL_S
from moefuzz.store.corpus import Finding

#: Environment variables the driver hands its actors as it has them (set or unset): the plugins
#: to load, and the thread count Ray would otherwise set to 1 in every actor (and so in the
#: workers and generators it starts) where the driver's user left it unset.
FORWARDED_ENV = ("MOEFUZZ_TARGETS", "OMP_NUM_THREADS")


class FuzzActor:
    """One actor's campaign. Call :meth:`start`, then :meth:`poll` until it says ``done``.

    The methods are called one at a time (a Ray actor's default); the campaign's own thread
    shares only the outbox, the known ids and the status with them.
    """

    def __init__(self) -> None:
        self._campaign: Campaign | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._outbox: list[dict[str, Any]] = []
        self._known: set[str] = set()
        self._error: tuple[str, str] | None = None
        self._scratch: Path | None = None
        self._reported = 0  # findings of the campaign's status reported so far
        self._open: Finding | None = None  # the finding being shrunk
        self._open_digest = ""
        self._open_sent = 0.0
        self._done = False
        self.instance = uuid.uuid4().hex  # a restarted actor is a new instance: the driver tells them apart

    def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Start the campaign ``spec`` describes and return once its first worker is ready.

        ``spec``: the :class:`~moefuzz.engine.campaign.CampaignConfig` fields as plain data
        (``limits`` a dict or ``None``; no ``corpus``), plus ``known`` (finding ids the driver's
        corpus holds) and ``env`` (:data:`FORWARDED_ENV` as the driver has them, ``None`` for
        unset).

        Returns ``{"instance", "pid", "node", "gpus", "device", "device_kind", "environment",
        "limits", "error"}``; ``instance`` names this actor's life (Ray starts a dead actor again
        as a new instance, which :meth:`poll` names too); ``error`` is ``(class name, message)``
        of a :class:`MoefuzzError` that stopped the start (no worker could start), else ``None``.
        """
        for name, value in dict(spec.get("env", {})).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._known.update(spec.get("known", ()))
        self._scratch = Path(tempfile.mkdtemp(prefix="moefuzz-actor-corpus-"))
        fields = {f.name for f in dataclasses.fields(CampaignConfig)} - {"corpus", "limits"}
        limits = Limits(**spec["limits"]) if spec.get("limits") else None
        config = CampaignConfig(
            **{name: value for name, value in spec.items() if name in fields}, corpus=self._scratch, limits=limits
        )
        reply: dict[str, Any] = {
            "instance": self.instance,
            "pid": os.getpid(),
            "node": _node_id(),
            "gpus": _gpu_ids(),
            "error": None,
        }
        try:
            campaign = Campaign(config, self._on_status)
            self._campaign = campaign
            campaign.start()
        except MoefuzzError as exc:
            if self._campaign is not None:
                self._campaign.close()
            self._done = True
            return {**reply, "error": (type(exc).__name__, str(exc))}
        with self._lock:
            campaign.triage.known_ids.update(self._known)
            campaign.status.corpus_size = len(campaign.triage.known_ids)
        self._thread = threading.Thread(target=self._fuzz, name="moefuzz-actor-campaign", daemon=True)
        self._thread.start()
        status = campaign.status
        return {
            **reply,
            "device": status.device,
            "device_kind": status.device_kind,
            "environment": dict(status.environment),
            "limits": dataclasses.asdict(campaign.limits) if campaign.limits is not None else None,
        }

    def poll(self, known: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """Learn the finding ids in ``known``; return what happened since the last poll.

        Returns ``{"instance", "findings", "counters", "in_flight", "done", "error"}``:
        ``instance`` as :meth:`start` said (another one: the actor died and Ray started it again,
        with no campaign); ``findings`` a list
        of ``{"phase": "found" | "shrinking" | "shrunk", "finding": data}``, oldest first;
        ``counters`` the campaign's status figures (:func:`counters`); ``in_flight`` the stream
        indices of the cases at the head of the workers' queues (running now); ``done`` once the
        campaign ended (its last findings are in this reply); ``error`` ``(class name,
        message)`` of what ended it early, else ``None``.
        """
        campaign = self._campaign
        with self._lock:
            self._known.update(known)
            if campaign is not None:
                campaign.triage.known_ids.update(known)
            findings, self._outbox = self._outbox, []
            done = self._done
        if campaign is None:
            return {
                "instance": self.instance,
                "findings": findings,
                "counters": {},
                "in_flight": [],
                "done": done,
                "error": self._error,
            }
        return {
            "instance": self.instance,
            "findings": findings,
            "counters": counters(campaign.status),
            "in_flight": [] if done else in_flight_indices(campaign),
            "done": done,
            "error": self._error,
        }

    def stop(self) -> None:
        """End the campaign now (the budget spent, or enough findings): the cases in flight come
        back and a shrink under way finishes, then :meth:`poll` says ``done``."""
        if self._campaign is not None:
            self._campaign.deadline = 0.0

    # -- the campaign's thread ----------------------------------------------------------------
    def _fuzz(self) -> None:
        campaign = self._campaign
        assert campaign is not None
        try:
            campaign.fuzz()
        except MoefuzzError as exc:
            self._error = (type(exc).__name__, str(exc))
        except Exception as exc:  # a bug of moefuzz: the driver shows it rather than a silent actor
            self._error = ("MoefuzzError", f"actor campaign failed: {traceback.format_exception_only(exc)[-1].strip()}")
        finally:
            campaign.close()
            with self._lock:
                self._report(campaign.status, final=True)
                self._done = True
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)

    def _on_status(self, status: CampaignStatus) -> None:
        """The campaign's status callback (after each case, and during a shrink): queue new
        findings and shrink progress for the driver. Returns at once when nothing changed."""
        if len(status.findings) == self._reported and self._open is None:
            return
        with self._lock:
            self._report(status, final=False)

    def _report(self, status: CampaignStatus, final: bool) -> None:
        open_ = self._open
        if open_ is not None and (final or status.shrinking != open_.finding_id):
            self._outbox.append({"phase": "shrunk", "finding": finding_to_data(open_)})
            self._open = None
        elif open_ is not None and time.monotonic() - self._open_sent >= SAVE_INTERVAL_S:
            digest = open_.case.digest()
            if digest != self._open_digest:
                self._outbox.append({"phase": "shrinking", "finding": finding_to_data(open_)})
                self._open_digest = digest
            self._open_sent = time.monotonic()
        for _, finding in status.findings[self._reported :]:
            self._outbox.append({"phase": "found", "finding": finding_to_data(finding)})
            self._reported += 1
            if not final and status.shrinking == finding.finding_id:
                self._open, self._open_digest, self._open_sent = finding, finding.case.digest(), time.monotonic()


def counters(status: CampaignStatus) -> dict[str, Any]:
    """The figures of ``status`` the driver sums over its actors, as plain data: times as ages
    in seconds (``None`` before they happened), since clocks differ between nodes; the domain
    ``coverage`` as ``{"cases": N, "hits": {point name: count}}`` (``None`` without one)."""
    now = time.monotonic()
    coverage = status.coverage
    return {
        "execs": status.execs,
        "launches": status.launches,
        "exec_seconds": status.exec_seconds,
        "known": status.known,
        "matched": dict(status.matched),
        "worker_restarts": status.worker_restarts,
        "recovery_seconds": list(status.recovery_seconds),
        "unconfirmed_hangs": status.unconfirmed_hangs,
        "skipped_outside_domain": status.skipped_outside_domain,
        "skipped_known_crashers": status.skipped_known_crashers,
        "coverage": None if coverage is None else {"cases": coverage.cases, "hits": coverage.hits},
        "workers": status.workers,
        "generators": status.generators,
        "shrinking": status.shrinking,
        "shrink_pass": status.shrink_pass,
        "shrink_candidates": status.shrink_candidates,
        "shrink_accepted": status.shrink_accepted,
        "fuzzing_age": None if status.fuzzing_since is None else now - status.fuzzing_since,
        "first_case_age": None if status.first_case_at is None else now - status.first_case_at,
        "fuzzing_until_age": None if status.fuzzing_until is None else now - status.fuzzing_until,
    }


def in_flight_indices(campaign: Campaign) -> list[int]:
    """Stream indices of the requests at the head of the campaign's workers' queues: the cases
    running now (shrink candidates, which come from no stream, left out)."""
    indices = []
    for executor in list(campaign.executors):
        try:
            head = executor._in_flight[0]  # the request its worker runs
        except IndexError:  # none in flight (or its reply came in meanwhile, on the campaign's thread)
            continue
        if head.index >= 0:
            indices.append(head.index)
    return indices


def _node_id() -> str:
    """The Ray node this actor runs on (``""`` outside Ray: this module never imports it)."""
    ray = sys.modules.get("ray")
    try:
        return str(ray.get_runtime_context().get_node_id()) if ray is not None else ""
    except Exception:  # not in a Ray worker
        return ""


def _gpu_ids() -> list[str]:
    """The GPUs Ray gave this actor (none outside Ray)."""
    ray = sys.modules.get("ray")
    try:
        return [str(gpu) for gpu in ray.get_gpu_ids()] if ray is not None else []
    except Exception:  # not in a Ray worker
        return []
