"""Contract of stream_overlap: HiCache write-through, a forward stream and a device-to-host copy.

Source: SGLang ``python/sglang/srt/managers/cache_controller.py`` (``HiCacheController``:
``write_stream``, ``start_writing``) and ``managers/scheduler.py`` (the overlap scheduler's
``forward_stream``), with the two fences of sgl-project/sglang#20611:
``write_stream.wait_stream(forward_stream)`` before a device-to-host copy reads the KV slots a
forward wrote, and ``forward_stream.wait_event(last_write_finish_event)`` before the next forward
overwrites slots that copy still reads (../shared/seeds/sglang-hicache-stream-race.txt).

A case is a schedule of batches on one KV pool::

    batch_pages     [B, P] int32   pages batch b's copy moves, real pages first then -1 padding;
                                   a real page appears at most once in a row; 1 <= B <= 64
    page_fills      [B, P] int32   slots of that page batch b's forward writes: the first
                                   page_fills[b, j] slots, 1..page_size; 0 for a -1 page
    kernel_lengths  [B] int32      spin rounds of batch b's forward, 0..MAX_KERNEL_LENGTH: how
                                   long it runs, never what it leaves in the pool
    num_pages       N              pages of the pool, every page id < N
    page_size       S              slots per page, 1..MAX_PAGE_SIZE; slot = page * S + offset
    slot_size       D              int32 elements per slot, 1..MAX_SLOT_SIZE
    copy_method     "copy_engine" (non-blocking tensor.copy_ of each page into pinned host
                    memory) or "sm_kernel" (a gather kernel into a staging buffer, then one copy)

The pool (N * S slots of D int32) starts at 0. Batch after batch, serially: batch b's forward
writes every element e of each slot s it owns the value

    slot_value(b, s, e) = (b * N * S + s) * D + e + 1         (>= 1, unique per (b, s, e))

then batch b's copy moves each of its pages, whole, to the host::

    host_pages[b, j] = pool[page * S : (page + 1) * S]          [B, P, S, D] int32

so a page holds batch b's values in the slots b wrote and earlier batches' values (or 0) in the
others. Rows of a -1 page are unspecified and not compared. Everything else is compared exactly.

A correct kernel may overlap batch b's copy with batch b+1's forward only where the result cannot
tell: it must order each copy after its forward, and each forward after the previous copy.
Reading host values, a copy that ran too early finds an older batch's value, a 0, or a
negative in-progress marker (a forward writes -1, -2, ... while it spins, then the value); one
that ran too late finds a later batch's value.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.execute.launch import INT_POISON
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch, compare_exact
from moefuzz.model.target import OutputSpec
from moefuzz.model.validation import require_array, require_int_param
from moefuzz_targets.stream_overlap.layout import COPY_METHODS, OUTPUT

MAX_BATCHES = 64
MAX_PAGES_PER_BATCH = 256
#: SGLang's page sizes go to 64 (FA3) and 256 (FlashMLA / trtllm); 1024 leaves room.
MAX_PAGE_SIZE = 1024
#: Elements per slot: one layer's K of a token, e.g. 8 KV heads x 128 (576 for MLA).
MAX_SLOT_SIZE = 1024
#: Spin rounds of one forward; each round is one dependent global load and store (see kernels.py).
MAX_KERNEL_LENGTH = 1 << 16
#: slot_value must stay an int32 below this.
MAX_VALUE = 2**31 - 1


def slot_value(
    batch: np.ndarray | int, slot: np.ndarray | int, element: np.ndarray | int, num_slots: int, slot_size: int
):
    """``(batch * num_slots + slot) * slot_size + element + 1``: what batch ``batch``'s forward
    writes into ``element`` of ``slot`` (numpy broadcasting, int64)."""
    return (np.int64(batch) * num_slots + slot) * slot_size + element + 1


def check(case: Case) -> None:
    """Raise :class:`CaseError` when ``case`` violates the contract's preconditions."""
    pages = require_array(case, "batch_pages", np.int32, 2)  # [B, P]
    fills = require_array(case, "page_fills", np.int32, 2)  # [B, P]
    lengths = require_array(case, "kernel_lengths", np.int32, 1)  # [B]
    num_batches, per_batch = pages.shape
    if not 1 <= num_batches <= MAX_BATCHES:
        raise CaseError(f"num_batches B={num_batches!r} outside 1..{MAX_BATCHES}")
    if not 1 <= per_batch <= MAX_PAGES_PER_BATCH:
        raise CaseError(f"pages per batch P={per_batch!r} outside 1..{MAX_PAGES_PER_BATCH}")
    if fills.shape != pages.shape or lengths.shape != (num_batches,):
        shapes = (pages.shape, fills.shape, lengths.shape)
        raise CaseError(f"(batch_pages, page_fills, kernel_lengths) shapes={shapes!r}, not ([B, P], [B, P], [B])")
    num_pages = require_int_param(case, "num_pages", 1)
    page_size = require_int_param(case, "page_size", 1, MAX_PAGE_SIZE)
    slot_size = require_int_param(case, "slot_size", 1, MAX_SLOT_SIZE)
    method = case.params.get("copy_method")
    if method not in COPY_METHODS:
        raise CaseError(f"param copy_method={method!r} not one of {COPY_METHODS!r}")
    if num_batches * num_pages * page_size * slot_size > MAX_VALUE:
        raise CaseError(
            f"B * num_pages * page_size * slot_size={num_batches * num_pages * page_size * slot_size!r} "
            f"exceeds int32 slot values ({MAX_VALUE})"
        )
    _check_rows(pages, fills, num_pages, page_size)
    if lengths.size and not (0 <= lengths.min() and lengths.max() <= MAX_KERNEL_LENGTH):
        raise CaseError(f"kernel_lengths={lengths.tolist()!r} outside 0..{MAX_KERNEL_LENGTH}")


