"""What a shrink pass is.

A pass is a small function with a verb for a name (``drop_tokens``, ``remove_duplicates``) that
looks at ``shrinker.current`` and proposes smaller cases through ``shrinker.consider(case)``,
which runs the candidate (in a worker) and returns True if it was accepted: it is valid for the
target, strictly smaller in the target's ``size`` order, and still fails with the same
signature. Rules for writing a pass:

- Propose the biggest steps first (half of the tokens before one token).
- Re-read ``shrinker.current`` after every accepted candidate: it has changed.
- Never assume a candidate is valid or failing; ``consider`` decides, and a candidate that
  crashes the worker costs a worker, not the campaign.
- Stop when ``shrinker.exhausted`` says the budget is spent.
- Lower a number with :func:`~moefuzz.shrinking.search.lower` and delete items with
  :func:`~moefuzz.shrinking.search.delete_runs` rather than a loop of your own.

A pass is registered as ``ShrinkPass(function)``, named by the function's ``__name__`` (a
lambda or a partial needs its ``name``). This module gathers what a pass needs; the driver
(:mod:`.shrinker`) and the searches (:mod:`.search`) do not import it.
"""

from __future__ import annotations

from moefuzz.shrinking.search import delete_runs, find_least, lower, smaller_sizes
from moefuzz.shrinking.shrinker import Shrinker, ShrinkPass

__all__ = ["ShrinkPass", "Shrinker", "delete_runs", "find_least", "lower", "smaller_sizes"]
