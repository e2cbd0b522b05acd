"""Shrink passes for paged_decode cases, and the size order they reduce.

A case is B requests (rows of q, page_table and cache_seqlens), Hkv groups of G q heads, a
paged cache and a window. The passes drop requests, shorten requests (keeping the prefix of
their positions, and their garbage right after their pages), delete the page table's garbage
columns, drop or narrow the window, drop kv heads and places in the group, narrow D, move the
requests onto fresh pages of a smaller page size (1 first) numbered in order of use, drop the
pages no page_table entry names (the poison page 0 that relayout keeps, once no garbage names
it), and zero the garbage. Passes that cut requests and positions come first: a crashing case costs a worker
per accepted candidate, so the shrink of a crash gets the big cuts within its budget. The size order::

    (B, Hq, Hkv, sum L, D, page_size, num_pages, max_pages, window on, W, nonzero garbage)

ends a reproducer with as few requests, heads and positions as still fail, then small head
dims and pages, then no window (or the narrowest) and as little garbage as the failure needs.
"""

from __future__ import annotations

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking import paging
from moefuzz.shrinking.passes import Shrinker, ShrinkPass, delete_runs, lower
from moefuzz_targets.paged_decode.contract import pages_used


def _trailing(case: Case) -> np.ndarray:
    """[B, max_pages] bool: page_table entries past each request's pages (garbage)."""
    page_table = case.arrays["page_table"]
    used = pages_used(case.arrays["cache_seqlens"], case.arrays["k_cache"].shape[1])
    return np.arange(page_table.shape[1])[None, :] >= used[:, None]


def size(case: Case) -> tuple[int, ...]:
    """The size order of this module's doc."""
    batch, num_q_heads, head_dim = case.arrays["q"].shape
    num_pages, page_size, num_kv_heads, _ = case.arrays["k_cache"].shape
    window = int(case.params["sliding_window"])
    page_table = case.arrays["page_table"]
    return (
        batch,
        num_q_heads,
        num_kv_heads,
        int(case.arrays["cache_seqlens"].astype(np.int64).sum()),
        head_dim,
        page_size,
        num_pages,
        int(page_table.shape[1]),
        int(window > 0),
        window,
        int((page_table[_trailing(case)] != 0).sum()),
    )


def passes() -> list[ShrinkPass]:
    """The passes, big cuts first."""
    return [
        ShrinkPass(drop_requests),
        ShrinkPass(shorten_requests),
        ShrinkPass(drop_garbage_columns),
        ShrinkPass(narrow_window),
        ShrinkPass(drop_kv_heads),
        ShrinkPass(shrink_groups),
        ShrinkPass(narrow_head_dim),
        ShrinkPass(repage),
        ShrinkPass(drop_unnamed_pages),
        ShrinkPass(zero_garbage),
    ]


# -- passes ---------------------------------------------------------------------------------
def drop_requests(shrinker: Shrinker) -> None:
    """Delete requests (rows of q, page_table and cache_seqlens), halves first."""
    paging.drop_requests(shrinker, ("q", "page_table", "cache_seqlens"))


def _heads(case: Case) -> tuple[int, int]:
    num_kv_heads = int(case.arrays["k_cache"].shape[2])
    return num_kv_heads, int(case.arrays["q"].shape[1]) // num_kv_heads


def _select_heads(case: Case, keep_kv: np.ndarray, keep_member: np.ndarray) -> Case:
    """Keep the kv heads ``keep_kv`` ([Hkv] bool) and the group places ``keep_member`` ([G]
    bool) of every kept group; q head h = kv_head * G + g."""
    num_kv_heads, group = _heads(case)
    keep_q = (keep_kv[:, None] & keep_member[None, :]).reshape(num_kv_heads * group)
    return case.replace(
        {
            "q": np.ascontiguousarray(case.arrays["q"][:, keep_q]),
            "k_cache": np.ascontiguousarray(case.arrays["k_cache"][:, :, keep_kv]),
            "v_cache": np.ascontiguousarray(case.arrays["v_cache"][:, :, keep_kv]),
        }
    )


def drop_kv_heads(shrinker: Shrinker) -> None:
    """Delete kv heads with their groups of q heads, halves first."""
    delete_runs(
        shrinker,
        lambda case: _heads(case)[0],
        lambda case, keep: _select_heads(case, keep, np.ones(_heads(case)[1], dtype=bool)),
        keep_one=True,
    )


def shrink_groups(shrinker: Shrinker) -> None:
    """Delete places of the GQA group (the same ones from every group, so Hq stays a multiple
    of Hkv), halves first."""
    delete_runs(
        shrinker,
        lambda case: _heads(case)[1],
        lambda case, keep: _select_heads(case, np.ones(_heads(case)[0], dtype=bool), keep),
        keep_one=True,
    )


