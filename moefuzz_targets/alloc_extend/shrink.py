"""Shrink passes and size order of alloc_extend cases.

A case is a batch of requests over a cache of ``num_pages`` pages; the passes keep it consistent
(``contract.check`` has the last word on every candidate) and keep the slots of the requests they
do not touch unchanged where they can: a dropped request takes its slice of the free list with it,
a shortened one gives back the pages it no longer needs. The size order is::

    (tokens = sum(seq_lens), B, page_size, num_pages, num_free, descents in the free list)

so a reproducer has as few tokens and requests as still fail, then the smallest page size, the
smallest cache and free list, and a free list in ascending order where the failure allows.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking import paging
from moefuzz.shrinking.passes import Shrinker, ShrinkPass, lower, smaller_sizes
from moefuzz_targets.alloc_extend.contract import last_pages, new_pages, pages_of, valid_free_pages
from moefuzz_targets.alloc_extend.strategy import allocation_case


def size(case: Case) -> tuple[int, ...]:
    """The size order of this module's doc."""
    free = valid_free_pages(case)
    return (
        int(case.arrays["seq_lens"].sum()),
        int(case.arrays["seq_lens"].shape[0]),
        int(case.params["page_size"]),
        int(case.params["num_pages"]),
        int(case.params["num_free"]),
        int((np.diff(free) < 0).sum()),
    )


# -- passes ---------------------------------------------------------------------------------------
def drop_requests(shrinker: Shrinker) -> None:
    """Delete runs of requests, each with the pages it would take from the free list: halves
    first, down to single requests (delta debugging)."""
    paging.drop_requests(shrinker, ("seq_lens",), _select_requests, keep_one=False)


def cut_free_list(shrinker: Shrinker) -> None:
    """Keep only the free pages the batch takes (the spare ones become pages nobody lists)."""
    case = shrinker.current
    needed = int(new_pages(case).sum())
    if needed < int(case.params["num_free"]):
        shrinker.consider(_rebuild(case, free_pages=valid_free_pages(case)[:needed]))


