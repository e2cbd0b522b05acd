"""moefuzz's HiCache write-through schedule on two CUDA streams, and its two missing-fence bugs.

Mirrors SGLang's overlap scheduler with write-through HiCache (``managers/scheduler.py``,
``managers/cache_controller.py``, the fences of sgl-project/sglang#20611). For each batch b the
CPU enqueues, without ever waiting for the device in between::

    forward stream  [wait copy_done(b-1)]   _forward_kernel(b)              record forward_done(b)
    write stream    [wait forward_done(b)]  copy of b's pages to the host   record copy_done(b)

``bug-missing-wait-forward`` drops the write stream's wait (the copy may read slots before the
forward wrote them: the race of #20611's fix 1); ``bug-missing-wait-write`` drops the forward
stream's wait (the next forward may overwrite slots the copy has not read yet: fix 2). Both side
streams first wait for the current stream, which zeroed the pool and holds the inputs.

Launches::

    _forward_kernel       grid (P, cdiv(S, ROWS), cdiv(D, BLOCK_E))  program: ROWS slots x BLOCK_E
                          elements of batch b's j-th page, the first page_fills[b, j] slots: store
                          -1; kernel_length rounds of {v = volatile load; store v - 1}; store
                          slot_value (contract.py)
    _gather_pages_kernel  same grid, copy_method "sm_kernel": staging[j] = pool page of (b, j)

then, on the write stream, ``copy_engine`` does one ``host[b, j].copy_(pool_page, non_blocking=True)``
(a cudaMemcpyAsync into pinned memory) per page, ``sm_kernel`` one copy of the staging buffer.

The spin is what opens the race window: each round is a global load that depends on the round's
previous store, so rounds cannot overlap or be optimised away (volatile loads, side-effecting
stores), and a round costs about one L2 round trip. Estimated, not measured: 0.15-0.3 us per round
on an H100, so the strategy's longest forward (4096 rounds) runs about 0.6-1.2 ms;
``tests/targets/stream_overlap/test_stream_overlap_gpu.py`` measures it. While a forward spins its
slots read as negative markers, so a copy that overlaps it can never read the right value by luck.

Without CUDA there are no streams: the same launches run in order on the CPU (Triton
interpreter), so the correct kernel and both bug models equal the oracle there. The races need a
GPU.

Integer sizes are not specialised (``do_not_specialize``): one compiled variant per kernel and
num_warps. Importing this module imports triton: set ``TRITON_INTERPRET=1`` first on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl

from moefuzz_targets.shared.triton_helpers import num_warps
from moefuzz_targets.stream_overlap.layout import COPY_METHODS, OUTPUT, UNCOPIED

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext

#: Slots per program: a page of 16 (SGLang's FA3 default is 64) takes one program per 64 elements.
ROWS = 16
#: Elements per program row; a 1024-element slot spans 16 programs.
BLOCK_E = 64


@triton.jit(do_not_specialize=["batch", "kernel_length", "pages_per_batch", "num_slots", "page_size", "slot_size"])
def _forward_kernel(
    pool_ptr,  # [num_slots, D] int32
    pages_ptr,  # [B, P] int32
    fills_ptr,  # [B, P] int32
    batch,
    kernel_length,
    pages_per_batch,
    num_slots,
    page_size,
    slot_size,
    ROWS: tl.constexpr,
    BLOCK_E: tl.constexpr,
):
    """Batch ``batch``'s forward on its page j = program_id(0): spin, then write slot values."""
    j = tl.program_id(0)
    offsets = tl.program_id(1) * ROWS + tl.arange(0, ROWS)  # slot offsets inside the page
    elements = tl.program_id(2) * BLOCK_E + tl.arange(0, BLOCK_E)
    page = tl.load(pages_ptr + batch * pages_per_batch + j)
    fill = tl.load(fills_ptr + batch * pages_per_batch + j)
    fill = tl.where(page >= 0, fill, 0)  # the contract's fill of a -1 page is 0 already
    slots = page.to(tl.int64) * page_size + offsets  # [ROWS] int64
    mask = (offsets < fill)[:, None] & (elements < slot_size)[None, :]
    ptrs = pool_ptr + slots[:, None] * slot_size + elements[None, :]
    tl.store(ptrs, tl.full([ROWS, BLOCK_E], -1, tl.int32), mask=mask)
    for _ in range(kernel_length):
        marker = tl.load(ptrs, mask=mask, other=0, volatile=True)
        tl.store(ptrs, marker - 1, mask=mask)
    value = (batch * num_slots + slots)[:, None] * slot_size + elements[None, :] + 1
    tl.store(ptrs, value.to(tl.int32), mask=mask)


