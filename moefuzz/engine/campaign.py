"""A time-budgeted fuzzing campaign of one target and kernel: :func:`run_campaign`.

The parts live in modules of their own: what a campaign is given and reports
(:mod:`moefuzz.engine.config`), how many processes it starts (:mod:`moefuzz.engine.sizing`), the
campaign loop and its scheduling policy (:mod:`moefuzz.engine.scheduler`), where each next case
comes from (:mod:`moefuzz.engine.feed`), and what becomes of a failure
(:mod:`moefuzz.engine.triage`). Their public names are importable from here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from moefuzz.engine.atheris import run_atheris_campaign
from moefuzz.engine.config import ENGINE_ALIASES, ENGINES, CampaignConfig, CampaignStatus, engine_name
from moefuzz.engine.feed import MAX_DRAWN_AHEAD, Feed, Waiter
from moefuzz.engine.scheduler import PIPELINE_DEPTH, PIPELINE_DEPTH_DRAWN, Campaign
from moefuzz.engine.sizing import (
    CORES_FOR_TWO_WORKERS,
    MAX_AUTO_GENERATORS,
    MAX_AUTO_WORKERS,
    WORKERS_PER_GPU,
    auto_generators,
    auto_workers,
    likely_device,
)
from moefuzz.engine.triage import HANG_CONFIRM_FACTOR
from moefuzz.errors import UsageError
from moefuzz.runtime import stopping
from moefuzz.runtime.stopping import Interrupted

__all__ = [
    "CORES_FOR_TWO_WORKERS",
    "ENGINES",
    "ENGINE_ALIASES",
    "HANG_CONFIRM_FACTOR",
    "MAX_AUTO_GENERATORS",
    "MAX_AUTO_WORKERS",
    "MAX_DRAWN_AHEAD",
    "PIPELINE_DEPTH",
    "PIPELINE_DEPTH_DRAWN",
    "WORKERS_PER_GPU",
    "Campaign",
    "CampaignConfig",
    "CampaignStatus",
    "Feed",
    "Waiter",
    "auto_generators",
    "auto_workers",
    "engine_name",
    "likely_device",
    "run_campaign",
]


def run_campaign(config: CampaignConfig, on_status: Callable[[CampaignStatus], None] | None = None) -> CampaignStatus:
    """Fuzz ``config.target`` for ``config.duration_s`` seconds with ``config.engine``; return
    the final status.

    The ``random`` engine (``hypothesis`` is its former name, still accepted) draws cases from
    the target's strategy with seeded random bytes, here; ``atheris`` (see
    :mod:`moefuzz.engine.atheris`) lets libFuzzer choose the bytes, in a process of its own.

    Raises:
        UsageError: an unknown engine, or ``atheris`` without the atheris package.
        UnknownTargetError: unknown target or kernel.
        WorkerError: no worker could start.
        HarnessError: the target's own code raised, or its strategy produced a case the
            contract rejects (a target bug).
        Interrupted: a signal before fuzzing began, or a second one (its ``status`` is the
            campaign's). The first SIGINT or SIGTERM while fuzzing ends the campaign early
            instead, and one while its workers close is only recorded: the status returned
            says so in ``interrupted``.
    """
    engine = engine_name(config.engine)
    if engine not in ENGINES:
        raise UsageError(f"unknown engine={config.engine!r} (known: {', '.join(ENGINES)})")
    if engine != config.engine:
        config = dataclasses.replace(config, engine=engine)
    if engine == "atheris":
        return run_atheris_campaign(config, on_status)
    campaign = Campaign(config, on_status)
    try:
        campaign.start()
        campaign.fuzz()
    except Interrupted as exc:  # a second signal, or one before fuzzing began: the status goes with it
        exc.status = campaign.status
        campaign.status.interrupted = exc.args[0] if exc.args else "interrupted"
        raise
    finally:
        stopping.finish()  # a signal from here on is recorded: closing and the reports go on
        campaign.close()
    campaign.status.interrupted = campaign.status.interrupted or stopping.stopped_by()  # one while closing
    return campaign.status