def drop_prefix_pages(shrinker: Shrinker) -> None:
    """Shorten prefixes by whole pages, every page but the last first (then by bisection), the
    extend keeping its length: the request's slots stay the same."""
    size_of_page = int(shrinker.current.params["page_size"])
    earlier_pages = np.maximum(0, (shrinker.current.arrays["prefix_lens"] - 1) // size_of_page)  # before the last
    for request in range(paging.batch(shrinker.current)):
        prefix = int(shrinker.current.arrays["prefix_lens"][request])
        seq = int(shrinker.current.arrays["seq_lens"][request])

        def candidate(pages: int, request: int = request, prefix: int = prefix, seq: int = seq) -> Case | None:
            cut = (int(earlier_pages[request]) - pages) * size_of_page  # keep `pages` of the earlier pages
            return _with_lengths(shrinker.current, request, prefix - cut, seq - cut)

        lower(shrinker, int(earlier_pages[request]), candidate, probes=(0,))


def shorten_extends(shrinker: Shrinker) -> None:
    """Lower each request's seq_len towards its prefix_len, by bisection."""
    for request in range(paging.batch(shrinker.current)):
        prefix = int(shrinker.current.arrays["prefix_lens"][request])
        extend = int(shrinker.current.arrays["seq_lens"][request]) - prefix

        def candidate(length: int, request: int = request, prefix: int = prefix) -> Case | None:
            return _with_lengths(shrinker.current, request, prefix, prefix + length)

        lower(shrinker, extend, candidate, probes=(0,))


def shorten_prefixes(shrinker: Shrinker) -> None:
    """Lower each request's prefix_len (towards 0), the extend keeping its length, by bisection;
    the request keeps its last prefix page."""
    for request in range(paging.batch(shrinker.current)):
        prefix = int(shrinker.current.arrays["prefix_lens"][request])
        extend = int(shrinker.current.arrays["seq_lens"][request]) - prefix

        def candidate(length: int, request: int = request, extend: int = extend) -> Case | None:
            return _with_lengths(shrinker.current, request, length, length + extend)

        lower(shrinker, prefix, candidate, probes=(0,))


def lower_page_size(shrinker: Shrinker) -> None:
    """Try page_size 1, 2, 4, ... and page_size - 1, smallest first; keep the first that fails.

    Every length keeps its pages: ``L -> (L // Z) * Z' + min(L % Z, max(Z' - 1, 1))`` (a full
    page stays full, a partial one partial while Z' >= 2), so each request takes the same free
    pages and keeps its last prefix page.
    """
    case = shrinker.current
    current = int(case.params["page_size"])
    for page_size in smaller_sizes(current):
        if shrinker.consider(_with_page_size(case, page_size)):
            return


def compact_pages(shrinker: Shrinker) -> None:
    """Renumber the pages the case names (last prefix pages, free pages) 1, 2, ... and shrink
    num_pages to the least the contract allows; pages it does not name (earlier prefix pages)
    take the lowest ids. Tries the old order, then free pages below the last prefix pages, then
    above them."""
    case = shrinker.current
    last = last_pages(case)
    last_named = np.unique(last[last >= 0])
    free = valid_free_pages(case)
    orders = (
        np.sort(np.concatenate([last_named, free])),
        np.concatenate([np.sort(free), last_named]),
        np.concatenate([last_named, np.sort(free)]),
    )
    page_size = int(case.params["page_size"])
    fillers = max(0, int(pages_of(case.arrays["prefix_lens"], page_size).max(initial=0)) - last_named.size)
    for order in orders:
        if shrinker.exhausted:
            return
        new_id = dict(zip(order.tolist(), range(1 + fillers, 1 + fillers + order.size), strict=True))
        last_loc = case.arrays["last_loc"]
        remapped = [
            new_id[int(loc) // page_size] * page_size + int(loc) % page_size if loc >= 0 else -1 for loc in last_loc
        ]
        candidate = _rebuild(
            case,
            last_loc=np.asarray(remapped, dtype=np.int64),
            free_pages=np.asarray([new_id[int(p)] for p in free], dtype=np.int64),
            num_pages=1 + fillers + order.size,
        )
        if shrinker.consider(candidate):
            return


def sort_free_list(shrinker: Shrinker) -> None:
    """Put the free list in ascending order."""
    free = valid_free_pages(shrinker.current)
    if (np.diff(free) < 0).any():
        shrinker.consider(_rebuild(shrinker.current, free_pages=np.sort(free)))


PASSES = [
    ShrinkPass(drop_requests),
    ShrinkPass(cut_free_list),
    ShrinkPass(drop_prefix_pages),
    ShrinkPass(shorten_extends),
    ShrinkPass(lower_page_size),
    ShrinkPass(compact_pages),
    ShrinkPass(shorten_prefixes),
    ShrinkPass(sort_free_list),
]


# -- helpers --------------------------------------------------------------------------------------
def _rebuild(case: Case, **fields: object) -> Case:
    """``case`` with some of allocation_case's fields replaced."""
    current: dict[str, object] = {
        "page_size": int(case.params["page_size"]),
        "num_pages": int(case.params["num_pages"]),
        "prefix_lens": case.arrays["prefix_lens"],
        "seq_lens": case.arrays["seq_lens"],
        "last_loc": case.arrays["last_loc"],
        "free_pages": valid_free_pages(case),
    }
    current.update(fields)
    return allocation_case(**current)  # type: ignore[arg-type]


def _free_slices(case: Case) -> list[np.ndarray]:
    """Per request, the entries of the free list it takes."""
    ends = np.cumsum(new_pages(case))
    starts = ends - new_pages(case)
    free = valid_free_pages(case)
    return [free[start:end] for start, end in zip(starts, ends, strict=True)]


def _select_requests(case: Case, keep: np.ndarray) -> Case:
    """The requests ``keep`` marks, each with its slice of the free list; spare pages stay."""
    slices = _free_slices(case)
    spare = valid_free_pages(case)[int(new_pages(case).sum()) :]
    kept = [slices[i] for i in np.flatnonzero(keep)]
    return _rebuild(
        case,
        prefix_lens=case.arrays["prefix_lens"][keep],
        seq_lens=case.arrays["seq_lens"][keep],
        last_loc=case.arrays["last_loc"][keep],
        free_pages=np.concatenate([*kept, spare]) if kept else spare,
    )


def _with_lengths(case: Case, request: int, prefix: int, seq: int) -> Case | None:
    """Request ``request`` with new lengths, on the same last prefix page; it gives back the free
    pages it no longer needs (None if it would need more, or a prefix where it had none)."""
    old_prefix = int(case.arrays["prefix_lens"][request])
    if not 0 <= prefix <= seq or (prefix > 0 and old_prefix == 0):
        return None
    page_size = int(case.params["page_size"])
    pages = int(pages_of(np.array([seq]), page_size)[0] - pages_of(np.array([prefix]), page_size)[0])
    slices = _free_slices(case)
    if pages > slices[request].size:
        return None
    slices[request] = slices[request][:pages]
    spare = valid_free_pages(case)[int(new_pages(case).sum()) :]
    last_loc = case.arrays["last_loc"].copy()
    page = int(last_loc[request]) // page_size
    last_loc[request] = page * page_size + (prefix - 1) % page_size if prefix > 0 else -1
    prefix_lens, seq_lens = case.arrays["prefix_lens"].copy(), case.arrays["seq_lens"].copy()
    prefix_lens[request], seq_lens[request] = prefix, seq
    return _rebuild(
        case,
        prefix_lens=prefix_lens,
        seq_lens=seq_lens,
        last_loc=last_loc,
        free_pages=np.concatenate([*slices, spare]),
    )


def _with_page_size(case: Case, page_size: int) -> Case:
    """``case`` on pages of ``page_size`` slots (see :func:`lower_page_size`)."""
    old = int(case.params["page_size"])

    def length(lengths: np.ndarray) -> np.ndarray:
        return (lengths // old) * page_size + np.minimum(lengths % old, max(page_size - 1, 1))

    prefix = length(case.arrays["prefix_lens"])
    last_loc = case.arrays["last_loc"]
    new_last = np.where(last_loc >= 0, (last_loc // old) * page_size + (prefix - 1) % page_size, -1)
    return _rebuild(
        case,
        page_size=page_size,
        prefix_lens=prefix,
        seq_lens=length(case.arrays["seq_lens"]),
        last_loc=new_last.astype(np.int64),
    )
