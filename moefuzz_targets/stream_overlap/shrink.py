"""Shrink passes and size order of stream_overlap schedules.

The size order, smallest first::

    (batches B, pages per batch P, pages copied, page_size, slots written, slot_size,
     total spin rounds, pool pages)

so a reproducer keeps the fewest batches first, and shortens its forwards only after everything
else: a shorter forward narrows the race window and may stop reproducing (the engine's flaky-
finding machinery decides whether a candidate still fails often enough). Every pass keeps the
contract's layout: real pages first in a row, fills 0 exactly on -1 padding, no trailing column
of padding only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking.passes import Shrinker, ShrinkPass, lower, smaller_sizes


def size(case: Case) -> tuple[int, ...]:
    """See the module doc."""
    pages = case.arrays["batch_pages"]
    return (
        int(pages.shape[0]),
        int(pages.shape[1]),
        int((pages >= 0).sum()),
        int(case.params["page_size"]),
        int(case.arrays["page_fills"].astype(np.int64).sum()),
        int(case.params["slot_size"]),
        int(case.arrays["kernel_lengths"].astype(np.int64).sum()),
        int(case.params["num_pages"]),
    )


def _rebuild(case: Case, pages: np.ndarray, fills: np.ndarray, lengths: np.ndarray) -> Case:
    """``case`` with these rows: each row's real pages moved to its front (fills alongside), then
    trailing columns of padding only dropped (at least one column stays)."""
    order = np.argsort(pages < 0, axis=1, kind="stable")
    pages = np.take_along_axis(pages, order, axis=1)
    fills = np.take_along_axis(fills, order, axis=1)
    width = max(1, int((pages >= 0).sum(axis=1).max(initial=0)))
    arrays = {
        "batch_pages": np.ascontiguousarray(pages[:, :width], dtype=np.int32),
        "page_fills": np.ascontiguousarray(fills[:, :width], dtype=np.int32),
        "kernel_lengths": np.ascontiguousarray(lengths, dtype=np.int32),
    }
    return case.replace(arrays)


def keep_batches(case: Case, batches: Sequence[int]) -> Case:
    """``case`` with only the listed batches, in their order."""
    index = np.asarray(batches, dtype=np.int64)
    a = case.arrays
    return _rebuild(case, a["batch_pages"][index], a["page_fills"][index], a["kernel_lengths"][index])


def drop_page(case: Case, batch: int, j: int) -> Case:
    """``case`` without the j-th page of batch ``batch`` (the row closes up behind it)."""
    pages, fills = case.arrays["batch_pages"].copy(), case.arrays["page_fills"].copy()
    pages[batch, j], fills[batch, j] = -1, 0
    return _rebuild(case, pages, fills, case.arrays["kernel_lengths"])


def drop_batches(shrinker: Shrinker) -> None:
    """Keep the first half or the second half of the batches, then drop batches one at a time
    (last first)."""
    count = shrinker.current.arrays["batch_pages"].shape[0]
    if count > 1:
        half = count // 2
        if shrinker.consider(keep_batches(shrinker.current, range(half))):
            return
        if shrinker.consider(keep_batches(shrinker.current, range(half, count))):
            return
    batch = shrinker.current.arrays["batch_pages"].shape[0] - 1
    while batch >= 0 and shrinker.current.arrays["batch_pages"].shape[0] > 1 and not shrinker.exhausted:
        rows = [b for b in range(shrinker.current.arrays["batch_pages"].shape[0]) if b != batch]
        shrinker.consider(keep_batches(shrinker.current, rows))
        batch -= 1


def drop_pages(shrinker: Shrinker) -> None:
    """Keep only the first half of every batch's pages, then drop single pages (last first)."""
    per_batch = shrinker.current.arrays["batch_pages"].shape[1]
    if per_batch > 1:
        case = shrinker.current
        half = (per_batch + 1) // 2
        pages, fills = case.arrays["batch_pages"].copy(), case.arrays["page_fills"].copy()
        pages[:, half:], fills[:, half:] = -1, 0
        if shrinker.consider(_rebuild(case, pages, fills, case.arrays["kernel_lengths"])):
            return
    # Last first: dropping (b, j) moves only row b's later pages, which were already tried.
    for batch, j in reversed(np.argwhere(shrinker.current.arrays["batch_pages"] >= 0).tolist()):
        if shrinker.exhausted:
            return
        shrinker.consider(drop_page(shrinker.current, batch, j))


