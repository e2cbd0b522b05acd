"""What the benchmarks know of each ``bug-*`` model: where its bug lives and when it fires.

Magma's levels (``reached``, ``triggered``, detected) and the hand-made ``minimum_case`` are
defined once, in :mod:`moefuzz_targets.shared.ground_truth`. Each model lives in its target's
folder (``moefuzz_targets/<target>/bug_models.py``, a
:class:`~moefuzz_targets.shared.ground_truth.BugModel` each); :mod:`benchmarks.bug_models.routing`
and :mod:`benchmarks.bug_models.paging` collect them. The engine never imports them: they are the
benchmarks' ground truth.
"""

from __future__ import annotations

from moefuzz_targets.shared.ground_truth import BugModel

__all__ = ["BugModel", "all_bug_models", "bug_model"]


def all_bug_models() -> dict[str, BugModel]:
    """Every bug model the benchmarks know, by ``"target:kernel"``."""
    from benchmarks.bug_models import paging, routing

    models = [*routing.BUG_MODELS, *paging.BUG_MODELS]
    return {model.key: model for model in models}


def bug_model(target: str, kernel: str) -> BugModel:
    """The bug model ``kernel`` of ``target``.

    Raises:
        KeyError: no such bug model is known to the benchmarks.
    """
    return all_bug_models()[f"{target}:{kernel}"]
