"""Ground truth of the paging targets' bug models: where each bug lives and when it fires.

Seven models over four targets, each predicate derived from the line of the bug kernel that
differs from the correct one (``moefuzz_targets/<target>/kernels.py``)::

    alloc_extend    bug-page-past-capacity     decode kernel, _room_on_last_page(FULL_PAGE_BUG)
    page_table      bug-trailing-entries       _page_table_kernel, live = in_width & (page >= first)
                    bug-translate-page-ids     _page_table_kernel, mapping[slot // page_size]
    paged_decode    bug-window-off-by-one      window_start = L - W - 1
                    bug-trailing-pages         read = column < max_pages
    stream_overlap  bug-missing-wait-forward   no write.wait(forward_done(b))     (a GPU race)
                    bug-missing-wait-write     no forward.wait(copy_done(b - 1))  (a GPU race)

Predicates are numpy on ``case.arrays`` / ``case.params`` and assume a case that passes the
target's ``check``. Integer division in a Triton kernel truncates towards zero (C semantics, in
the interpreter too: ``create_idiv``); where a kernel divides a value that may be negative the
predicates do the same (:func:`_trunc_div`).

Where data can mask a bug (a read outside every buffer that lands inside another one, an extra
softmax key whose value changes ``o`` by less than the tolerance) the predicate's docstring says
so: ``triggered`` then errs on the side of True, and only "failed implies triggered" is exact.
Each ``minimum_case`` is the smallest failing case by the target's ``size`` among SGLang's
states: page 0 of its KV cache and of its SWA pool is reserved, never owned (alloc_extend's
``check`` enforces it; page_table's does not, but its strategy and shrink passes keep page 0
reserved, so a smaller case on page 0 is no reproducer the fuzzer could shrink to). paged_decode
follows FlashInfer's and FA3's page tables, where page 0 is a page like any other.
"""

from __future__ import annotations

from moefuzz_targets.alloc_extend import bug_models as _alloc_extend
from moefuzz_targets.alloc_extend.bug_models import (
    ALLOC_PAGE_PAST_CAPACITY,
    alloc_reached,
    alloc_triggered,
    decode_batch,
    full_page_requests,
)
from moefuzz_targets.page_table import bug_models as _page_table
from moefuzz_targets.page_table.bug_models import (
    PAGE_TABLE_TRAILING_ENTRIES,
    PAGE_TABLE_TRANSLATE_PAGE_IDS,
    trailing_entry_reads,
    trailing_reached,
    trailing_triggered,
    translate_live_pages,
    translate_reached,
    translate_triggered,
)
from moefuzz_targets.paged_decode import bug_models as _paged_decode
from moefuzz_targets.paged_decode.bug_models import (
    DECODE_BLOCK_N,
    PAGED_DECODE_TRAILING_PAGES,
    PAGED_DECODE_WINDOW_OFF_BY_ONE,
    trailing_page_reads,
    trailing_pages_reached,
    trailing_pages_triggered,
    trailing_pages_wild,
    window_reached,
    window_triggered,
)
from moefuzz_targets.shared.ground_truth import BugModel
from moefuzz_targets.stream_overlap import bug_models as _stream_overlap
from moefuzz_targets.stream_overlap.bug_models import (
    RACE_PERTURB,
    STREAM_MISSING_WAIT_FORWARD,
    STREAM_MISSING_WAIT_WRITE,
    copy_forward_reached,
    copy_forward_triggered,
    forward_copy_reached,
    forward_copy_triggered,
    one_slot_schedule,
)

BUG_MODELS: tuple[BugModel, ...] = (
    *_alloc_extend.BUG_MODELS,
    *_page_table.BUG_MODELS,
    *_paged_decode.BUG_MODELS,
    *_stream_overlap.BUG_MODELS,
)

__all__ = [
    "ALLOC_PAGE_PAST_CAPACITY",
    "BUG_MODELS",
    "DECODE_BLOCK_N",
    "PAGED_DECODE_TRAILING_PAGES",
    "PAGED_DECODE_WINDOW_OFF_BY_ONE",
    "PAGE_TABLE_TRAILING_ENTRIES",
    "PAGE_TABLE_TRANSLATE_PAGE_IDS",
    "RACE_PERTURB",
    "STREAM_MISSING_WAIT_FORWARD",
    "STREAM_MISSING_WAIT_WRITE",
    "BugModel",
    "alloc_reached",
    "alloc_triggered",
    "copy_forward_reached",
    "copy_forward_triggered",
    "decode_batch",
    "forward_copy_reached",
    "forward_copy_triggered",
    "full_page_requests",
    "one_slot_schedule",
    "trailing_entry_reads",
    "trailing_page_reads",
    "trailing_pages_reached",
    "trailing_pages_triggered",
    "trailing_pages_wild",
    "trailing_reached",
    "trailing_triggered",
    "translate_live_pages",
    "translate_reached",
    "translate_triggered",
    "window_reached",
    "window_triggered",
]