@triton.jit(do_not_specialize=["batch", "pages_per_batch", "page_size", "slot_size"])
def _gather_pages_kernel(
    pool_ptr,  # [num_slots, D] int32
    pages_ptr,  # [B, P] int32
    staging_ptr,  # [P, S, D] int32
    batch,
    pages_per_batch,
    page_size,
    slot_size,
    ROWS: tl.constexpr,
    BLOCK_E: tl.constexpr,
):
    """The SM copy: staging[j] = the whole pool page batch ``batch`` lists at j (skips -1)."""
    j = tl.program_id(0)
    offsets = tl.program_id(1) * ROWS + tl.arange(0, ROWS)
    elements = tl.program_id(2) * BLOCK_E + tl.arange(0, BLOCK_E)
    page = tl.load(pages_ptr + batch * pages_per_batch + j)
    rows_copied = tl.where(page >= 0, page_size, 0)
    mask = (offsets < rows_copied)[:, None] & (elements < slot_size)[None, :]
    rows = (page.to(tl.int64) * page_size + offsets)[:, None] * slot_size + elements[None, :]
    values = tl.load(pool_ptr + rows, mask=mask)
    staged = (j.to(tl.int64) * page_size + offsets)[:, None] * slot_size + elements[None, :]
    tl.store(staging_ptr + staged, values, mask=mask)


class _Lane:
    """One stream of the schedule: a new CUDA stream, or on the CPU none (work runs in order).

    A CUDA lane starts by waiting for the current stream, where the pool was zeroed and the
    inputs were copied in.
    """

    def __init__(self, device: torch.device) -> None:
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        if self.stream is not None:
            self.stream.wait_stream(torch.cuda.current_stream(device))

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Make this lane the current stream (launches and allocations go to it)."""
        with torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext():
            yield

    def record(self) -> torch.cuda.Event | None:
        """An event at the lane's current end (None on the CPU)."""
        if self.stream is None:
            return None
        event = torch.cuda.Event()
        event.record(self.stream)
        return event

    def wait(self, event: torch.cuda.Event | None) -> None:
        """Make the lane's later work wait for ``event`` (a GPU-side fence; the CPU goes on)."""
        if self.stream is not None and event is not None:
            self.stream.wait_event(event)

    def uses(self, *tensors: torch.Tensor) -> None:
        """Tell the caching allocator these tensors (allocated elsewhere) are used on this lane."""
        if self.stream is not None:
            for tensor in tensors:
                tensor.record_stream(self.stream)


def _copy_pages(
    ctx: LaunchContext,
    pool: torch.Tensor,
    pages: torch.Tensor,
    host_batch: torch.Tensor,
    batch: int,
    row: list[int],
    num_warps: int,
) -> None:
    """Enqueue batch ``batch``'s copy of its pages (``row``, row ``batch`` of ``pages`` [B, P] on
    the host) into ``host_batch`` [P, S, D] on the current stream, by ``ctx.params["copy_method"]``."""
    per_batch, page_size, slot_size = host_batch.shape
    if ctx.params["copy_method"] == "copy_engine":
        pool_pages = pool.view(-1, page_size, slot_size)
        for j, page in enumerate(row):
            if page >= 0:
                host_batch[j].copy_(pool_pages[page], non_blocking=True)
        return
    # Allocated and poisoned on this stream, by a device-side fill: ctx.scratch may fill from the
    # host, and a pageable host-to-device copy would make the CPU wait for this stream's fences.
    staging = ctx.scratch(tuple(host_batch.shape), torch.int32)
    grid = (per_batch, triton.cdiv(page_size, ROWS), triton.cdiv(slot_size, BLOCK_E))
    _gather_pages_kernel[grid](
        pool,
        pages,
        staging,
        batch,
        per_batch,
        page_size,
        slot_size,
        ROWS=ROWS,
        BLOCK_E=BLOCK_E,
        num_warps=num_warps,
    )
    host_batch.copy_(staging, non_blocking=True)


