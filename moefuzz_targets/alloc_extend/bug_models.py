"""Ground truth of alloc_extend's bug model for the benchmarks: where each bug lives and when it fires.

Magma's levels as numpy predicates on a case, no kernel run (see
:class:`~moefuzz_targets.shared.ground_truth.BugModel`): ``reached`` (the case takes the bug's
code path in ``kernels.py``), ``triggered`` (the case meets the bug's condition), and the smallest
failing case known, by hand. ``benchmarks.bug_models`` collects them; the engine never imports
this module.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz_targets.alloc_extend.strategy import allocation_case
from moefuzz_targets.shared.ground_truth import BugModel


def decode_batch(case: Case) -> bool:
    """The launcher takes the decode kernel: B >= 1 and ``seq_lens[i] - prefix_lens[i] == 1``
    for every request (``kernels._launch``: ``decode = ((seq_lens - prefix_lens) == 1).all()``,
    after the early return of an empty output)."""
    extend = case.arrays["seq_lens"] - case.arrays["prefix_lens"]
    return bool(extend.size) and bool((extend == 1).all())


def full_page_requests(case: Case) -> np.ndarray:
    """[B] bool: decode requests whose bug-model slot differs from the contract's.

    With ``prefix = prefix_lens``, ``Z = page_size``, ``k_i = #{j < i : prefix_j % Z == 0}`` (the
    decode kernel's ``index``: exclusive cumsum of ``takes_page``, which the bug leaves alone)::

        prefix_i > 0  and  prefix_i % Z == 0  and  free_pages[k_i] != last_loc_i // Z + 1

    ``_room_on_last_page(FULL_PAGE_BUG)`` gives ``Z - prefix % Z = Z`` instead of 0 for such a
    prefix, so ``continues`` holds and the slot is ``last_loc + 1 = (last_loc // Z + 1) * Z``
    (last_loc is the last slot of its page), where the contract gives ``free_pages[k_i] * Z``.
    The two agree exactly when the next free page is the page after the last prefix page.
    All False for a batch that is not a decode batch.
    """
    prefix = case.arrays["prefix_lens"]
    if not decode_batch(case):
        return np.zeros(prefix.shape, dtype=bool)
    page_size = int(case.params["page_size"])
    takes_page = prefix % page_size == 0
    index = np.cumsum(takes_page) - takes_page  # < num_free: check refuses a batch short of pages
    full = (prefix > 0) & takes_page
    taken = case.arrays["free_pages"][np.where(full, index, 0)]
    return full & (taken != case.arrays["last_loc"] // page_size + 1)


def alloc_reached(case: Case) -> bool:
    """A decode batch: the bug lives in ``_alloc_decode_kernel`` (:func:`decode_batch`)."""
    return decode_batch(case)


def alloc_triggered(case: Case) -> bool:
    """Some request of :func:`full_page_requests`: a decode request whose prefix ends on a page
    boundary and whose next free page is not the page after its last prefix page. Exact."""
    return bool(full_page_requests(case).any())


# Models the SGLang trtllm_mha page-table report (seed sglang-trtllm-mha-page-table-oob,
# pyc96/sglang#3): an allocator emits page index num_pages, one past the cache. The smallest
# case: one decode request whose 1-token prefix fills page 2, the final page of a 3-page cache
# (page 0 reserved), page_size 1, free list [1]; the bug gives slot 3 = page 3, past num_pages.
# Size (tokens, B, page_size, num_pages, num_free, descents) = (2, 1, 1, 3, 1, 0): two tokens
# (a prefix, so that it can end on a boundary), and a free page that is not page 2 + 1; the
# fuzzer shrank to the same case (docs/gpu-results.md).
ALLOC_PAGE_PAST_CAPACITY = BugModel(
    target="alloc_extend",
    kernel="bug-page-past-capacity",
    reached=alloc_reached,
    triggered=alloc_triggered,
    minimum_case=allocation_case(page_size=1, num_pages=3, prefix_lens=[1], seq_lens=[2], last_loc=[2], free_pages=[1]),
)


BUG_MODELS: tuple[BugModel, ...] = (ALLOC_PAGE_PAST_CAPACITY,)
