"""Schedules of stream_overlap, built from drawn structure.

Hypothesis draws the sizes (batches B, pages per batch P, page_size S, slot_size D, the longest
spin) and a handful of modes; :func:`build_schedule` then lays the pages out with numpy from a
drawn seed. Modes::

    reuse     fresh       no page is copied by two batches (only the copy-before-forward race
                          can show)
              previous    batch b+1 takes about half its pages from batch b's, the pattern of
                          pages evicted and handed out again (both races can show)
              small_pool  every batch picks its pages from a pool of P..2P pages
              same        every batch copies the same pages
    ragged    full        every batch copies P pages
              ragged      1..P pages per batch, -1 padding after them (one batch has P)
              empty_batch ragged, and one batch (of two or more) copies nothing
    fills     full, partial_last (the last page of a batch partly written), random, one_slot
    lengths   long (every forward spins max/2..max rounds), random (log-uniform, per batch),
              zero, one_long (one batch spins max rounds, the others none)

Sizes come from the engine's edge pools (``edge_sizes``, ``PAGE_SIZES``) within
:func:`schedule_bounds`. ``Limits`` has no bound on time, so the bounds key on its token budget:
the interpreter's limits (``max_tokens <= 2048``) get schedules that cost well under a second of
interpreted Triton (spins of at most 8 rounds); a GPU's get forwards of up to 4096 rounds (about
a millisecond on an H100, see kernels.py) and a host buffer of up to 2**24 int32 (64 MiB).
Shrinking is not done here (see ``shrink.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from moefuzz.model.case import Case
from moefuzz.model.target import INTERPRETER_LIMITS, Limits
from moefuzz.strategies import PAGE_SIZES, between, edge_sizes
from moefuzz_targets.stream_overlap.contract import COPY_METHODS

REUSES = ("fresh", "previous", "small_pool", "same")
RAGGEDS = ("full", "ragged", "empty_batch")
FILLS = ("full", "partial_last", "random", "one_slot")
LENGTHS = ("long", "random", "zero", "one_long")
#: Batch counts: one (only the first race), two (the least for the second), odd and larger.
BATCH_EDGES = (1, 2, 3, 8, 16)
#: Pages per batch: one, a few, and SGLang's chunked prefill of 8192 tokens in pages of 64 (128).
PAGE_COUNT_EDGES = (1, 2, 4, 64, 128)
#: Slot sizes: one element, a head of 64 or 128, MLA's 576, 8 KV heads x 128.
SLOT_EDGES = (1, 64, 128, 576, 1024)
#: Spin rounds: none, one, and powers up to the GPU bound.
LENGTH_EDGES = (0, 1, 8, 64, 512, 1024, 4096)


@dataclass(frozen=True)
class ScheduleBounds:
    """Largest schedule the strategy draws.

    Attributes:
        max_batches, max_pages_per_batch, max_page_size, max_slot_size: bounds on B, P, S, D.
        max_kernel_length: most spin rounds of one forward.
        max_host_elements: bound on B * P * S * D (the host buffer); D is cut to fit.
    """

    max_batches: int
    max_pages_per_batch: int
    max_page_size: int
    max_slot_size: int
    max_kernel_length: int
    max_host_elements: int


INTERPRETER_BOUNDS = ScheduleBounds(4, 4, 16, 64, 8, 1 << 14)
GPU_BOUNDS = ScheduleBounds(16, 128, 256, 1024, 4096, 1 << 24)


def schedule_bounds(limits: Limits) -> ScheduleBounds:
    """:data:`INTERPRETER_BOUNDS` for the interpreter's token budget or less, else
    :data:`GPU_BOUNDS`."""
    return INTERPRETER_BOUNDS if limits.max_tokens <= INTERPRETER_LIMITS.max_tokens else GPU_BOUNDS


def _page_counts(rng: np.random.Generator, num_batches: int, per_batch: int, ragged: str) -> np.ndarray:
    """[B] pages each batch copies under ``ragged``."""
    if ragged == "full":
        return np.full(num_batches, per_batch, dtype=np.int64)
    counts = rng.integers(1, per_batch + 1, size=num_batches)
    counts[rng.integers(num_batches)] = per_batch
    if ragged == "empty_batch" and num_batches >= 2:
        counts[rng.choice(np.flatnonzero(counts < per_batch) if (counts < per_batch).any() else num_batches)] = 0
    return counts


def _page_rows(rng: np.random.Generator, counts: np.ndarray, per_batch: int, reuse: str) -> tuple[np.ndarray, int]:
    """[B, P] pages (-1 padded) with ``counts[b]`` distinct pages in row b, and the pool size."""
    num_batches = counts.size
    if reuse == "small_pool":
        num_pages = per_batch + int(rng.integers(0, per_batch + 1))
        chosen = [rng.permutation(num_pages)[:count] for count in counts]
    elif reuse == "same":
        num_pages = per_batch + int(rng.integers(0, 2))
        order = rng.permutation(num_pages)
        chosen = [order[:count] for count in counts]
    else:  # fresh, previous: hand out new pages from one shuffled free list
        free = iter(rng.permutation(int(counts.sum()) + int(rng.integers(0, per_batch + 1))))
        chosen, previous = [], np.zeros(0, dtype=np.int64)
        for count in counts:
            kept = rng.permutation(previous)[: count // 2] if reuse == "previous" else previous[:0]
            row = np.concatenate([kept, [next(free) for _ in range(count - kept.size)]]).astype(np.int64)
            chosen.append(rng.permutation(row))
            previous = row
        num_pages = int(max((row.max(initial=-1) for row in chosen), default=-1)) + 1
    pages = np.full((num_batches, per_batch), -1, dtype=np.int32)
    for batch, row in enumerate(chosen):
        pages[batch, : row.size] = row
    return pages, max(1, num_pages)


def _fills(rng: np.random.Generator, pages: np.ndarray, page_size: int, fill: str) -> np.ndarray:
    real = pages >= 0
    if fill == "one_slot":
        values = np.ones(pages.shape, dtype=np.int64)
    elif fill == "random":
        values = rng.integers(1, page_size + 1, size=pages.shape)
    else:
        values = np.full(pages.shape, page_size, dtype=np.int64)
        if fill == "partial_last":
            last = real.sum(axis=1) - 1
            rows = np.flatnonzero(last >= 0)
            values[rows, last[rows]] = rng.integers(1, page_size + 1, size=rows.size)
    return np.where(real, values, 0).astype(np.int32)


def _kernel_lengths(rng: np.random.Generator, num_batches: int, longest: int, lengths: str) -> np.ndarray:
    if lengths == "zero" or longest == 0:
        return np.zeros(num_batches, dtype=np.int32)
    if lengths == "long":
        return rng.integers(longest // 2, longest + 1, size=num_batches).astype(np.int32)
    if lengths == "one_long":
        values = np.zeros(num_batches, dtype=np.int32)
        values[rng.integers(num_batches)] = longest
        return values
    return np.floor(np.exp2(rng.uniform(0, np.log2(longest + 1), size=num_batches)) - 1).astype(np.int32)


def build_schedule(
    *,
    num_batches: int,
    pages_per_batch: int,
    page_size: int,
    slot_size: int,
    longest: int,
    reuse: str = "previous",
    ragged: str = "full",
    fill: str = "full",
    lengths: str = "long",
    copy_method: str = "copy_engine",
    seed: int = 0,
) -> Case:
    """The stream_overlap case of the given structure (see the module doc for the modes);
    ``longest`` bounds the spin rounds of one forward. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    counts = _page_counts(rng, num_batches, pages_per_batch, ragged)
    pages, num_pages = _page_rows(rng, counts, pages_per_batch, reuse)
    return Case(
        {
            "batch_pages": pages,
            "page_fills": _fills(rng, pages, page_size, fill),
            "kernel_lengths": _kernel_lengths(rng, num_batches, longest, lengths),
        },
        {"num_pages": num_pages, "page_size": page_size, "slot_size": slot_size, "copy_method": copy_method},
    )


