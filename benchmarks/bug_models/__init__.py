"""What the benchmarks know of each ``bug-*`` model: where its bug lives and when it fires.

Magma's three levels, as predicates on a case (numpy only, no kernel run):

- ``reached``: the case takes the code path the bug lives on (three_step_sort's bug lives on the
  three-step path, taken for T > 256);
- ``triggered``: the case meets the bug's condition, so the buggy kernel's answer differs from
  the contract's (for a race: the case could expose it; whether it does depends on the schedule);
- detected: a fuzzer or a test reported a failure (measured, not predicted).

``triggered`` implies ``reached``. For a deterministic bug model, ``triggered`` is exact: the
bug model fails a case if and only if the case triggers it, except where a coincidence in the
data can mask it, which the predicate's docstring names (``tests/test_bug_models_routing.py`` and
``tests/test_bug_models_paging.py`` check both ways on drawn cases in the interpreter).
``minimum_case`` is the smallest failing case known (for a race: on a GPU, under perturbation),
worked out by hand from the bug's condition; a shrunk reproducer is compared with its
``target.size``.

Each model lives in its target's folder (``moefuzz_targets/<target>/bug_models.py``, a
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
