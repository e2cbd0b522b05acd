"""moefuzz's own Triton paged token-slot allocator, and the bug model of the full last page.

Mirrors sglang ``python/sglang/srt/mem_cache/allocator.py`` (``alloc_extend_kernel``,
``alloc_decode_kernel``), one launch per call::

    extend  _alloc_extend_kernel  grid (B,)            program i: out_start = sum of the extend
                                                       lengths of requests < i, page_start = sum
                                                       of their new pages; then its new tokens,
                                                       BLOCK_TOKENS at a time: the rest of the
                                                       last prefix page (last_loc + 1 + k), then
                                                       free_pages[page_start + j] * page_size +
                                                       position % page_size
    decode  _alloc_decode_kernel  grid (cdiv(B, BLOCK_BATCH),)  every request extends by one:
                                                       it continues its last page, or takes the
                                                       next free page when that page is full
                                                       (exclusive cumsum of those requests)

The launcher takes the decode kernel when every request extends by exactly one token (as sglang's
scheduler calls ``alloc_decode`` for a decode batch), the extend kernel otherwise. Neither kernel
reads ``num_free``: like sglang's, they trust the caller to have checked the free list's length.

Both kernels decide what is left of a request's last prefix page in :func:`_room_on_last_page`.
In the ``bug-page-past-capacity`` model the decode kernel computes it as ``page_size -
prefix_len % page_size`` for a non-empty prefix, forgetting that a prefix ending on a page
boundary leaves no room (sglang's decode kernel has its own page arithmetic, apart from the
extend kernel's, and so does this one): such a request gets ``last_loc + 1``, the first slot of
the page after its last prefix page, which is one page past the cache when that last page is the
cache's final one (the off-by-one of the SGLang trtllm_mha page-table report, which crashed in
decode). The free page it should have taken goes unused. Extend batches are not affected.

Inputs and outputs (``ctx.inputs`` / ``ctx.outputs``; the contract is in ``contract.py``)::

    prefix_lens   [B] int64
    seq_lens      [B] int64
    last_loc      [B] int64
    free_pages    [>= pages needed] int64
    out_indices   [sum(seq_lens - prefix_lens)] int64

Importing this module imports triton: set ``TRITON_INTERPRET=1`` first to run on the CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import triton
import triton.language as tl

from moefuzz_targets.shared.triton_helpers import num_warps

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext


#: New tokens written per loop step of one request. sglang's part-2 loop uses 4096; 1024 keeps
#: the [1024] int64 tile small for 4 warps and costs the interpreter few steps per request.
BLOCK_TOKENS = 1024
#: Requests summed per loop step when a program adds up the requests before it, and requests per
#: decode program: the batch size is not a compile-time constant (sglang's is next_power_of_2(B)).
BLOCK_BATCH = 128


@triton.jit
def _room_on_last_page(prefix_len, page_size, FULL_PAGE_BUG: tl.constexpr):
    """Token slots left on the last prefix page: ceil(prefix / page_size) * page_size - prefix
    (0 for an empty prefix or one ending on a page boundary).

    With ``FULL_PAGE_BUG``: ``page_size - prefix % page_size`` for a non-empty prefix, which is
    page_size, not 0, when the prefix ends on a page boundary.
    """
    if FULL_PAGE_BUG:
        room = tl.where(prefix_len > 0, page_size - prefix_len % page_size, 0)
    else:
        room = (prefix_len + page_size - 1) // page_size * page_size - prefix_len
    return room


@triton.jit
def _new_pages(prefix_len, seq_len, page_size):
    """Free pages a request takes: ceil(seq / page_size) - ceil(prefix / page_size)."""
    return (seq_len + page_size - 1) // page_size - (prefix_len + page_size - 1) // page_size


@triton.jit(do_not_specialize=("page_size",))
def _alloc_extend_kernel(
    prefix_lens_ptr,
    seq_lens_ptr,
    last_loc_ptr,
    free_pages_ptr,
    out_ptr,
    page_size,
    BLOCK_B: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Program i: the new slots of request i (see the module doc)."""
    pid = tl.program_id(0)
    offs_b = tl.arange(0, BLOCK_B)
    out_start = tl.sum(tl.zeros([BLOCK_B], tl.int64), axis=0)  # new tokens of requests < pid
    page_start = tl.sum(tl.zeros([BLOCK_B], tl.int64), axis=0)  # new pages of requests < pid
    for b0 in range(0, pid, BLOCK_B):
        earlier = b0 + offs_b
        mask = earlier < pid
        pre = tl.load(prefix_lens_ptr + earlier, mask=mask, other=0)
        seq = tl.load(seq_lens_ptr + earlier, mask=mask, other=0)
        out_start += tl.sum(seq - pre, axis=0)
        page_start += tl.sum(_new_pages(pre, seq, page_size), axis=0)

    prefix_len = tl.load(prefix_lens_ptr + pid)
    seq_len = tl.load(seq_lens_ptr + pid)
    last_loc = tl.load(last_loc_ptr + pid)
    extend_len = (seq_len - prefix_len).to(tl.int32)  # < 2**24 (contract.MAX_NEW_TOKENS)
    prefix_pages = (prefix_len + page_size - 1) // page_size
    room = tl.minimum(_room_on_last_page(prefix_len, page_size, False), extend_len)
    for k0 in range(0, extend_len, BLOCK):
        k = k0 + tl.arange(0, BLOCK)  # k-th new token, at position prefix_len + k
        mask = k < extend_len
        position = prefix_len + k
        on_new_page = mask & (k >= room)
        j = position // page_size - prefix_pages  # the request's j-th new page
        page = tl.load(free_pages_ptr + page_start + j, mask=on_new_page, other=0)
        slot = tl.where(on_new_page, page * page_size + position % page_size, last_loc + 1 + k)
        tl.store(out_ptr + out_start + k, slot, mask=mask)


