"""Contract of alloc_extend: SGLang's paged token-slot allocator, for an extend or a decode step.

Source: sglang ``python/sglang/srt/mem_cache/allocator.py``, ``PagedTokenToKVPoolAllocator``
(``alloc_extend`` launching ``alloc_extend_kernel``, ``alloc_decode`` launching
``alloc_decode_kernel``). A decode step is the extend of one token per request; it is a case shape
of this target (every ``seq_lens[i] = prefix_lens[i] + 1``), not a second contract.

Input (a :class:`~moefuzz.model.case.Case`)::

    prefix_lens   [B] int64   tokens of request i that already have slots, >= 0
    seq_lens      [B] int64   tokens of request i after the extend, >= prefix_lens[i]
    last_loc      [B] int64   slot of request i's last prefix token
                              (req_to_token[req_pool_indices[i], prefix_lens[i] - 1]), -1 when
                              prefix_lens[i] = 0
    free_pages    [num_free + tail] int64   the free list: num_free page ids in allocation
                              order, then a tail of POISON_PAGE that no correct kernel reads
    page_size     int >= 1    token slots per page; slot = page * page_size + offset
    num_pages     int         pages of the KV cache, page 0 included (reserved, never free):
                              every slot is < num_pages * page_size (the capacity). sglang's
                              allocator counts without page 0 (its ``num_pages = size //
                              page_size``, free list ``arange(1, num_pages + 1)``, a buffer of
                              ``size + page_size`` slots); this num_pages is the buffer's
    num_free      int         valid entries of free_pages

Output::

    out_indices   [sum(seq_lens - prefix_lens)] int64

For each request in batch order, its ``seq_lens[i] - prefix_lens[i]`` new slots: first the rest
of its last prefix page (``last_loc + 1, last_loc + 2, ...`` up to the page's end), then whole
pages taken from ``free_pages`` in order, then a partial page; request i's pages start after the
``ceil(seq/page_size) - ceil(prefix/page_size)`` pages each of requests 0..i-1 took.

Properties checked on every run, before the comparison with the oracle (each a mismatch of
``out_indices`` at the first entry that breaks it and differs from the oracle's):

1. no slot comes from a page id past the free list (``POISON_PAGE``: the kernel read
   ``free_pages[k]`` for some ``k >= num_free``);
2. every slot is in the cache: ``0 <= slot < num_pages * page_size``;
3. every slot is free for the request: on a page of the free list, or on its own last prefix
   page after ``last_loc``; never on page 0 nor on a page a prefix owns;
4. no slot is handed out twice.

The precondition (``check``) refuses a batch that needs more pages than are free: SGLang's
``alloc_extend`` returns ``None`` then (it compares ``get_num_new_pages`` with
``len(free_pages)`` right after the launch and throws the output away), so no output is
specified. SGLang's debug mode asserts ``(last_loc + 1) % page_size == prefix_lens % page_size``;
``check`` requires it too.

The bug this target was built for (the SGLang trtllm_mha page-table report, see
the report "debug: trtllm_mha page_table bounds-check"): an allocator emitting a slot whose
page index equals the number of pages the cache holds, one page past its end.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.execute.poison import INT_POISON
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch, compare_exact
from moefuzz.model.target import OutputSpec
from moefuzz.model.validation import require_array, require_int_param

#: Page id filling the tail of ``free_pages`` past ``num_free``: a slot on this page was built
#: from an entry past the free list. Far above every real page id, and a round number to read.
POISON_PAGE = 999_999_999
#: What the engine fills output buffers with: an entry that still holds it was never written.
UNWRITTEN = INT_POISON
#: Bounds the contract covers (slots of POISON_PAGE must fit an int64 with room to spare).
MAX_PAGE_SIZE = 4096
MAX_PAGES = 1 << 24
MAX_BATCH = 65536
MAX_NEW_TOKENS = 1 << 24

ARRAYS = ("prefix_lens", "seq_lens", "last_loc", "free_pages")


def pages_of(lengths: np.ndarray, page_size: int) -> np.ndarray:
    """[B] int64: pages holding ``lengths`` tokens, ceil(length / page_size)."""
    return -(-np.asarray(lengths, dtype=np.int64) // page_size)


def new_pages(case: Case) -> np.ndarray:
    """[B] int64: free pages request i takes, ceil(seq/page_size) - ceil(prefix/page_size)."""
    page_size = int(case.params["page_size"])
    return pages_of(case.arrays["seq_lens"], page_size) - pages_of(case.arrays["prefix_lens"], page_size)


def valid_free_pages(case: Case) -> np.ndarray:
    """[num_free] int64: the free list without its poisoned tail."""
    return case.arrays["free_pages"][: int(case.params["num_free"])]


def last_pages(case: Case) -> np.ndarray:
    """[B] int64: page of each request's last prefix token, -1 for an empty prefix."""
    last_loc = case.arrays["last_loc"]
    return np.where(last_loc >= 0, last_loc // int(case.params["page_size"]), -1)


# -- preconditions ------------------------------------------------------------------------------
def _check_shapes(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    prefix, seq, last_loc, free = (require_array(case, name, np.int64, 1) for name in ARRAYS)
    batch = prefix.shape[0]
    if seq.shape[0] != batch or last_loc.shape[0] != batch:
        raise CaseError(
            f"(prefix_lens, seq_lens, last_loc) lengths={(batch, seq.shape[0], last_loc.shape[0])!r} differ"
        )
    if batch > MAX_BATCH:
        raise CaseError(f"batch B={batch!r} above {MAX_BATCH}")
    bad = np.flatnonzero((prefix < 0) | (seq < prefix))
    if bad.size:
        i = int(bad[0])
        raise CaseError(
            f"request {i}: (prefix_len, seq_len)={(int(prefix[i]), int(seq[i]))!r} needs 0 <= prefix <= seq"
        )
    if int((seq - prefix).sum()) > MAX_NEW_TOKENS:
        raise CaseError(f"new tokens={int((seq - prefix).sum())!r} above {MAX_NEW_TOKENS}")
    return prefix, seq, last_loc, free


def _check_free_list(case: Case, free: np.ndarray, num_pages: int) -> None:
    num_free = require_int_param(case, "num_free", 0, free.shape[0] - 1)
    valid, tail = free[:num_free], free[num_free:]
    if (tail != POISON_PAGE).any():
        raise CaseError(f"free_pages tail={tail.tolist()!r} past num_free={num_free!r} is not all {POISON_PAGE}")
    bad = np.flatnonzero((valid < 1) | (valid >= num_pages))
    if bad.size:
        k = int(bad[0])
        raise CaseError(f"free_pages[{k}]={int(valid[k])!r} outside 1..num_pages-1={num_pages - 1!r}")
    pages, counts = np.unique(valid, return_counts=True)
    if (counts > 1).any():
        raise CaseError(f"free_pages lists page={int(pages[counts > 1][0])!r} twice")


def _check_last_loc(case: Case, prefix: np.ndarray, last_loc: np.ndarray, page_size: int, num_pages: int) -> None:
    for i in range(prefix.shape[0]):
        pre, loc = int(prefix[i]), int(last_loc[i])
        if pre == 0 and loc != -1:
            raise CaseError(f"request {i}: last_loc={loc!r} with an empty prefix (must be -1)")
        if pre > 0 and not page_size <= loc < num_pages * page_size:
            raise CaseError(f"request {i}: last_loc={loc!r} outside pages 1..{num_pages - 1} (page_size={page_size})")
        if pre > 0 and (loc + 1) % page_size != pre % page_size:
            raise CaseError(
                f"request {i}: last_loc={loc!r} is not at offset (prefix_len - 1) % page_size of its page "
                f"(prefix_len={pre}, page_size={page_size})"
            )
    last = last_pages(case)
    owned_free = np.flatnonzero(np.isin(last, valid_free_pages(case)))
    if owned_free.size:
        i = int(owned_free[0])
        raise CaseError(f"request {i}: last prefix page={int(last[i])!r} is on the free list")
    partial = np.flatnonzero((prefix > 0) & (prefix % page_size != 0))
    for i in partial.tolist():  # a partly filled last page is the request's own (SGLang shares whole pages only)
        others = np.flatnonzero(last == last[i])
        if others.size > 1:
            raise CaseError(
                f"requests {others.tolist()!r} share last prefix page={int(last[i])!r}, partly filled by request {i}"
            )


def check(case: Case) -> None:
    """Raise :class:`CaseError` when ``case`` violates the contract's preconditions."""
    prefix, _, last_loc, free = _check_shapes(case)
    page_size = require_int_param(case, "page_size", 1, MAX_PAGE_SIZE)
    num_pages = require_int_param(case, "num_pages", 1, MAX_PAGES)
    _check_free_list(case, free, num_pages)
    _check_last_loc(case, prefix, last_loc, page_size, num_pages)
    num_free = int(case.params["num_free"])
    needed = int(new_pages(case).sum())
    if needed > num_free:
        raise CaseError(f"the batch needs {needed} new pages, more than num_free={num_free!r}")
    distinct_last = np.unique(last_pages(case)[prefix > 0]).size
    least = 1 + num_free + max(distinct_last, int(pages_of(prefix, page_size).max(initial=0)))
    if num_pages < least:
        raise CaseError(
            f"num_pages={num_pages!r} cannot hold page 0, {num_free} free pages and the prefixes' pages "
            f"(at least {least})"
        )


def output_specs(case: Case) -> dict[str, OutputSpec]:
    """Shape and dtype of each output buffer of ``case``."""
    new_tokens = int((case.arrays["seq_lens"] - case.arrays["prefix_lens"]).sum())
    return {"out_indices": OutputSpec((new_tokens,), "int64")}


# -- properties and comparison ------------------------------------------------------------------
def owner_of_entries(case: Case) -> np.ndarray:
    """[sum(seq_lens - prefix_lens)] int64: the request each entry of out_indices belongs to."""
    extend = case.arrays["seq_lens"] - case.arrays["prefix_lens"]
    return np.repeat(np.arange(extend.shape[0], dtype=np.int64), extend)


def allowed_for_entries(case: Case, slots: np.ndarray) -> np.ndarray:
    """[N] bool: slot ``slots[e]`` is free for the request of entry e: on a page of the valid free
    list, or on that request's own last prefix page after its ``last_loc``."""
    page_size = int(case.params["page_size"])
    owner = owner_of_entries(case)
    last_loc = case.arrays["last_loc"][owner]
    pages = np.floor_divide(slots, page_size)
    own_tail = (last_loc >= 0) & (pages == last_loc // page_size) & (slots > last_loc)
    return np.isin(pages, valid_free_pages(case)) | own_tail


def property_violations(case: Case, slots: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Per property of the module doc, in its order: (name, [N] bool entries that break it).

    Entries still holding the engine's output poison (never written) break none of them: the
    comparison with the oracle reports those.
    """
    page_size = int(case.params["page_size"])
    capacity = int(case.params["num_pages"]) * page_size
    written = slots != UNWRITTEN
    pages = np.floor_divide(slots, page_size)
    past_list = written & (pages == POISON_PAGE)
    outside = written & ~past_list & ((slots < 0) | (slots >= capacity))
    taken = written & ~past_list & ~outside & ~allowed_for_entries(case, slots)
    order = np.argsort(slots, kind="stable")
    same_as_next = slots[order[1:]] == slots[order[:-1]]
    repeated = np.zeros(slots.shape, dtype=bool)  # every holder of a shared slot, the first included
    repeated[order[1:][same_as_next]] = True
    repeated[order[:-1][same_as_next]] = True
    return [
        ("read past the free list", past_list),
        ("slot past the cache", outside),
        ("slot not free", taken),
        ("slot handed out twice", written & repeated),
    ]


def compare(case: Case, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """The first entry of out_indices that breaks a property of the module doc (in its order;
    among the entries that break it, the first that also differs from the oracle's, so that a
    slot handed out twice is reported at the holder that should not have it), else the first
    entry that differs from the oracle's."""
    tri_out, ref_out = np.asarray(tri["out_indices"]), np.asarray(ref["out_indices"])
    if tri_out.shape != ref_out.shape:
        return compare_exact("out_indices", tri_out, ref_out)
    for _, broken in property_violations(case, tri_out):
        bad = np.flatnonzero(broken)
        if bad.size:
            wrong = np.flatnonzero(broken & (tri_out != ref_out))
            e = int(wrong[0] if wrong.size else bad[0])
            return Mismatch("out_indices", e, int(tri_out[e]), int(ref_out[e]), int(bad.size), int(tri_out.size))
    return compare_exact("out_indices", tri_out, ref_out)


# -- explanations ----------------------------------------------------------------------------------
def _taker_of_free_entry(case: Case, k: int) -> int | None:
    """The request that takes free_pages[k] in this extend, or None."""
    ends = np.cumsum(new_pages(case))
    request = int(np.searchsorted(ends, k, side="right"))
    return request if request < ends.shape[0] else None


def describe_slot(case: Case, slot: int, request: int) -> str:
    """``slot S = page P of page_size Z, <where it comes from>``, as seen by request ``request``."""
    page_size = int(case.params["page_size"])
    num_pages = int(case.params["num_pages"])
    if slot == UNWRITTEN:
        return f"nothing: the entry was never written (it still holds the poison {UNWRITTEN})"
    page = slot // page_size
    head = f"slot {slot} = page {page} of page_size {page_size}"
    if page == POISON_PAGE:
        return f"{head}, a page id from free_pages past the free list (num_free={int(case.params['num_free'])})"
    if slot < 0:
        return f"slot {slot}, negative"
    if page >= num_pages:
        return f"{head}, past num_pages={num_pages}"
    if page == 0:
        return f"{head}, the reserved page"
    last = last_pages(case)
    if page == last[request]:
        loc = int(case.arrays["last_loc"][request])
        return f"{head}, its own last prefix page" + (", a slot its prefix holds" if slot <= loc else "")
    free = valid_free_pages(case)
    hits = np.flatnonzero(free == page)
    if hits.size:
        k = int(hits[0])
        taker = _taker_of_free_entry(case, k)
        who = "no request takes in this extend" if taker is None else f"request {taker} takes"
        return f"{head} = free_pages[{k}], which {who}"
    others = np.flatnonzero(last == page)
    if others.size:
        return f"{head}, request {int(others[0])}'s last prefix page"
    return f"{head}, neither free nor its own last prefix page (a prefix in or outside the batch owns it)"


def describe_request(case: Case, request: int) -> str:
    """``request r: prefix_len=.., seq_len=.., last_loc=.. (page p, how full)``."""
    page_size = int(case.params["page_size"])
    pre = int(case.arrays["prefix_lens"][request])
    seq = int(case.arrays["seq_lens"][request])
    loc = int(case.arrays["last_loc"][request])
    text = f"request {request}: prefix_len={pre}, seq_len={seq}, last_loc={loc}"
    if pre == 0:
        return text + " (empty prefix)"
    page = loc // page_size
    used = pre % page_size or page_size
    where = ", the last page of the cache" if page == int(case.params["num_pages"]) - 1 else ""
    full = "full: the prefix ends on a page boundary" if used == page_size else f"{used} of {page_size} slots used"
    return text + f" (page {page}{where}, {full})"


def explain(case: Case, mismatch: Mismatch) -> str:
    """Two or three lines: the request and position of the entry, the slot it got and the slot the
    contract gives (each with its page and where that page comes from), and the request's prefix."""
    if mismatch.index < 0:
        return f"out_indices has {mismatch.tri} entries, the contract wants {mismatch.ref}"
    entry = mismatch.index
    request = int(owner_of_entries(case)[entry])
    extend = case.arrays["seq_lens"] - case.arrays["prefix_lens"]
    k = entry - int(extend[:request].sum())
    position = int(case.arrays["prefix_lens"][request]) + k
    lines = [
        f"request {request} got {describe_slot(case, int(mismatch.tri), request)}, "
        f"for position {position} (new token {k} of {int(extend[request])})",
        f"the contract gives {describe_slot(case, int(mismatch.ref), request)}",
        describe_request(case, request),
    ]
    return "\n".join(lines)