def _check_rows(pages: np.ndarray, fills: np.ndarray, num_pages: int, page_size: int) -> None:
    real = pages >= 0
    if pages.size and (pages.min() < -1 or pages.max() >= num_pages):
        raise CaseError(f"batch_pages range={(int(pages.min()), int(pages.max()))!r} outside -1..num_pages-1")
    if (real[:, 1:] & ~real[:, :-1]).any():
        row = int(np.flatnonzero((real[:, 1:] & ~real[:, :-1]).any(axis=1))[0])
        raise CaseError(f"batch_pages[{row}]={pages[row].tolist()!r} has a real page after -1 padding")
    for row, line in enumerate(pages):
        kept = line[line >= 0]
        if np.unique(kept).size != kept.size:
            raise CaseError(f"batch_pages[{row}]={line.tolist()!r} repeats a page")
    bad = np.where(real, (fills < 1) | (fills > page_size), fills != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise CaseError(
            f"page_fills[{row}]={fills[row].tolist()!r}: want 1..page_size={page_size} on a page, 0 on -1 padding"
        )


def output_specs(case: Case) -> dict[str, OutputSpec]:
    """``host_pages`` [B, P, page_size, slot_size] int32."""
    num_batches, per_batch = case.arrays["batch_pages"].shape
    shape = (num_batches, per_batch, int(case.params["page_size"]), int(case.params["slot_size"]))
    return {OUTPUT: OutputSpec(shape, "int32")}


def compared(case: Case) -> np.ndarray:
    """[B, P, 1, 1] bool: the host rows the contract specifies (those of real pages)."""
    return (case.arrays["batch_pages"] >= 0)[:, :, None, None]


def compare(case: Case, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """The first differing entry of ``host_pages`` among the rows of real pages."""
    where = np.broadcast_to(compared(case), ref[OUTPUT].shape)
    return compare_exact(OUTPUT, tri[OUTPUT], ref[OUTPUT], where)


# -- explanations ------------------------------------------------------------------------------
def writer(case: Case, value: int) -> str:
    """What a host value says about who wrote it: a batch's slot value, 0, a marker or poison."""
    num_slots = int(case.params["num_pages"]) * int(case.params["page_size"])
    slot_size = int(case.params["slot_size"])
    if value == 0:
        return "0: no forward had written this slot yet"
    if value == INT_POISON:
        return "the poison: no copy wrote this entry"
    if value < 0:
        return f"in-progress marker {value}: a forward was still spinning on this slot"
    batch, rest = divmod(value - 1, num_slots * slot_size)
    slot, element = divmod(rest, slot_size)
    return f"batch {batch}'s value of slot {slot}, element {element}"


def explain(case: Case, mismatch: Mismatch) -> str:
    """Which batch's copy, which page and slot, what it should have read and what it did, and
    which missing fence explains it."""
    if mismatch.index < 0:
        return f"{OUTPUT} has {mismatch.tri} entries, the contract wants {mismatch.ref}"
    shape = output_specs(case)[OUTPUT].shape
    batch, j, offset, element = (int(i) for i in np.unravel_index(mismatch.index, shape))
    page = int(case.arrays["batch_pages"][batch, j])
    slot = page * int(case.params["page_size"]) + offset
    ref, tri = int(mismatch.ref), int(mismatch.tri)
    head = (
        f"batch {batch}'s copy of page {page} (host row j={j}), slot {slot}, element {element}: "
        f"ref {ref} = {writer(case, ref)}; tri {tri} = {writer(case, tri)}"
    )
    return f"{head}\n{_cause(case, batch, tri)}"


def _cause(case: Case, batch: int, tri: int) -> str:
    """The missing fence a host value ``tri`` of batch ``batch``'s copy points to."""
    if tri == INT_POISON:
        return "the copy never wrote this host entry"
    if tri < 0:
        return (
            "a forward was mid-write when the copy read: this batch's (the copy did not wait for the "
            "forward) or a later one's (the forward did not wait for the copy)"
        )
    num_slots = int(case.params["num_pages"]) * int(case.params["page_size"])
    if tri > 0 and (tri - 1) // (num_slots * int(case.params["slot_size"])) > batch:
        return "a later forward overwrote the slot before this copy read it: the forward did not wait for the copy"
    return "the copy read the slot before this batch's forward wrote it: the copy did not wait for the forward"
