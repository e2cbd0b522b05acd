"""stream_overlap's two benchmark baselines: a plain ``@given`` strategy and an engines-style grid.

What a property test written without moefuzz would draw (see
:class:`~moefuzz_targets.shared.baselines.Baselines`); ``benchmarks.baselines`` runs them. Uses
nothing from :mod:`moefuzz.strategies`, the thing compared against.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from moefuzz.model.case import Case
from moefuzz_targets.shared.baselines import (
    Baselines,
)
from moefuzz_targets.stream_overlap.layout import COPY_METHODS


def _schedule_case(
    rows: list[np.ndarray], fills: list[np.ndarray], kernel_lengths: np.ndarray, per_batch: int, **params: int | str
) -> Case:
    """A stream_overlap case: row b's pages then -1 padding to ``per_batch`` columns
    (``batch_pages`` [B, P] int32), their fills (0 on padding), ``kernel_lengths`` [B] int32."""
    pages = np.full((len(rows), per_batch), -1, dtype=np.int32)
    page_fills = np.zeros((len(rows), per_batch), dtype=np.int32)
    for b, (row, fill) in enumerate(zip(rows, fills, strict=True)):
        pages[b, : len(row)] = row
        page_fills[b, : len(row)] = fill
    return Case(
        {"batch_pages": pages, "page_fills": page_fills, "kernel_lengths": np.asarray(kernel_lengths, dtype=np.int32)},
        dict(params),
    )


@st.composite
def stream_overlap_given(
    draw: st.DrawFn,
    *,
    max_batches: int = 16,
    max_pages_per_batch: int = 64,
    page_sizes: tuple[int, ...] = (1, 16, 64),
    slot_sizes: tuple[int, ...] = (1, 64, 128, 576),
    max_kernel_length: int = 4096,
) -> Case:
    """stream_overlap schedules as a plain ``@given`` test writes them: B, P, page_size,
    slot_size and a pool of P..B * P pages drawn; each batch a list of 1..P distinct pages of the
    pool, their fills element by element (1..page_size), each forward's spin rounds element by
    element (0..max_kernel_length), and the copy method."""
    num_batches = draw(st.integers(1, max_batches))
    per_batch = draw(st.integers(1, max_pages_per_batch))
    page_size = draw(st.sampled_from(page_sizes))
    slot_size = draw(st.sampled_from(slot_sizes))
    num_pages = draw(st.integers(per_batch, per_batch * num_batches))
    page_ids = st.integers(0, num_pages - 1)
    rows = [
        np.asarray(draw(st.lists(page_ids, min_size=1, max_size=per_batch, unique=True))) for _ in range(num_batches)
    ]
    fills = [draw(arrays(np.int32, len(row), elements=st.integers(1, page_size))) for row in rows]
    return _schedule_case(
        rows,
        fills,
        draw(arrays(np.int32, num_batches, elements=st.integers(0, max_kernel_length))),
        per_batch,
        num_pages=num_pages,
        page_size=page_size,
        slot_size=slot_size,
        copy_method=draw(st.sampled_from(COPY_METHODS)),
    )


#: stream_overlap grid, shaped like HiCache write-through batches: 1..8 batches in flight, one
#: page, a few, or a chunked prefill's 64 pages a batch; pages of 16 and 64 slots (FA3, trtllm);
#: a slot of one head's K (128 int32) or MLA's 576; forwards of no spin or 1024 rounds (~0.2 ms);
#: pools of fresh pages for each batch (an allocator with room) or the same pages every batch
#: (evicted and handed out again, as tests/targets/stream_overlap/test_stream_overlap_gpu.py schedules them).
STREAM_BATCHES = (1, 2, 4, 8)
STREAM_PAGES_PER_BATCH = (1, 4, 64)
STREAM_PAGE_SIZES = (16, 64)
STREAM_SLOT_SIZES = (128, 576)
STREAM_KERNEL_LENGTHS = (0, 1024)
STREAM_POOLS = ("fresh", "same")


def stream_overlap_grid(
    seed: int,
    *,
    batches: tuple[int, ...] = STREAM_BATCHES,
    pages_per_batch: tuple[int, ...] = STREAM_PAGES_PER_BATCH,
    page_sizes: tuple[int, ...] = STREAM_PAGE_SIZES,
    slot_sizes: tuple[int, ...] = STREAM_SLOT_SIZES,
    kernel_lengths: tuple[int, ...] = STREAM_KERNEL_LENGTHS,
) -> Iterator[Case]:
    """B x P x page_size x slot_size x spin x pool x copy_method, each once. From
    ``default_rng(seed)``: the order of each batch's pages and how full its last page is."""
    rng = np.random.default_rng(seed)
    axes = (batches, pages_per_batch, page_sizes, slot_sizes, kernel_lengths, STREAM_POOLS, COPY_METHODS)
    for num_batches, per_batch, page_size, slot_size, length, pool, method in itertools.product(*axes):
        if pool == "fresh":
            rows = [rng.permutation(np.arange(b * per_batch, (b + 1) * per_batch)) for b in range(num_batches)]
        else:
            rows = [rng.permutation(per_batch) for _ in range(num_batches)]
        fills = []
        for row in rows:
            fill = np.full(row.size, page_size, dtype=np.int32)
            fill[-1] = rng.integers(1, page_size + 1)
            fills.append(fill)
        yield _schedule_case(
            rows,
            fills,
            np.full(num_batches, length, dtype=np.int32),
            per_batch,
            num_pages=num_batches * per_batch if pool == "fresh" else per_batch,
            page_size=page_size,
            slot_size=slot_size,
            copy_method=method,
        )


BASELINES = Baselines("stream_overlap", stream_overlap_given, stream_overlap_grid)