def shorten_requests(shrinker: Shrinker) -> None:
    """Lower each request's L by bisection, keeping its first positions: first with the pages
    it no longer needs cut out of its row (its garbage moves up next to its pages, the row is
    filled up with 0 at the end), then with them left in place as garbage."""
    for cut in (True, False):
        for i in range(shrinker.current.arrays["cache_seqlens"].shape[0]):

            def shortened(seq_len: int, i: int = i, cut: bool = cut) -> Case:
                return _shorten(shrinker.current, i, seq_len, cut)

            lower(shrinker, int(shrinker.current.arrays["cache_seqlens"][i]), shortened, lowest=1)


def narrow_window(shrinker: Shrinker) -> None:
    """Drop the window (W = 0), else lower W by bisection (W >= 1)."""
    window = int(shrinker.current.params["sliding_window"])
    if window == 0 or shrinker.consider(shrinker.current.replace(sliding_window=0)):
        return
    lower(shrinker, window, lambda w: shrinker.current.replace(sliding_window=w), lowest=1)


def narrow_head_dim(shrinker: Shrinker) -> None:
    """Keep the first D' dims of q, k and v, by bisection (D' = 1 first)."""

    def narrowed(dims: int) -> Case:
        case = shrinker.current
        names = ("q", "k_cache", "v_cache")
        return case.replace({name: np.ascontiguousarray(case.arrays[name][..., :dims]) for name in names})

    lower(shrinker, int(shrinker.current.arrays["q"].shape[2]), narrowed, lowest=1, probes=(1,))


def repage(shrinker: Shrinker) -> None:
    """Move every request onto fresh pages of page size 1, else of the same page size (which
    only compacts the cache): see :func:`relayout`."""
    for page_size in dict.fromkeys((1, int(shrinker.current.arrays["k_cache"].shape[1]))):
        if shrinker.exhausted or shrinker.consider(relayout(shrinker.current, page_size)):
            return


def drop_unnamed_pages(shrinker: Shrinker) -> None:
    """Delete pages of the cache that no page_table entry names, neither a request's page nor
    garbage: all of them at once, else halves, down to single pages. The pages left keep their
    order and contents and are renumbered, so every entry still names the K/V it named;
    garbage past the cache keeps its distance past it, negative garbage stays.

    :func:`relayout` keeps page 0 as a poison page for the garbage it maps into the cache; once
    that garbage has gone (or names other pages), page 0 is one page more than the failure
    needs. No correct read touches an unnamed page, and a kernel that reads through a wild id
    still reads past the cache or before it (those ids move with its end)."""
    unnamed = _unnamed_pages(shrinker.current)
    if unnamed.size == 0 or shrinker.consider(_without_pages(shrinker.current, unnamed)):
        return
    delete_runs(
        shrinker,
        lambda case: int(_unnamed_pages(case).size),
        lambda case, keep: _without_pages(case, _unnamed_pages(case)[~keep]),
    )


def drop_garbage_columns(shrinker: Shrinker) -> None:
    """Delete page table columns past the longest request's pages (garbage in every row),
    halves first, down to single columns: a failure that needs one garbage entry keeps that
    one, next to the pages."""

    def columns(case: Case) -> int:
        used = pages_used(case.arrays["cache_seqlens"], case.arrays["k_cache"].shape[1])
        return int(case.arrays["page_table"].shape[1] - used.max(initial=0))

    def without(case: Case, keep: np.ndarray) -> Case:
        table = case.arrays["page_table"]
        keep_all = np.concatenate([np.ones(table.shape[1] - keep.size, dtype=bool), keep])
        return case.replace({"page_table": np.ascontiguousarray(table[:, keep_all])})

    delete_runs(shrinker, columns, without)


def zero_garbage(shrinker: Shrinker) -> None:
    """Set the garbage entries to 0 (the reserved page): all at once, then one at a time."""
    case = shrinker.current
    trailing = np.argwhere(_trailing(case) & (case.arrays["page_table"] != 0))
    for chunk in ([trailing], [row[None, :] for row in trailing]):
        for cells in chunk:
            if shrinker.exhausted or not len(cells):
                return
            table = shrinker.current.arrays["page_table"].copy()
            table[cells[:, 0], cells[:, 1]] = 0
            shrinker.consider(shrinker.current.replace({"page_table": table}))