@st.composite
def _cases(draw: st.DrawFn, bounds: ScheduleBounds) -> Case:
    num_batches = draw(edge_sizes(BATCH_EDGES, 1, bounds.max_batches), label="num_batches")
    per_batch = draw(edge_sizes(PAGE_COUNT_EDGES, 1, bounds.max_pages_per_batch), label="pages_per_batch")
    page_size = draw(st.sampled_from([s for s in PAGE_SIZES if s <= bounds.max_page_size]), label="page_size")
    slot_size = draw(edge_sizes(SLOT_EDGES, 1, bounds.max_slot_size), label="slot_size")
    slot_size = max(1, min(slot_size, bounds.max_host_elements // (num_batches * per_batch * page_size)))
    return build_schedule(
        num_batches=num_batches,
        pages_per_batch=per_batch,
        page_size=page_size,
        slot_size=slot_size,
        longest=draw(edge_sizes(LENGTH_EDGES, 0, bounds.max_kernel_length), label="longest"),
        reuse=draw(st.sampled_from(REUSES), label="reuse"),
        ragged=draw(st.sampled_from(RAGGEDS), label="ragged"),
        fill=draw(st.sampled_from(FILLS), label="fill"),
        lengths=draw(st.sampled_from(LENGTHS), label="lengths"),
        copy_method=draw(st.sampled_from(COPY_METHODS), label="copy_method"),
        seed=draw(between(0, 2**32 - 1), label="seed"),
    )


def cases(limits: Limits) -> st.SearchStrategy[Case]:
    """stream_overlap schedules within :func:`schedule_bounds` of ``limits``."""
    return _cases(schedule_bounds(limits))
