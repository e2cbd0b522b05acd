"""Input domain of stream_overlap (see :mod:`moefuzz.model.domain`): batches, pages per batch,
page and slot sizes within the schedule budget of the device, and the copy method."""

from __future__ import annotations

from moefuzz.model.domain import Dimension, Domain
from moefuzz.strategies.domains import columns, param, param_is, rows
from moefuzz_targets.stream_overlap.contract import (
    COPY_METHODS,
    MAX_BATCHES,
    MAX_PAGE_SIZE,
    MAX_PAGES_PER_BATCH,
    MAX_SLOT_SIZE,
)
from moefuzz_targets.stream_overlap.strategy import schedule_bounds

DOMAIN = Domain(
    dimensions=(
        Dimension("B", rows("batch_pages"), 1, MAX_BATCHES, cap=lambda lim: schedule_bounds(lim).max_batches),
        Dimension(
            "P",
            columns("batch_pages"),
            1,
            MAX_PAGES_PER_BATCH,
            cap=lambda lim: schedule_bounds(lim).max_pages_per_batch,
        ),
        Dimension(
            "page_size", param("page_size"), 1, MAX_PAGE_SIZE, cap=lambda lim: schedule_bounds(lim).max_page_size
        ),
        Dimension(
            "slot_size", param("slot_size"), 1, MAX_SLOT_SIZE, cap=lambda lim: schedule_bounds(lim).max_slot_size
        ),
    ),
    edges=tuple(param_is("copy_method", method) for method in COPY_METHODS),
)
