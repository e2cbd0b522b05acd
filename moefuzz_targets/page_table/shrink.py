"""Shrink passes for page_table cases that keep the paged layout of ``req_to_token``.

A case is a batch of requests over rows of ``req_to_token``, positions filling whole pages, and
on a sliding-window layer a SWA mapping that covers the window pages only. The passes drop
requests, the SWA pool, table columns, leading pages of a request (its row shifts left by whole
pages, so every slot keeps its page offset and the window keeps its SWA pages), trailing
positions, window width, pool rows and context columns; they replace the page size by a divisor
(the slots stay: a page of page_size splits into page_size / d pages of d, and both pools count
that many more pages) and renumber the pages in use so that both pools shrink to them.
``contract.check`` rejects a candidate whose new window reaches pages the mapping does not cover.
The size order::

    (B, SWA layer, max_pages, sum(seq_lens), page_size, sliding_window, pool rows, max_context,
     num_pages, swa_num_pages)

ends a reproducer with as few requests as still fail, a full-attention layer when the failure
allows, then as few table columns and positions as possible, then the smallest page size, window,
req_to_token and pools.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking import paging
from moefuzz.shrinking.passes import Shrinker, ShrinkPass, delete_runs, lower
from moefuzz_targets.page_table.contract import SWA_MAPPING, has_swa, table_spans


def size(case: Case) -> tuple[int, ...]:
    """The size order of this module's doc."""
    seq_lens = case.arrays["seq_lens"]
    rows, context = case.arrays["req_to_token"].shape
    swa = has_swa(case)
    return (
        int(seq_lens.shape[0]),
        int(swa),
        int(case.params["max_pages"]),
        int(seq_lens.sum()),
        int(case.params["page_size"]),
        int(case.params["sliding_window"]) if swa else 0,
        int(rows),
        int(context),
        int(case.params["num_pages"]),
        int(case.params["swa_num_pages"]),
    )


def passes() -> list[ShrinkPass]:
    """The passes, big cuts first."""
    return [
        ShrinkPass(drop_requests),
        ShrinkPass(drop_swa_pool),
        ShrinkPass(narrow_table),
        ShrinkPass(drop_leading_pages),
        ShrinkPass(shorten_seq_lens),
        ShrinkPass(narrow_window),
        ShrinkPass(shrink_page_size),
        ShrinkPass(drop_pool_rows),
        ShrinkPass(drop_context_columns),
        ShrinkPass(compact_pages),
        ShrinkPass(compact_swa_pages),
    ]


# -- passes ---------------------------------------------------------------------------------
def drop_requests(shrinker: Shrinker) -> None:
    """Delete requests of the batch (their pool rows stay): halves first, down to single ones;
    one request always stays."""
    paging.drop_requests(shrinker, ("seq_lens", "req_pool_indices"))


def drop_swa_pool(shrinker: Shrinker) -> None:
    """Make a sliding-window layer's case a full-attention layer's: no mapping, no window."""
    case = shrinker.current
    if has_swa(case):
        arrays = {name: array for name, array in case.arrays.items() if name != SWA_MAPPING}
        shrinker.consider(Case(arrays, {**case.params, "sliding_window": -1, "swa_num_pages": 0}))


def narrow_table(shrinker: Shrinker) -> None:
    """Lower max_pages towards the longest request's page count (that first, then bisection)."""
    base = shrinker.current
    lowest = paging.pages(int(base.arrays["seq_lens"].max(initial=0)), _page_size(base))
    _lower(shrinker, int(base.params["max_pages"]), lowest, lambda value: base.replace(max_pages=value))


def drop_leading_pages(shrinker: Shrinker) -> None:
    """For each request, delete its first k whole pages (as many as possible first, then by
    bisection): its row shifts left by k * page_size cells (the dropped cells wrap to the end,
    past seq_len) and seq_len drops by as much; every other page keeps its slots."""
    for request in range(paging.batch(shrinker.current)):
        if shrinker.exhausted:
            return
        base = shrinker.current
        droppable = int(base.arrays["seq_lens"][request]) // _page_size(base)
        _lower(shrinker, droppable, 0, partial(_keep_pages_after_first, base, request, droppable))


