"""Paged KV cache strategies: a token-slot pool, a batch of requests, and an optional SWA pool.

The model is SGLang's (``mem_cache/allocator.py`` PagedTokenToKVPoolAllocator,
``mem_cache/memory_pool.py`` ReqToTokenPool, ``SWATokenToKVPoolAllocator``)::

    KV cache        num_pages pages of page_size token slots; slot = page * page_size + offset.
                    Page 0 is reserved (SGLang's padding page): never free, never owned.
    free_pages      [F] int64 pages nobody owns, in the allocator's order (not sorted in general).
    req_to_token    [num_reqs_in_pool, max_context] int32; row req_pool_indices[i] holds, at
                    position p < prefix_lens[i], the slot of token p of request i. Every other
                    cell is garbage: whatever an earlier request or nobody left there.
    batch           req_pool_indices [B] int64 (distinct, with gaps), prefix_lens [B] int64
                    (tokens cached), seq_lens [B] int64 (tokens after this extend, >= prefix).

Tokens of one request fill their pages in order: positions [j * page_size, (j + 1) * page_size)
share one page, so ``req_to_token[r, p] // page_size`` is the request's j-th page for every p
in page j. :meth:`PagedKVState.extended` performs the extend (SGLang ``alloc_extend``: finish
the last prefix page, then take whole pages from ``free_pages`` in order, request after request)
and returns the state every position < seq_len of which has a slot; a decode step is an extend
of one token.

The SWA pool (:class:`SWAPool`, hybrid sliding-window models) has its own pages of the same
page_size. After the extend, every full page of a request that holds one of its last
``sliding_window`` positions has a SWA page, and ``full_to_swa_index_mapping[full_slot]`` is
``swa_page * page_size + full_slot % page_size`` for the slots of those pages; every other entry
(page 0's included) is stale: a SWA slot once bound there, or 0.

Drawn on purpose: page sizes 1, 16, 64, 256 and odd ones; lengths on a page boundary, one before
and one after; empty requests and decode steps; one very long request; a cache with no free page
to spare; free lists in ascending, descending or shuffled order; garbage in unowned cells as
stale slots, wild ints (negative, past the cache) or zeros; windows smaller than, equal to and
larger than a page. Shrinking is not done here (see ``moefuzz.shrinking``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from moefuzz.strategies.routing import _choices, between

#: Page sizes: SGLang's and FlashInfer's usual ones, 1 (token-granular) and odd ones.
PAGE_SIZES = (1, 16, 64, 256, 3, 7, 33, 100)
#: How request lengths are drawn: near page boundaries, anywhere, one long request, decode steps.
LENGTH_SHAPES = ("boundary", "random", "one_long", "decode")
#: Order of the free-page list.
FREE_ORDERS = ("ascending", "descending", "shuffled")
#: Pages free beyond what the extend needs: none (a full cache after it), one, a few, many.
CAPACITY_SLACKS = ("exact", "one", "few", "many")
#: What cells no request owns hold (req_to_token and stale SWA mapping entries).
GARBAGE_MODES = ("stale", "wild", "zeros")
#: Sliding windows relative to page_size (``none``: no SWA pool).
WINDOWS = ("none", "below_page", "one_page", "above_page", "random")


@dataclass(frozen=True)
class SWAPool:
    """A sliding-window pool beside the full KV cache (see the module doc).

    Attributes:
        sliding_window: W, tokens: the last W positions of a request keep SWA slots.
        num_pages: pages of the SWA pool (page 0 reserved); SWA slots are < num_pages * page_size.
        full_to_swa_index_mapping: [full num_pages * page_size] int64, full slot -> SWA slot.
    """

    sliding_window: int
    num_pages: int
    full_to_swa_index_mapping: np.ndarray


@dataclass(frozen=True)
class PagedKVState:
    """A paged KV cache and a batch of requests on it (see the module doc for each array).

    Attributes:
        page_size: token slots per page (>= 1).
        num_pages: pages of the cache, page 0 included; every slot is < num_pages * page_size.
        req_to_token: [num_reqs_in_pool, max_context] int32.
        req_pool_indices: [B] int64 rows of req_to_token of the batch.
        prefix_lens: [B] int64 positions that have a slot.
        seq_lens: [B] int64 positions after the extend.
        free_pages: [F] int64 page ids in allocation order.
        swa: the SWA pool, or None.
        shape, free_order, garbage, window: the drawn structure (for reports and tests).
    """

    page_size: int
    num_pages: int
    req_to_token: np.ndarray
    req_pool_indices: np.ndarray
    prefix_lens: np.ndarray
    seq_lens: np.ndarray
    free_pages: np.ndarray
    swa: SWAPool | None = None
    shape: str = "random"
    free_order: str = "ascending"
    garbage: str = "stale"
    window: str = "none"

    @property
    def batch_size(self) -> int:
        return int(self.seq_lens.shape[0])

    @property
    def capacity(self) -> int:
        """Token slots of the cache: num_pages * page_size."""
        return self.num_pages * self.page_size

    def new_pages(self) -> np.ndarray:
        """[B] int64 pages each request takes from the free list in its extend:
        ceil(seq_len / page_size) - ceil(prefix_len / page_size)."""
        return _pages(self.seq_lens, self.page_size) - _pages(self.prefix_lens, self.page_size)

    def extended(self) -> PagedKVState:
        """The state after SGLang's ``alloc_extend``: every position < seq_len has a slot, the
        pages taken are gone from ``free_pages``, and ``prefix_lens`` equals ``seq_lens``.

        Request i takes ``new_pages()[i]`` pages from the free list, starting after the pages of
        requests 0..i-1; its new positions first finish its last prefix page.
        """
        req_to_token = self.req_to_token.copy()
        taken = 0
        for i, row in enumerate(self.req_pool_indices):
            prefix, seq = int(self.prefix_lens[i]), int(self.seq_lens[i])
            first_new_page = _ceil_div(prefix, self.page_size)
            count = int(_pages(seq, self.page_size) - first_new_page)
            pages = list(req_to_token[row, : first_new_page * self.page_size : self.page_size] // self.page_size)
            pages += list(self.free_pages[taken : taken + count])
            taken += count
            positions = np.arange(prefix, seq)
            req_to_token[row, prefix:seq] = (
                np.asarray(pages, dtype=np.int64)[positions // self.page_size] * (self.page_size)
                + positions % self.page_size
            )
        return replace(
            self, req_to_token=req_to_token, prefix_lens=self.seq_lens.copy(), free_pages=self.free_pages[taken:]
        )

    def page_table(self) -> np.ndarray:
        """[B, max_pages] int64 full-cache page of each request's j-th page after the extend, 0
        (the reserved page) past the request's pages; max_pages = ceil(max(seq_lens) / page_size)."""
        state = self.extended()
        num = _pages(state.seq_lens, self.page_size)
        table = np.zeros((state.batch_size, int(num.max(initial=0))), dtype=np.int64)
        for i, row in enumerate(state.req_pool_indices):
            table[i, : num[i]] = state.req_to_token[row, : num[i] * self.page_size : self.page_size] // self.page_size
        return table


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _pages(lengths: np.ndarray | int, page_size: int) -> np.ndarray:
    return -(-np.asarray(lengths, dtype=np.int64) // page_size)


def garbage_cells(rng: np.random.Generator, size: int, mode: str, high: int) -> np.ndarray:
    """``size`` int64 values of unowned cells: stale slots in [0, high), wild ints or zeros."""
    if mode == "zeros":
        return np.zeros(size, dtype=np.int64)
    stale = rng.integers(0, max(high, 1), size=size)
    if mode == "stale":
        return stale
    wild = rng.choice(np.array([-1, high, high + 1, 2**31 - 1, -(2**31)], dtype=np.int64), size=size)
    return np.where(rng.random(size) < 0.5, stale, wild)


def _window_size(rng: np.random.Generator, window: str, page_size: int, max_len: int) -> int:
    if window == "below_page":
        return max(1, page_size - 1 - int(rng.integers(0, max(page_size - 1, 1))))
    if window == "one_page":
        return page_size
    if window == "above_page":
        return page_size + 1 + int(rng.integers(0, 2 * page_size))
    return int(rng.integers(1, max(max_len, 1) + 2))


def _swa_pool(rng: np.random.Generator, state: PagedKVState, window: str, slack: int) -> SWAPool:
    after = state.extended()
    size = state.page_size
    sliding_window = _window_size(rng, window, size, int(after.seq_lens.max(initial=0)))
    full_pages = []  # full pages holding one of a request's last W positions
    for i, row in enumerate(after.req_pool_indices):
        seq = int(after.seq_lens[i])
        first = max(0, seq - sliding_window) // size
        full_pages += [int(after.req_to_token[row, j * size]) // size for j in range(first, _ceil_div(seq, size))]
    num_swa_pages = 1 + len(full_pages) + slack
    swa_pages = rng.permutation(np.arange(1, num_swa_pages))[: len(full_pages)]
    garbage = "stale" if state.garbage == "wild" else state.garbage
    mapping = garbage_cells(rng, state.capacity, garbage, num_swa_pages * size)
    offsets = np.arange(size)
    for full_page, swa_page in zip(full_pages, swa_pages, strict=True):
        mapping[full_page * size + offsets] = swa_page * size + offsets
    return SWAPool(sliding_window, num_swa_pages, np.ascontiguousarray(mapping, dtype=np.int64))


def build_paged_kv_state(
    *,
    page_size: int,
    prefix_lens: list[int],
    seq_lens: list[int],
    spare_pages: int,
    other_pages: int,
    pool_gaps: int,
    extra_context: int,
    free_order: str,
    garbage: str,
    window: str,
    shape: str = "random",
    seed: int,
) -> PagedKVState:
    """Build the state a drawn structure describes (deterministic in ``seed``).

    Args:
        page_size: >= 1.
        prefix_lens, seq_lens: per request, 0 <= prefix <= seq.
        spare_pages: free pages left after the extend.
        other_pages: pages owned by pool rows outside the batch (neither free nor the batch's).
        pool_gaps: pool rows no batch request uses (they hold garbage).
        extra_context: columns of req_to_token beyond max(seq_lens).
        free_order: one of :data:`FREE_ORDERS`.
        garbage: one of :data:`GARBAGE_MODES`.
        window: one of :data:`WINDOWS` (``none``: no SWA pool).
        shape: the length shape drawn (recorded only).
        seed: seeds the numpy generator that places pages and garbage.

    Raises:
        ValueError: lengths of different counts, a negative length, or prefix > seq.
    """
    prefix = np.asarray(prefix_lens, dtype=np.int64)
    seq = np.asarray(seq_lens, dtype=np.int64)
    if prefix.shape != seq.shape or (prefix < 0).any() or (prefix > seq).any():
        raise ValueError(f"prefix_lens={prefix_lens!r} and seq_lens={seq_lens!r} need 0 <= prefix <= seq")
    rng = np.random.default_rng(seed)
    batch = seq.shape[0]
    prefix_pages = _pages(prefix, page_size)
    new_pages = _pages(seq, page_size) - prefix_pages
    num_pages = 1 + int(prefix_pages.sum()) + other_pages + int(new_pages.sum()) + spare_pages
    pages = rng.permutation(np.arange(1, num_pages))
    owned, rest = pages[: prefix_pages.sum()], pages[prefix_pages.sum() :]
    free = rest[other_pages:]
    free = {"ascending": np.sort(free), "descending": np.sort(free)[::-1], "shuffled": free}[free_order]

    pool_rows = batch + pool_gaps
    max_context = int(seq.max(initial=0)) + extra_context
    capacity = num_pages * page_size
    req_to_token = garbage_cells(rng, pool_rows * max_context, garbage, capacity).reshape(pool_rows, max_context)
    req_pool_indices = np.sort(rng.permutation(pool_rows)[:batch])
    rng.shuffle(req_pool_indices)
    first = np.cumsum(prefix_pages) - prefix_pages
    for i, row in enumerate(req_pool_indices):
        positions = np.arange(prefix[i])
        req_to_token[row, : prefix[i]] = owned[first[i] + positions // page_size] * page_size + positions % page_size
    state = PagedKVState(
        page_size=page_size,
        num_pages=num_pages,
        req_to_token=np.ascontiguousarray(req_to_token.astype(np.int32)),
        req_pool_indices=req_pool_indices.astype(np.int64),
        prefix_lens=prefix,
        seq_lens=seq,
        free_pages=np.ascontiguousarray(free, dtype=np.int64),
        shape=shape,
        free_order=free_order,
        garbage=garbage,
        window=window,
    )
    if window == "none":
        return state
    return replace(state, swa=_swa_pool(rng, state, window, slack=int(rng.integers(0, 3))))


def _boundary_length(draw: st.DrawFn, page_size: int, high: int) -> int:
    pages = draw(between(0, max(high // page_size, 0)), label="pages")
    return min(high, max(0, pages * page_size + draw(_choices((-1, 0, 1)), label="boundary_offset")))


@st.composite
def paged_kv_states(
    draw: st.DrawFn,
    *,
    max_tokens: int = 16384,
    max_batch: int = 16,
    page_sizes: tuple[int, ...] = PAGE_SIZES,
    swa: bool = True,
) -> PagedKVState:
    """Paged KV cache states with a batch of requests to extend (see the module doc).

    Args:
        max_tokens: bound on the sum of seq_lens (the tokens the cache holds for the batch).
        max_batch: bound on B (B = 0 included).
        page_sizes: page sizes to draw from.
        swa: draw a SWA pool (with a window from :data:`WINDOWS`) some of the time.

    Generates:
        :class:`PagedKVState` values. Lengths follow one of :data:`LENGTH_SHAPES`: ``boundary``
        puts prefix and seq lengths on a page boundary or one off it, ``decode`` extends every
        request by one token, ``one_long`` gives one request most of ``max_tokens``; empty
        requests (seq_len 0) and empty extends occur in every shape. Shrinks towards fewer and
        shorter requests, the first page size, ascending free lists and no SWA pool.
    """
    page_size = draw(_choices(page_sizes), label="page_size")
    batch = draw(between(0, max_batch), label="batch")
    shape = draw(_choices(LENGTH_SHAPES), label="lengths")
    budget = max_tokens
    prefix_lens, seq_lens = [], []
    long_one = draw(between(0, max(batch - 1, 0)), label="long_request") if shape == "one_long" and batch else -1
    short = max(1, max_tokens // max(batch, 1)) if long_one < 0 else max(1, max_tokens // (4 * batch))
    for i in range(batch):
        share = min(budget, short) if i != long_one else max(0, budget - short * (batch - 1 - i))
        if shape == "boundary":
            seq = _boundary_length(draw, page_size, share)
            prefix = min(seq, _boundary_length(draw, page_size, seq))
        elif shape == "decode":
            seq = draw(between(min(1, share), share), label="seq_len")
            prefix = max(seq - 1, 0)
        else:
            seq = draw(between(0, share), label="seq_len")
            prefix = draw(between(0, seq), label="prefix_len")
        budget -= seq
        prefix_lens.append(prefix)
        seq_lens.append(seq)
    slack = draw(_choices(CAPACITY_SLACKS), label="capacity_slack")
    spare = {"exact": 0, "one": 1, "few": 3, "many": 64}[slack]
    return build_paged_kv_state(
        page_size=page_size,
        prefix_lens=prefix_lens,
        seq_lens=seq_lens,
        spare_pages=spare,
        other_pages=draw(between(0, 4), label="other_pages"),
        pool_gaps=draw(between(0, 4), label="pool_gaps"),
        extra_context=draw(_choices((0, 1, page_size, 2 * page_size + 1)), label="extra_context"),
        free_order=draw(_choices(FREE_ORDERS), label="free_order"),
        garbage=draw(_choices(GARBAGE_MODES), label="garbage"),
        window=draw(_choices(WINDOWS), label="window") if swa else "none",
        shape=shape,
        seed=draw(st.integers(0, 2**32 - 1), label="seed"),
    )


def power_of_two(value: int) -> bool:
    """Whether ``value`` is a power of two (1 included): the page sizes many kernels take."""
    return value >= 1 and value & (value - 1) == 0