def _run_schedule(ctx: LaunchContext, *, copy_waits_for_forward: bool, forward_waits_for_copy: bool) -> None:
    """Enqueue every batch's forward and copy, fenced as asked; wait for the device; write
    ``host_pages``."""
    method = ctx.params["copy_method"]
    if method not in COPY_METHODS:
        raise ValueError(f"stream_overlap kernels take copy_method in {COPY_METHODS!r}, got copy_method={method!r}")
    pages = ctx.inputs["batch_pages"].contiguous()
    fills = ctx.inputs["page_fills"].contiguous()
    rows = pages.cpu().tolist()  # page ids on the host, read once before the schedule starts
    lengths = ctx.inputs["kernel_lengths"].cpu().tolist()
    num_pages, page_size, slot_size = (int(ctx.params[k]) for k in ("num_pages", "page_size", "slot_size"))
    warps = num_warps(ctx)
    per_batch = pages.shape[1]
    on_cuda = ctx.device.type == "cuda"

    pool = torch.zeros((num_pages * page_size, slot_size), dtype=torch.int32, device=ctx.device)
    out = ctx.outputs[OUTPUT]  # [B, P, S, D]
    host = torch.full(out.shape, UNCOPIED, dtype=torch.int32, pin_memory=on_cuda)
    forward, write = _Lane(ctx.device), _Lane(ctx.device)
    forward.uses(pool, pages, fills)
    write.uses(pool, pages)
    grid = (per_batch, triton.cdiv(page_size, ROWS), triton.cdiv(slot_size, BLOCK_E))
    copy_done = None
    for batch, row in enumerate(rows):
        with forward.active():
            if forward_waits_for_copy:
                forward.wait(copy_done)
            _forward_kernel[grid](
                pool,
                pages,
                fills,
                batch,
                int(lengths[batch]),
                per_batch,
                num_pages * page_size,
                page_size,
                slot_size,
                ROWS=ROWS,
                BLOCK_E=BLOCK_E,
                num_warps=warps,
            )
            forward_done = forward.record()
        with write.active():
            if copy_waits_for_forward:
                write.wait(forward_done)
            _copy_pages(ctx, pool, pages, host[batch], batch, row, warps)
            copy_done = write.record()
    if on_cuda:
        torch.cuda.synchronize(ctx.device)  # the host buffer is final only now
    out.copy_(host)


def stream_overlap_triton(ctx: LaunchContext) -> None:
    """moefuzz's correct write-through schedule: each copy waits for its forward, each forward
    for the previous copy. Writes every row of ``ctx.outputs["host_pages"]`` [B, P, S, D] int32
    (rows of -1 pages hold the poison).

    Reads ``batch_pages`` [B, P] int32, ``page_fills`` [B, P] int32, ``kernel_lengths`` [B]
    int32 and the params ``num_pages``, ``page_size``, ``slot_size``, ``copy_method``; honours
    ``ctx.config["num_warps"]``. On a CUDA device it runs on two new streams and synchronizes
    before returning; on the CPU it runs the same launches in order.

    Raises:
        ValueError: an unknown copy_method (the other preconditions are ``contract.check``'s).
    """
    _run_schedule(ctx, copy_waits_for_forward=True, forward_waits_for_copy=True)


def stream_overlap_bug_missing_wait_forward(ctx: LaunchContext) -> None:
    """Bug model of sgl-project/sglang#20611's first race: the write stream does not wait for the
    forward stream, so a copy may read slots before (or while) its forward writes them.

    Same arguments and errors as :func:`stream_overlap_triton`.
    """
    _run_schedule(ctx, copy_waits_for_forward=False, forward_waits_for_copy=True)


def stream_overlap_bug_missing_wait_write(ctx: LaunchContext) -> None:
    """Bug model of sgl-project/sglang#20611's second race: the next forward does not wait for
    the previous copy, so it may overwrite slots the copy has not read yet.

    Same arguments and errors as :func:`stream_overlap_triton`.
    """
    _run_schedule(ctx, copy_waits_for_forward=True, forward_waits_for_copy=False)