@triton.jit(do_not_specialize=("batch", "page_size"))
def _alloc_decode_kernel(
    seq_lens_ptr,
    last_loc_ptr,
    free_pages_ptr,
    out_ptr,
    batch,
    page_size,
    BLOCK_B: tl.constexpr,
    FULL_PAGE_BUG: tl.constexpr,
):
    """Program b: requests [b * BLOCK_B, (b + 1) * BLOCK_B), one new token each (prefix = seq - 1)."""
    pid = tl.program_id(0)
    offs_b = tl.arange(0, BLOCK_B)
    page_start = tl.sum(tl.zeros([BLOCK_B], tl.int64), axis=0)  # new pages of earlier programs
    for b0 in range(0, pid * BLOCK_B, BLOCK_B):
        seq = tl.load(seq_lens_ptr + b0 + offs_b)  # whole blocks before this program's
        page_start += tl.sum(_new_pages(seq - 1, seq, page_size), axis=0)

    request = pid * BLOCK_B + offs_b
    mask = request < batch
    seq_len = tl.load(seq_lens_ptr + request, mask=mask, other=1)
    last_loc = tl.load(last_loc_ptr + request, mask=mask, other=-1)
    prefix_len = seq_len - 1
    takes_page = _new_pages(prefix_len, seq_len, page_size)  # 1 when the last page is full, else 0
    index = page_start + tl.cumsum(takes_page, axis=0) - takes_page
    continues = _room_on_last_page(prefix_len, page_size, FULL_PAGE_BUG) > 0
    page = tl.load(free_pages_ptr + index, mask=mask & ~continues, other=0)
    slot = tl.where(continues, last_loc + 1, page * page_size)
    tl.store(out_ptr + request, slot, mask=mask)


def _launch(ctx: LaunchContext, full_page_bug: bool) -> None:
    prefix_lens = ctx.inputs["prefix_lens"].contiguous()
    seq_lens = ctx.inputs["seq_lens"].contiguous()
    last_loc = ctx.inputs["last_loc"].contiguous()
    free_pages = ctx.inputs["free_pages"].contiguous()
    out = ctx.outputs["out_indices"]
    page_size = int(ctx.params["page_size"])
    batch = prefix_lens.shape[0]
    if page_size < 1 or seq_lens.shape[0] != batch or last_loc.shape[0] != batch:
        raise ValueError(
            f"alloc_extend kernels take page_size >= 1 and [B] lengths, got (page_size, B, B_seq, B_last)="
            f"{(page_size, batch, seq_lens.shape[0], last_loc.shape[0])!r}"
        )
    if out.numel() == 0:  # no request gets a token (B = 0 included)
        return
    warps = num_warps(ctx)
    decode = bool(((seq_lens - prefix_lens) == 1).all())
    if decode:
        _alloc_decode_kernel[(triton.cdiv(batch, BLOCK_BATCH),)](
            seq_lens,
            last_loc,
            free_pages,
            out,
            batch,
            page_size,
            BLOCK_B=BLOCK_BATCH,
            FULL_PAGE_BUG=full_page_bug,
            num_warps=warps,
        )
        return
    _alloc_extend_kernel[(batch,)](
        prefix_lens,
        seq_lens,
        last_loc,
        free_pages,
        out,
        page_size,
        BLOCK_B=BLOCK_BATCH,
        BLOCK=BLOCK_TOKENS,
        num_warps=warps,
    )


def alloc_extend_triton(ctx: LaunchContext) -> None:
    """moefuzz's correct paged allocator: writes every entry of ``ctx.outputs["out_indices"]``.

    Reads ``prefix_lens``, ``seq_lens``, ``last_loc``, ``free_pages`` (all int64) and the param
    ``page_size``; honours ``ctx.config["num_warps"]``. A batch where every request extends by one
    token runs the decode kernel, any other the extend kernel.

    Raises:
        ValueError: page_size < 1 or lengths of different sizes (the other preconditions are
            ``contract.check``'s).
    """
    _launch(ctx, full_page_bug=False)


def alloc_extend_bug_page_past_capacity(ctx: LaunchContext) -> None:
    """Bug model of the full last page in decode: a prefix ending on a page boundary is taken to
    leave a whole page of room, so the request's new token goes to the page after its last prefix
    page (past the cache when that is the cache's final page) instead of the next free page.
    Batches that are not decode batches get the correct extend kernel.

    Same arguments and errors as :func:`alloc_extend_triton`.
    """
    _launch(ctx, full_page_bug=True)