def shorten_seq_lens(shrinker: Shrinker) -> None:
    """For each request, lower seq_len (to 0 first, then by bisection); its cells past the new
    seq_len become unowned."""
    for request in range(paging.batch(shrinker.current)):
        if shrinker.exhausted:
            return
        base = shrinker.current
        _lower(shrinker, int(base.arrays["seq_lens"][request]), 0, partial(_with_seq_len, base, request))


def narrow_window(shrinker: Shrinker) -> None:
    """Lower sliding_window towards 1 (that first, then bisection): fewer window pages."""
    base = shrinker.current
    if has_swa(base):
        _lower(shrinker, int(base.params["sliding_window"]), 1, lambda value: base.replace(sliding_window=value))


def shrink_page_size(shrinker: Shrinker) -> None:
    """Replace page_size by its smallest divisor that still fails (1 first). Slots, the mapping
    and seq_lens stay; num_pages and swa_num_pages grow by page_size / d; max_pages keeps as many
    columns past the longest request as before (within max_context)."""
    base = shrinker.current
    page_size = _page_size(base)
    for divisor in (d for d in range(1, page_size) if page_size % d == 0):
        if shrinker.exhausted or shrinker.consider(_with_page_size(base, divisor)):
            return


def drop_pool_rows(shrinker: Shrinker) -> None:
    """Delete rows of req_to_token no request uses (all at once, then halves, down to single
    rows); req_pool_indices follow their rows."""
    delete_runs(
        shrinker,
        lambda case: int(_unused_rows(case).size),
        lambda case, keep: _drop_rows(case, _unused_rows(case)[~keep]),
        all_first=True,
    )


def drop_context_columns(shrinker: Shrinker) -> None:
    """Lower max_context (req_to_token's columns) towards what the table needs: every position
    < seq_len and the first column of every table page (that first, then bisection)."""
    base = shrinker.current
    page_size = _page_size(base)
    needed = max(int(base.arrays["seq_lens"].max(initial=0)), (int(base.params["max_pages"]) - 1) * page_size + 1, 0)
    columns = int(base.arrays["req_to_token"].shape[1])

    def keep(value: int) -> Case:
        return base.replace({"req_to_token": np.ascontiguousarray(base.arrays["req_to_token"][:, :value])})

    _lower(shrinker, columns, needed, keep)


