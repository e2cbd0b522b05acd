"""The messages on the pipes between the campaign's parent, its workers and its generators.

Each is a :class:`~typing.NamedTuple` (cheap to pickle, typed to read). ``None`` on a pipe asks
the child to end.

A child starting up answers :class:`Ready` or :class:`Failed`. A worker
(:func:`moefuzz.runtime.worker.worker_main`) takes :class:`RunCase`, :class:`RunPrepared` or
:class:`RunBytes` and answers each with one :class:`~moefuzz.model.outcome.Outcome`. A generator
(:func:`moefuzz.runtime.generators.generator_main`) started without limits takes one
:class:`SetLimits` first, then :class:`Draw` requests, each answered with a :class:`DrawReply`.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from moefuzz.execute.perturb import Perturbation
from moefuzz.model.case import Case

#: A plan of perturbations as it travels: :meth:`Perturbation.to_json` of each.
PlanJson = list[dict[str, Any]]


class Ready(NamedTuple):
    """A child is ready: a worker sends its environment (versions, device), a generator ``None``."""

    environment: dict[str, str] | None


class Failed(NamedTuple):
    """A child could not start, and why."""

    reason: str


class RunCase(NamedTuple):
    """Run this case (its arrays and params) under ``plan``."""

    arrays: dict[str, np.ndarray]
    params: dict[str, Any]
    plan: PlanJson


class RunPrepared(NamedTuple):
    """Run a generator's case with its oracle outputs (``payload``, see :func:`prepared_payload`)
    under ``plan``: only the kernel and the comparison are left."""

    payload: bytes
    plan: PlanJson


class RunBytes(NamedTuple):
    """Draw a case from ``buffer`` through the target's strategy and run it under ``plan``."""

    buffer: bytes
    plan: PlanJson


WorkerRequest = RunCase | RunPrepared | RunBytes


class Avoid(NamedTuple):
    """To a worker, no reply: from now on skip drawn cases in the regions of known crashers
    whose corners these are (answer ``avoided``; see :mod:`moefuzz.engine.storm`). Cases sent
    as arrays always run."""

    corners: frozenset[tuple[int, ...]]


class SetLimits(NamedTuple):
    """The campaign's size limits (a :class:`~moefuzz.model.target.Limits` as a dict), for a
    generator started before they were known."""

    limits: dict[str, int] | None


class Draw(NamedTuple):
    """Draw a case from the buffer at ``stream_index`` of the campaign's byte stream."""

    stream_index: int
    buffer: bytes


class DrawReply(NamedTuple):
    """A generator's answer to :class:`Draw`: ``payload`` (see :func:`prepared_payload`), or
    ``None`` when the strategy rejected the bytes (``error`` empty) or the drawn case broke the
    contract's preconditions (``error`` says how)."""

    stream_index: int
    error: str
    payload: bytes | None


def prepared_payload(case: Case, expected: Mapping[str, np.ndarray] | None, coverage: int = 0) -> bytes:
    """A generator's payload: ``case`` with the oracle's outputs on it (``None``: the oracle
    raised) and the points of the target's domain it hits (a bit mask the worker passes on in
    its outcome), pickled for the pipes between the campaign's own processes (never a corpus
    file)."""
    return pickle.dumps((dict(case.arrays), dict(case.params), expected, coverage), protocol=pickle.HIGHEST_PROTOCOL)


def prepared_parts(payload: bytes) -> tuple[Case, dict[str, np.ndarray] | None, int]:
    """The case, oracle outputs and domain coverage mask of a generator's payload."""
    arrays, params, expected, coverage = pickle.loads(payload)
    return Case(arrays, params), expected, int(coverage)


def prepared_case(payload: bytes) -> tuple[Case, dict[str, np.ndarray] | None]:
    """The case and oracle outputs of a generator's payload (what a worker runs)."""
    case, expected, _ = prepared_parts(payload)
    return case, expected


@dataclass
class Request:
    """One case for a worker, as the parent holds it: the case itself, or the bytes the worker
    draws it from.

    Attributes:
        plan: the perturbations to run it under (one plain launch by default).
        case: the case, for replays and shrink candidates.
        buffer: bytes the worker turns into a case through the target's strategy
            (:meth:`moefuzz.engine.generate.CaseSource.from_bytes`), for campaigns: drawing in the
            worker keeps the parent's share of a case to microseconds. The parent draws the same
            case from the same bytes whenever it needs it.
        index: the position of ``buffer`` in the campaign's byte stream.
        payload: a generator's pickle of the case drawn from ``buffer`` with its oracle outputs
            (:mod:`moefuzz.runtime.generators`): the worker runs only the kernel and the
            comparison. The parent forwards it as it came, never unpickling it.
    """

    plan: list[Perturbation] = field(default_factory=lambda: [Perturbation({})])
    case: Case | None = None
    buffer: bytes | None = None
    index: int = -1
    payload: bytes | None = None

    def message(self) -> WorkerRequest:
        """What travels over the pipe (:func:`moefuzz.runtime.worker.worker_main` reads it)."""
        plan = [p.to_json() for p in self.plan]
        if self.case is not None:
            return RunCase(dict(self.case.arrays), dict(self.case.params), plan)
        if self.payload is not None:
            return RunPrepared(self.payload, plan)
        return RunBytes(self.buffer or b"", plan)
