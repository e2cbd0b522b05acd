"""Ground truth of stream_overlap's bug models for the benchmarks: where each bug lives and when it fires.

Magma's levels as numpy predicates on a case, no kernel run (see
:class:`~moefuzz_targets.shared.ground_truth.BugModel`): ``reached`` (the case takes the bug's
code path in ``kernels.py``), ``triggered`` (the case meets the bug's condition), and the smallest
failing case known, by hand. ``benchmarks.bug_models`` collects them; the engine never imports
this module.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz_targets.shared.ground_truth import BugModel

#: Launches per case the stream races need (``--perturb 8``: docs/gpu-races.md found both models
#: with it, 10 of 10 and 9 of 10 seeds).
RACE_PERTURB = 8


def forward_copy_reached(case: Case) -> bool:
    """Every schedule (B >= 1): each batch's copy is enqueued on the write stream without
    ``write.wait(forward_done(b))``."""
    return case.arrays["batch_pages"].shape[0] >= 1


def forward_copy_triggered(case: Case) -> bool:
    """Some batch copies a real page (``batch_pages[b, j] >= 0``): its forward writes the first
    ``page_fills[b, j] >= 1`` slots of it, and a copy that runs first reads an older value, 0 or
    an in-progress marker (slot values are unique per batch). A race: it can show, not must."""
    return bool((case.arrays["batch_pages"] >= 0).any())


def copy_forward_reached(case: Case) -> bool:
    """B >= 2: from batch 1 on, a forward is enqueued without ``forward.wait(copy_done(b - 1))``."""
    return case.arrays["batch_pages"].shape[0] >= 2


def copy_forward_triggered(case: Case) -> bool:
    """A real page copied by two batches b < b': forward b' writes its first slots, which copy b
    reads (a copy moves the whole page). Without the fence the forward stream waits for no copy
    at all, so any later forward, not only b + 1, may run before copy b. A race: it can show,
    not must."""
    pages = case.arrays["batch_pages"]
    _, counts = np.unique(pages[pages >= 0], return_counts=True)  # a row lists a page once
    return bool((counts >= 2).any())


def one_slot_schedule(pages: list[list[int]], num_pages: int) -> Case:
    """A copy_engine schedule of pages of one slot of one element, every page filled, no spin."""
    batch_pages = np.asarray(pages, dtype=np.int32)
    return Case(
        {
            "batch_pages": batch_pages,
            "page_fills": (batch_pages >= 0).astype(np.int32),
            "kernel_lengths": np.zeros(batch_pages.shape[0], dtype=np.int32),
        },
        {"num_pages": num_pages, "page_size": 1, "slot_size": 1, "copy_method": "copy_engine"},
    )


# Models SGLang HiCache's write_stream without wait_stream(forward_stream) (sglang#20611, fix 1;
# seed sglang-hicache-stream-race). The smallest schedule: one batch, one page of one slot of
# one element, no spin. Size (B, P, pages copied, page_size, slots written, slot_size, spin
# rounds, pool pages) = (1, 1, 1, 1, 1, 1, 0, 1); the fuzzer (--perturb 8) shrank to the same
# with 11 spin rounds, which widen the window (docs/gpu-races.md).
STREAM_MISSING_WAIT_FORWARD = BugModel(
    target="stream_overlap",
    kernel="bug-missing-wait-forward",
    reached=forward_copy_reached,
    triggered=forward_copy_triggered,
    minimum_case=one_slot_schedule([[0]], num_pages=1),
    race=True,
    perturb=RACE_PERTURB,
)


# Models SGLang's forward_stream without wait_event(last_write_finish_event) (sglang#20611,
# fix 2). The smallest schedule: two batches copying the same page of one slot, no spin: size
# (2, 1, 2, 1, 2, 1, 0, 1); the fuzzer (--perturb 8) shrank to 3 or 4 batches of one page
# (docs/gpu-races.md).
STREAM_MISSING_WAIT_WRITE = BugModel(
    target="stream_overlap",
    kernel="bug-missing-wait-write",
    reached=copy_forward_reached,
    triggered=copy_forward_triggered,
    minimum_case=one_slot_schedule([[0], [0]], num_pages=1),
    race=True,
    perturb=RACE_PERTURB,
)


BUG_MODELS: tuple[BugModel, ...] = (
    STREAM_MISSING_WAIT_FORWARD,
    STREAM_MISSING_WAIT_WRITE,
)