# -- helpers --------------------------------------------------------------------------------
def _unnamed_pages(case: Case) -> np.ndarray:
    """Pages of the cache that no entry of page_table names (pages and garbage alike)."""
    num_pages = case.arrays["k_cache"].shape[0]
    table = case.arrays["page_table"]
    named = np.zeros(num_pages, dtype=bool)
    named[table[(table >= 0) & (table < num_pages)]] = True
    return np.flatnonzero(~named)


def _without_pages(case: Case, pages: np.ndarray) -> Case:
    """``case`` with the cache pages ``pages`` (named by no entry) deleted and the entries
    renumbered; an entry past the cache keeps its distance past it (at least one page stays:
    the contract wants num_pages >= 1, so the call for every page drops all but the last)."""
    num_pages = case.arrays["k_cache"].shape[0]
    keep = np.ones(num_pages, dtype=bool)
    keep[pages] = False
    if not keep.any():
        keep[-1] = True
    removed = num_pages - int(keep.sum())
    new_index = np.cumsum(keep) - 1
    table = case.arrays["page_table"].astype(np.int64)
    inside = (table >= 0) & (table < num_pages)
    moved = np.where(
        inside, new_index[np.clip(table, 0, num_pages - 1)], np.where(table >= num_pages, table - removed, table)
    )
    return case.replace(
        {
            "k_cache": np.ascontiguousarray(case.arrays["k_cache"][keep]),
            "v_cache": np.ascontiguousarray(case.arrays["v_cache"][keep]),
            "page_table": moved.astype(np.int32),
        }
    )


def _shorten(case: Case, i: int, seq_len: int, cut: bool) -> Case:
    """Request i with its first ``seq_len`` positions; with ``cut``, the columns of the pages
    it no longer needs are deleted from its row and 0 fills the row's end."""
    seqlens = case.arrays["cache_seqlens"].copy()
    page_size = case.arrays["k_cache"].shape[1]
    before, after = (int(n) for n in pages_used(np.array([seqlens[i], seq_len]), page_size))
    seqlens[i] = seq_len
    arrays = {"cache_seqlens": seqlens}
    if cut and after < before:
        table = case.arrays["page_table"].copy()
        row = np.concatenate([table[i, :after], table[i, before:], np.zeros(before - after, table.dtype)])
        table[i] = row
        arrays["page_table"] = table
    return case.replace(arrays)


def relayout(case: Case, page_size: int) -> Case:
    """The same requests on fresh pages of ``page_size``: page 0 is poison (NaN, as the
    strategy draws pages no request owns), request i's positions take the next
    ceil(L_i / page_size) pages in order, with the K/V they had (0 past L in its last page). Each row keeps
    its number of garbage entries and their values, except that garbage naming a page of the
    old cache becomes 0 (a poison page now) and garbage past the cache keeps its distance past
    it; rows are filled up to the widest with 0."""
    k_cache, v_cache = case.arrays["k_cache"], case.arrays["v_cache"]
    old_pages, old_size, num_kv_heads, head_dim = k_cache.shape
    page_table, seqlens = case.arrays["page_table"].astype(np.int64), case.arrays["cache_seqlens"]
    old_used = pages_used(seqlens, old_size)
    new_used = pages_used(seqlens, page_size)
    num_pages = 1 + int(new_used.sum())
    first = 1 + np.cumsum(new_used) - new_used  # first new page of each request
    garbage = [page_table[i, old_used[i] :] for i in range(page_table.shape[0])]
    width = max((int(new_used[i]) + g.size for i, g in enumerate(garbage)), default=0)
    new_table = np.zeros((page_table.shape[0], width), dtype=np.int64)
    caches = {name: np.zeros((num_pages, page_size, num_kv_heads, head_dim), np.float32) for name in "kv"}
    caches["k"][0] = caches["v"][0] = np.nan
    for i, seq_len in enumerate(seqlens.tolist()):
        positions = np.arange(seq_len)
        old_page = page_table[i, positions // old_size]
        new_page = first[i] + positions // page_size
        for name, old in (("k", k_cache), ("v", v_cache)):
            caches[name][new_page, positions % page_size] = old[old_page, positions % old_size]
        new_table[i, : new_used[i]] = first[i] + np.arange(new_used[i])
        moved = np.where(garbage[i] >= old_pages, garbage[i] - old_pages + num_pages, garbage[i])
        new_table[i, new_used[i] : new_used[i] + garbage[i].size] = np.where(
            (garbage[i] >= 0) & (garbage[i] < old_pages), 0, moved
        )
    return case.replace(
        {
            "k_cache": caches["k"],
            "v_cache": caches["v"],
            "page_table": np.clip(new_table, -(2**31), 2**31 - 1).astype(np.int32),
        }
    )
