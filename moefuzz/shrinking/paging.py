"""Shrink helpers for cases built around a batch of requests over a paged cache.

The paging targets (alloc_extend, page_table, paged_decode) keep one row per request in a few
arrays (``seq_lens``, ``req_pool_indices``, ``q``, ``page_table``...) and count pages of
``page_size`` slots. :func:`drop_requests` deletes requests (delta debugging), :func:`pages`
counts the pages that hold a length; a target's own passes (relayouts, free lists, windows)
stay with the target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import overload

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking.search import delete_runs
from moefuzz.shrinking.shrinker import Shrinker


def batch(case: Case, name: str = "seq_lens") -> int:
    """B, the number of requests: the length of the per-request array ``name``."""
    return int(case.arrays[name].shape[0])


def select_requests(case: Case, keep: np.ndarray, names: Sequence[str]) -> Case:
    """``case`` with the requests ``keep`` ([B] bool) marks: those rows of the per-request arrays
    ``names`` (contiguous copies); every other array and param is left as it is."""
    return case.replace({name: np.ascontiguousarray(case.arrays[name][keep]) for name in names})


def drop_requests(
    shrinker: Shrinker,
    names: Sequence[str],
    select: Callable[[Case, np.ndarray], Case] | None = None,
    keep_one: bool = True,
) -> None:
    """Delete runs of requests, halves first, down to single requests (delta debugging): rows of
    the per-request arrays ``names`` (the first one's length is B), or ``select(case, keep)``
    where dropping a request also changes other arrays (a free list). With ``keep_one`` (the
    default) one request always stays."""
    chosen = select or (lambda case, keep: select_requests(case, keep, names))
    delete_runs(shrinker, lambda case: batch(case, names[0]), chosen, keep_one=keep_one)


@overload
def pages(lengths: int, page_size: int) -> int: ...
@overload
def pages(lengths: np.ndarray, page_size: int) -> np.ndarray: ...
def pages(lengths: int | np.ndarray, page_size: int) -> int | np.ndarray:
    """Pages holding ``lengths`` slots, ceil(length / page_size): an int for an int, [B] int64
    for an array."""
    if isinstance(lengths, np.ndarray):
        return -(-lengths.astype(np.int64) // page_size)
    return -(-int(lengths) // page_size)