def compact_pages(shrinker: Shrinker) -> None:
    """Renumber the full pages the batch owns 1..k in increasing order (page 0 stays reserved)
    and cut the cache to k + 1 pages; the mapping's entries move with their pages. Unowned
    cells keep their garbage."""
    case = shrinker.current
    page_size = _page_size(case)
    owned = _owned_cells(case)
    req_to_token = case.arrays["req_to_token"].astype(np.int64)
    old_pages = np.unique(req_to_token[owned] // page_size)
    if old_pages.size + 1 >= int(case.params["num_pages"]):
        return
    new_page = np.searchsorted(old_pages, req_to_token[owned] // page_size) + 1
    req_to_token[owned] = new_page * page_size + req_to_token[owned] % page_size
    arrays = {"req_to_token": req_to_token.astype(np.int32)}
    if SWA_MAPPING in case.arrays:
        mapping = case.arrays[SWA_MAPPING]
        moved = (old_pages[:, None] * page_size + np.arange(page_size)).reshape(-1)
        arrays[SWA_MAPPING] = np.concatenate([mapping[:page_size], mapping[moved]])
    shrinker.consider(case.replace(arrays, num_pages=int(old_pages.size) + 1))


def compact_swa_pages(shrinker: Shrinker) -> None:
    """Renumber the SWA pages the windows use 1..m in increasing order and cut the SWA pool to
    m + 1 pages; mapping entries into other SWA pages stay as they are (stale)."""
    case = shrinker.current
    if not has_swa(case):
        return
    page_size = _page_size(case)
    mapping = case.arrays[SWA_MAPPING]
    first, _ = table_spans(case)
    window_slots = [
        case.arrays["req_to_token"][int(row), int(first[i]) * page_size : int(seq)]
        for i, (row, seq) in enumerate(zip(case.arrays["req_pool_indices"], case.arrays["seq_lens"], strict=True))
    ]
    used = np.unique(mapping[np.concatenate([np.zeros(0, np.int64), *window_slots])] // page_size)
    if used.size + 1 >= int(case.params["swa_num_pages"]):
        return
    pages = mapping // page_size
    index = np.minimum(np.searchsorted(used, pages), max(used.size - 1, 0))
    hit = used[index] == pages if used.size else np.zeros(pages.shape, dtype=bool)
    new_mapping = np.where(hit, (index + 1) * page_size + mapping % page_size, mapping)
    shrinker.consider(case.replace({SWA_MAPPING: new_mapping.astype(np.int64)}, swa_num_pages=int(used.size) + 1))


# -- helpers --------------------------------------------------------------------------------
def _lower(shrinker: Shrinker, value: int, lowest: int, candidate_of: Callable[[int], Case | None]) -> None:
    """Find a small value in [lowest, value) whose candidate still fails: ``lowest`` first, then
    ``lowest + 1`` (a failure that needs one more column, position or page than the least, as
    one trailing garbage column does), then bisection (``value`` is known to fail). The two
    probes find such a value in one accepted candidate where bisection takes log2(value), and
    each accepted candidate of a crash costs a worker on a GPU."""
    lower(shrinker, value, candidate_of, lowest=lowest, probes=(lowest, lowest + 1))


def _page_size(case: Case) -> int:
    return int(case.params["page_size"])


def _with_seq_len(case: Case, request: int, value: int) -> Case:
    seq_lens = case.arrays["seq_lens"].copy()
    seq_lens[request] = value
    return case.replace({"seq_lens": seq_lens})


def _keep_pages_after_first(case: Case, request: int, droppable: int, kept: int) -> Case | None:
    """``_drop_leading`` of ``droppable - kept`` pages."""
    return _drop_leading(case, request, droppable - kept)


def _drop_leading(case: Case, request: int, pages: int) -> Case | None:
    """Request ``request`` without its first ``pages`` pages; None when another request shares
    its row (the shift would move that one's slots too)."""
    indices = case.arrays["req_pool_indices"]
    row = int(indices[request])
    if (indices == row).sum() > 1:
        return None
    shift = pages * _page_size(case)
    req_to_token = case.arrays["req_to_token"].copy()
    req_to_token[row] = np.roll(req_to_token[row], -shift)
    seq_lens = case.arrays["seq_lens"].copy()
    seq_lens[request] -= shift
    return case.replace({"req_to_token": req_to_token, "seq_lens": seq_lens})


def _with_page_size(case: Case, divisor: int) -> Case:
    page_size = _page_size(case)
    factor = page_size // divisor
    longest = int(case.arrays["seq_lens"].max(initial=0))
    past = int(case.params["max_pages"]) - paging.pages(longest, page_size)  # columns past the longest request
    context = int(case.arrays["req_to_token"].shape[1])
    return case.replace(
        page_size=divisor,
        num_pages=int(case.params["num_pages"]) * factor,
        swa_num_pages=int(case.params["swa_num_pages"]) * factor,
        max_pages=min(paging.pages(longest, divisor) + past, paging.pages(context, divisor)),
    )


def _owned_cells(case: Case) -> np.ndarray:
    """[num_reqs_in_pool, max_context] bool: the cells below some request's seq_len."""
    owned = np.zeros(case.arrays["req_to_token"].shape, dtype=bool)
    for row, seq in zip(case.arrays["req_pool_indices"], case.arrays["seq_lens"], strict=True):
        owned[int(row), : int(seq)] = True
    return owned


def _unused_rows(case: Case) -> np.ndarray:
    used = np.zeros(case.arrays["req_to_token"].shape[0], dtype=bool)
    used[case.arrays["req_pool_indices"]] = True
    return np.flatnonzero(~used)


def _drop_rows(case: Case, rows: np.ndarray) -> Case:
    keep = np.ones(case.arrays["req_to_token"].shape[0], dtype=bool)
    keep[rows] = False
    new_index = np.cumsum(keep) - 1
    return case.replace(
        {
            "req_to_token": np.ascontiguousarray(case.arrays["req_to_token"][keep]),
            "req_pool_indices": new_index[case.arrays["req_pool_indices"]].astype(np.int64),
        }
    )
