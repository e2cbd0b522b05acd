"""Schedule perturbation: run one case several ways, and how often it fails.

A race shows only under some schedules, and a stale read only when the stale memory holds
something the check can see. So a case can run under several :class:`Perturbation` values:
launch knobs a target's kernels honour (``num_warps``, ``num_stages``, block sizes: the target's
``launch_knobs``) and the pattern its output and scratch buffers are filled with before the
launch (:data:`POISONS`). The first perturbation of a plan is always the plain launch.

The result is a :class:`Rate`: of ``runs`` launches, ``failures`` failed with the finding's
signature. A finding that fails in k of N runs is kept with that rate; the shrinker keeps a
candidate only while its rate stays above a floor (:func:`rate_floor`), and a replay of a flaky
reproducer runs it :func:`runs_for_confidence` times before it calls the bug fixed.

Pure functions of numbers: nothing here imports torch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Fill patterns of output and scratch buffers: ``default`` is moefuzz's poison (a large int,
#: NaN for floats); ``max`` the dtype's largest value (0x7FFFFFFF for int32: the value the
#: LightLLM report read back); ``minus_one`` -1; ``nan`` NaN for floats (ints keep the default);
#: ``random`` random bits from the perturbation's seed.
POISONS = ("default", "max", "minus_one", "nan", "random")

#: Probability that a replay calls a flaky bug fixed while it still fails at its recorded rate.
MISS_PROBABILITY = 1e-3
#: Most runs a confident replay spends on one reproducer.
MAX_CONFIDENT_RUNS = 2000


@dataclass(frozen=True)
class Perturbation:
    """One way to launch a case.

    Attributes:
        config: launch knobs, e.g. ``{"num_warps": 8}`` (empty: the kernel's defaults).
        poison: one of :data:`POISONS`.
        seed: seeds the ``random`` poison.
        stress: run memory-bound work on a side stream during the launch (GPU only), so the
            kernel's warps share the SMs and the memory system with other blocks and drift apart.
    """

    config: Mapping[str, int] = field(default_factory=dict)
    poison: str = "default"
    seed: int = 0
    stress: bool = False

    def __post_init__(self) -> None:
        if self.poison not in POISONS:
            raise ValueError(f"poison={self.poison!r} is not one of {POISONS}")

    def to_json(self) -> dict[str, Any]:
        return {"config": dict(self.config), "poison": self.poison, "seed": self.seed, "stress": self.stress}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Perturbation:
        return cls(
            {str(k): int(v) for k, v in dict(data.get("config", {})).items()}, str(data["poison"]), int(data["seed"])
        )

    def label(self) -> str:
        """``num_warps=8 poison=nan``: for reports."""
        knobs = " ".join(f"{k}={v}" for k, v in sorted(self.config.items()))
        return f"{knobs} poison={self.poison}{' stress' if self.stress else ''}".strip()


PLAIN = Perturbation()


def plan_perturbations(knobs: Mapping[str, Sequence[int]], runs: int, seed: int) -> list[Perturbation]:
    """``runs`` perturbations: the plain launch first, then knob values drawn from ``seed``,
    poisons in turn, and side-stream stress on every other launch (deterministic: the same seed
    gives the same plan).

    Args:
        knobs: a target's ``launch_knobs``: each knob's legal values.
        runs: how many launches (>= 1).
        seed: seeds the draw.

    Raises:
        ValueError: ``runs`` < 1.
    """
    if runs < 1:
        raise ValueError(f"runs={runs!r} must be at least 1")
    rng = random.Random(seed)
    plan = [PLAIN]
    for index in range(1, runs):
        config = {name: rng.choice(list(values)) for name, values in sorted(knobs.items()) if values}
        plan.append(Perturbation(config, POISONS[index % len(POISONS)], rng.randrange(2**31), index % 2 == 1))
    return plan


@dataclass(frozen=True)
class Rate:
    """How often a case failed with a signature: ``failures`` of ``runs``."""

    failures: int
    runs: int

    @property
    def value(self) -> float:
        return self.failures / self.runs if self.runs else 0.0

    @property
    def flaky(self) -> bool:
        """Failed in some runs but not all."""
        return 0 < self.failures < self.runs

    def __str__(self) -> str:
        return f"{self.failures}/{self.runs}"


def rate_floor(rate: Rate) -> float:
    """The least rate a shrink candidate of a finding failing at ``rate`` must keep: half the
    finding's rate, so that shrinking does not trade the bug for a rarer version of it (a rate
    of 1 keeps a floor of 0.5: a candidate that fails in only some runs is still the bug)."""
    return rate.value / 2


def runs_for_confidence(rate: float, miss_probability: float = MISS_PROBABILITY) -> int:
    """Runs after which a bug failing at ``rate`` per run would have failed at least once with
    probability 1 - ``miss_probability``: ceil(ln(miss) / ln(1 - rate)), at least 1, at most
    :data:`MAX_CONFIDENT_RUNS`. A rate of 1 needs one run; 0.2 needs 31; 0.01 needs 688."""
    if rate >= 1.0:
        return 1
    if rate <= 0.0:
        return MAX_CONFIDENT_RUNS
    return max(1, min(MAX_CONFIDENT_RUNS, math.ceil(math.log(miss_probability) / math.log1p(-rate))))


def recorded_plan(
    found: Mapping[str, Any], knobs: Mapping[str, Sequence[int]], runs: int | None = None
) -> list[Perturbation] | None:
    """The perturbation plan a finding was found under (its ``found`` facts ``runs`` and
    ``plan_seed``), extended or cut to ``runs`` launches; None for a finding found by a single
    plain launch (and ``runs`` not asking for more)."""
    recorded = int(found.get("runs", 1))
    wanted = runs if runs is not None else recorded
    if wanted <= 1 and recorded <= 1:
        return None
    return plan_perturbations(knobs, wanted, int(found.get("plan_seed", 0)))