def lower_fills(shrinker: Shrinker) -> None:
    """Write one slot of every page, then halve each page's fill (last pages first)."""
    case = shrinker.current
    fills = case.arrays["page_fills"]
    if shrinker.consider(case.replace({"page_fills": np.minimum(fills, 1).astype(np.int32)})):
        return
    for batch, j in reversed(np.argwhere(shrinker.current.arrays["page_fills"] > 1).tolist()):
        if shrinker.exhausted:
            return
        fills = shrinker.current.arrays["page_fills"].copy()
        fills[batch, j] = 1 if fills[batch, j] <= 3 else fills[batch, j] // 2
        shrinker.consider(shrinker.current.replace({"page_fills": fills}))


def with_page_size(case: Case, page_size: int) -> Case:
    """``case`` with pages of ``page_size`` slots; fills cut to fit, page ids unchanged."""
    fills = np.minimum(case.arrays["page_fills"], page_size).astype(np.int32)
    return case.replace({"page_fills": fills}, page_size=page_size)


def lower_page_size(shrinker: Shrinker) -> None:
    """Try page_size 1, then 2, 4, ... and S - 1, smallest first; keep the first that fails."""
    current = int(shrinker.current.params["page_size"])
    for page_size in smaller_sizes(current):
        if shrinker.consider(with_page_size(shrinker.current, page_size)):
            return


def lower_slot_size(shrinker: Shrinker) -> None:
    """The smallest slot_size that still fails, by bisection (1 first)."""
    slot_size = int(shrinker.current.params["slot_size"])
    lower(shrinker, slot_size, lambda size: shrinker.current.replace(slot_size=size), lowest=1, probes=(1,))


def shorten_kernels(shrinker: Shrinker) -> None:
    """No spin at all, then every forward's spin halved, then one batch's at a time: none, or
    half (last batch first)."""
    lengths = shrinker.current.arrays["kernel_lengths"]
    for candidate in (np.zeros_like(lengths), lengths // 2):
        if shrinker.consider(shrinker.current.replace({"kernel_lengths": candidate.astype(np.int32)})):
            return
    for batch in reversed(range(lengths.size)):
        for value in (0, int(shrinker.current.arrays["kernel_lengths"][batch]) // 2):
            if shrinker.exhausted:
                return
            candidate = shrinker.current.arrays["kernel_lengths"].copy()
            candidate[batch] = value
            if shrinker.consider(shrinker.current.replace({"kernel_lengths": candidate})):
                break


def compact_pages(shrinker: Shrinker) -> None:
    """Renumber the pages in use 0, 1, 2... in order of first use and shrink the pool to them."""
    case = shrinker.current
    pages = case.arrays["batch_pages"]
    used = pages[pages >= 0]
    order = used[np.sort(np.unique(used, return_index=True)[1])]
    remap = np.full(int(case.params["num_pages"]), -1, dtype=np.int64)
    remap[order] = np.arange(order.size)
    new_pages = np.where(pages >= 0, remap[np.clip(pages, 0, None)], -1).astype(np.int32)
    shrinker.consider(case.replace({"batch_pages": new_pages}, num_pages=max(1, int(order.size))))


PASSES = [
    ShrinkPass(drop_batches),
    ShrinkPass(drop_pages),
    ShrinkPass(lower_page_size),
    ShrinkPass(lower_fills),
    ShrinkPass(lower_slot_size),
    ShrinkPass(compact_pages),
    ShrinkPass(shorten_kernels),
]
