"""What a ``bug-*`` kernel's ground truth is: where its bug lives and when it fires.

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

Each target folder's ``bug_models.py`` defines ``BUG_MODELS``, a tuple of :class:`BugModel`. The
engine never imports them: they are the benchmarks' ground truth, kept beside the kernels they
describe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from moefuzz.model.case import Case


@dataclass(frozen=True)
class BugModel:
    """Ground truth of one bug model.

    Attributes:
        target, kernel: the target's name and the bug model's kernel name (``bug-...``).
        reached: ``reached(case)``: the case takes the path the bug lives on.
        triggered: ``triggered(case)``: the case meets the bug's condition.
        minimum_case: the smallest case that fails on the bug model (and passes on the correct
            kernel), by hand from the condition; for a race, on a GPU under perturbation.
        race: a GPU schedule bug: ``triggered`` says the case can expose it, not that it will;
            on the CPU the bug model passes every case.
        perturb: launches per case a campaign needs to find it (``--perturb``), 1 for none.
    """

    target: str
    kernel: str
    reached: Callable[[Case], bool]
    triggered: Callable[[Case], bool]
    minimum_case: Case
    race: bool = False
    perturb: int = 1

    @property
    def key(self) -> str:
        return f"{self.target}:{self.kernel}"
