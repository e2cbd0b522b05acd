"""Contract of the decode page table: per-request pages of a paged KV cache, padded and flattened.

Source: SGLang ``python/sglang/srt/layers/attention/trtllm_mha_backend.py`` and
``flashattention_backend.py`` (``metadata.page_table = req_to_token[req_pool_indices,
:max_seq_len_k]``, every page_size-th column, ``// page_size``; for hybrid sliding-window layers
the token locations go through ``full_to_swa_index_mapping`` first, as fixed by
sgl-project/sglang#16267), and ``flashinfer_backend.py`` with ``create_flashinfer_kv_indices_triton``
of ``attention/utils.py`` (the flattened ``kv_indptr`` / ``kv_indices`` form). The state is
SGLang's (``moefuzz.strategies.paged_kv_states``, after its ``extended()``).

Input (a :class:`~moefuzz.model.case.Case`)::

    req_to_token               [num_reqs_in_pool, max_context] int32  token slot of each position;
                                                                      garbage in unowned cells
    req_pool_indices           [B] int64          row of req_to_token of request i
    seq_lens                   [B] int64          = cache_seqlens: positions < seq_len have a slot
    full_to_swa_index_mapping  [num_pages * page_size] int64, only when sliding_window >= 1:
                                                  full slot -> SWA slot (stale off the window)
    page_size                  tokens per page, 1..MAX_PAGE_SIZE
    num_pages                  pages of the full KV cache (page 0 reserved)
    max_pages                  columns of page_table: ceil(max(seq_lens) / page_size) at least
                               (SGLang's eager width), ceil(max_context / page_size) at most
                               (a CUDA-graph buffer over the whole context)
    sliding_window             W >= 1 for a sliding-window layer (its last W positions), -1 for
                               a full-attention layer
    swa_num_pages              pages of the SWA pool with a window, 0 without

Preconditions (``check``): for every request i and position p < seq_len[i],
``slot = req_to_token[req_pool_indices[i], p]`` lies in the cache (0 <= slot < num_pages *
page_size) with ``slot % page_size == p % page_size``, and the positions of one page share one
full page. With a window, every slot of a window page (below) translates to a SWA slot of the
same offset in one SWA page of the pool (0 <= swa slot < swa_num_pages * page_size).

Definitions, for request i with row r = req_pool_indices[i] and s = seq_lens[i]::

    num[i]    = ceil(s / page_size)                      pages of the request
    first[i]  = 0 (full layer)  or  max(s - W, 0) // page_size   first page holding a window
                position (SWA layer; earlier pages are not part of the SWA table)
    n[i]      = num[i] - first[i]                        pages in the table
    slot(i,j) = req_to_token[r, j * page_size]           the first token location of page j
    loc(i,j)  = slot(i,j)  or  full_to_swa_index_mapping[slot(i,j)]   (translate the token
                location BEFORE dividing: translating the page id slot // page_size is the bug
                sglang#16267 fixed)

Outputs::

    page_table   [B, max_pages] int32     (i, j) = loc(i, j) // page_size for first[i] <= j < num[i];
                                          0 (the reserved page, always in bounds) elsewhere:
                                          past the request's pages and before its window
    kv_indptr    [B + 1] int32            exclusive prefix sum of n: kv_indptr[0] = 0,
                                          kv_indptr[i + 1] = kv_indptr[i] + n[i]
    kv_indices   [sum(n)] int32           kv_indices[kv_indptr[i] + k] = page_table[i, first[i] + k]

Every entry is specified and compared. Every page id of page_table and kv_indices must be in
the layer's pool (0 <= id < num_pages, or < swa_num_pages with a window): an id out of it is what
makes an attention kernel read outside its KV cache (the seed report
sglang-trtllm-mha-page-table-oob: ``page_table.max=8657 num_pages_in_cache=8657``), so
``compare`` reports such an entry first.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch, compare_exact
from moefuzz.model.target import OutputSpec
from moefuzz.model.validation import require_array, require_int_param

#: Bounds the contract covers.
MAX_PAGE_SIZE = 1024
MAX_BATCH = 4096
#: Slots are int32 in req_to_token: the cache holds fewer than 2**31 of them.
MAX_SLOTS = 2**31 - 1

#: Outputs in the order ``compare`` checks them: the padded table first (the trtllm_mha / FA3
#: form), then the flattened FlashInfer form.
OUTPUT_ORDER = ("page_table", "kv_indptr", "kv_indices")

#: The one value of every cell outside a request's table: the reserved page.
SAFE_PAGE = 0

ARRAYS = {
    "req_to_token": ("int32", 2),
    "req_pool_indices": ("int64", 1),
    "seq_lens": ("int64", 1),
}
SWA_MAPPING = "full_to_swa_index_mapping"


def has_swa(case: Case) -> bool:
    """True for a sliding-window layer (``sliding_window >= 1``)."""
    return int(case.params["sliding_window"]) >= 1


def table_spans(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """``(first, num)``: [B] int64 each, the request's first table page and its page count."""
    page_size = int(case.params["page_size"])
    seq_lens = case.arrays["seq_lens"].astype(np.int64)
    num = -(-seq_lens // page_size)
    if not has_swa(case):
        return np.zeros_like(num), num
    return np.maximum(seq_lens - int(case.params["sliding_window"]), 0) // page_size, num


def pool_pages(case: Case) -> int:
    """Pages of the pool the table's ids index: the SWA pool with a window, else the full cache."""
    return int(case.params["swa_num_pages"] if has_swa(case) else case.params["num_pages"])


# -- preconditions --------------------------------------------------------------------------
def _check_params(case: Case) -> tuple[int, int]:
    page_size = require_int_param(case, "page_size", 1, MAX_PAGE_SIZE)
    num_pages = require_int_param(case, "num_pages", 1, MAX_SLOTS // page_size)
    require_int_param(case, "max_pages", 0)
    window = require_int_param(case, "sliding_window", -1)
    swa_pages = require_int_param(case, "swa_num_pages", 0, MAX_SLOTS // page_size)
    if window == 0:
        raise CaseError("param sliding_window=0: a window holds >= 1 positions (-1 for a full-attention layer)")
    if (window >= 1) != (swa_pages >= 1) or (window >= 1) != (SWA_MAPPING in case.arrays):
        raise CaseError(
            f"sliding_window={window!r}, swa_num_pages={swa_pages!r} and {SWA_MAPPING} "
            f"{'present' if SWA_MAPPING in case.arrays else 'absent'} disagree: a window needs all three"
        )
    return page_size, num_pages


def _check_batch(case: Case, page_size: int) -> None:
    req_to_token = case.arrays["req_to_token"]
    rows, context = req_to_token.shape
    indices, seq_lens = case.arrays["req_pool_indices"], case.arrays["seq_lens"]
    if indices.shape != seq_lens.shape or seq_lens.shape[0] > MAX_BATCH:
        raise CaseError(
            f"req_pool_indices has {indices.shape[0]} entries and seq_lens={seq_lens.shape[0]!r}: "
            f"one each per request, at most {MAX_BATCH}"
        )
    bad = np.flatnonzero((indices < 0) | (indices >= rows))
    if bad.size:
        raise CaseError(f"req_pool_indices[{int(bad[0])}]={int(indices[bad[0]])!r} outside 0..{rows - 1}")
    bad = np.flatnonzero((seq_lens < 0) | (seq_lens > context))
    if bad.size:
        raise CaseError(f"seq_lens[{int(bad[0])}]={int(seq_lens[bad[0]])!r} outside 0..max_context={context}")
    max_pages = int(case.params["max_pages"])
    low = -(-int(seq_lens.max(initial=0)) // page_size)
    high = -(-context // page_size)
    if not low <= max_pages <= high:
        raise CaseError(
            f"param max_pages={max_pages!r} outside {low}..{high} (pages of the longest request .. "
            f"of max_context={context})"
        )


def _check_pages(slots: np.ndarray, start: int, page_size: int, limit: int, what: str) -> None:
    """``slots`` [s] int64 of positions start, start + 1, ... (start on a page boundary): each in
    [0, limit), at offset p % page_size, one page per page of positions.

    Raises:
        CaseError: naming ``what`` and the first bad position.
    """
    positions = start + np.arange(slots.size)
    pages = slots // page_size
    bad = (slots < 0) | (slots >= limit) | (slots % page_size != positions % page_size)
    bad |= pages != pages[(positions // page_size) * page_size - start]
    if bad.any():
        p = int(positions[np.flatnonzero(bad)[0]])
        raise CaseError(
            f"{what} position {p}: slot={int(slots[p - start])!r} is not offset {p % page_size} of one page "
            f"of the pool (slots < {limit}, page_size={page_size})"
        )


def _check_slots(case: Case, page_size: int, num_pages: int) -> None:
    req_to_token = case.arrays["req_to_token"]
    first, _ = table_spans(case)
    mapping = case.arrays.get(SWA_MAPPING)
    if mapping is not None and mapping.shape[0] != num_pages * page_size:
        raise CaseError(
            f"{SWA_MAPPING} has {mapping.shape[0]} entries, not num_pages * page_size = {num_pages * page_size}"
        )
    swa_limit = int(case.params["swa_num_pages"]) * page_size
    for i, (row, seq) in enumerate(zip(case.arrays["req_pool_indices"], case.arrays["seq_lens"], strict=True)):
        slots = req_to_token[int(row), : int(seq)].astype(np.int64)
        _check_pages(slots, 0, page_size, num_pages * page_size, f"request {i} (req_to_token row {int(row)})")
        if mapping is not None:
            start = int(first[i]) * page_size
            what = f"request {i} {SWA_MAPPING} of"
            _check_pages(mapping[slots[start:]], start, page_size, swa_limit, what)


def check(case: Case) -> None:
    """Raise :class:`CaseError` when ``case`` violates the contract's preconditions (module doc)."""
    for name, (dtype, ndim) in ARRAYS.items():
        require_array(case, name, dtype, ndim)
    if SWA_MAPPING in case.arrays:
        require_array(case, SWA_MAPPING, "int64", 1)
    page_size, num_pages = _check_params(case)
    _check_batch(case, page_size)
    _check_slots(case, page_size, num_pages)


def output_specs(case: Case) -> dict[str, OutputSpec]:
    """Shape and dtype of each output buffer of ``case``."""
    first, num = table_spans(case)
    batch = int(case.arrays["seq_lens"].shape[0])
    return {
        "page_table": OutputSpec((batch, int(case.params["max_pages"])), "int32"),
        "kv_indptr": OutputSpec((batch + 1,), "int32"),
        "kv_indices": OutputSpec((int((num - first).sum()),), "int32"),
    }


# -- comparison -----------------------------------------------------------------------------
def _compare_ids(case: Case, name: str, tri: np.ndarray, ref: np.ndarray) -> Mismatch | None:
    """Page ids: an id outside the layer's pool first (the one that faults), then any other."""
    tri_flat, ref_flat = np.asarray(tri).reshape(-1), np.asarray(ref).reshape(-1)
    if tri_flat.shape == ref_flat.shape:
        outside = np.flatnonzero((tri_flat < 0) | (tri_flat >= pool_pages(case)))
        if outside.size:
            first = int(outside[0])
            count = int((tri_flat != ref_flat).sum())
            return Mismatch(name, first, tri_flat[first].item(), ref_flat[first].item(), count, int(ref_flat.size))
    return compare_exact(name, tri_flat, ref_flat)


def compare(case: Case, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """The first mismatch, outputs in ``OUTPUT_ORDER``; in a table of page ids an id outside the
    pool is reported before an in-pool one that differs."""
    for name in OUTPUT_ORDER:
        if name == "kv_indptr":
            mismatch = compare_exact(name, tri[name], ref[name])
        else:
            mismatch = _compare_ids(case, name, tri[name], ref[name])
        if mismatch is not None:
            return mismatch
    return None


# -- explanations ---------------------------------------------------------------------------
def describe_page(case: Case, request: int, page: int) -> str:
    """Why entry (request, page) of the table holds what the contract says: past the request's
    pages, before its window, or the slot and translation it comes from."""
    page_size = int(case.params["page_size"])
    first, num = table_spans(case)
    seq = int(case.arrays["seq_lens"][request])
    row = int(case.arrays["req_pool_indices"][request])
    column = page * page_size
    req_to_token = case.arrays["req_to_token"]
    cell = f"req_to_token[{row}, {column}]={int(req_to_token[row, column])}" if column < req_to_token.shape[1] else ""
    if page >= num[request]:
        return f"past seq_len={seq}: the request has {int(num[request])} page(s); {cell} is not its own"
    if page < first[request]:
        window = int(case.params["sliding_window"])
        return (
            f"before the window [{max(seq - window, 0)}, {seq}) of sliding_window={window}, which starts in "
            f"page {int(first[request])}; {cell} is the full cache's, not the SWA table's"
        )
    slot = int(req_to_token[row, column])
    text = f"{cell}: full page {slot // page_size}"
    mapping = case.arrays.get(SWA_MAPPING)
    if mapping is not None:
        swa = int(mapping[slot])
        text += (
            f"; {SWA_MAPPING}[{slot}]={swa}: SWA page {swa // page_size}; translating the page id instead "
            f"reads {SWA_MAPPING}[{slot // page_size}]={int(mapping[slot // page_size])}"
        )
    return text


def _out_of_pool(case: Case, value: int | float) -> str:
    pool = pool_pages(case)
    if 0 <= value < pool:
        return ""
    which = "SWA pool" if has_swa(case) else "KV cache"
    return f"\ntri page {value} is outside the {which}'s {pool} pages: an attention kernel reads out of bounds"


def explain(case: Case, mismatch: Mismatch) -> str:
    """One or two lines naming the request and page that differ, as ``request 1 page 2: tri=7
    ref=0 (past seq_len=5 ...)``, and whether the kernel's id is outside the pool."""
    if mismatch.index < 0:
        return f"{mismatch.output} has {mismatch.tri} entries, the contract wants {mismatch.ref}"
    if mismatch.output == "kv_indptr":
        first, num = table_spans(case)
        return (
            f"kv_indptr[{mismatch.index}]: tri={mismatch.tri} ref={mismatch.ref} pages before request "
            f"{mismatch.index}; pages per request: {(num - first).tolist()}"
        )
    if mismatch.output == "page_table":
        request, page = divmod(mismatch.index, int(case.params["max_pages"]))
        prefix = ""
    else:
        first, num = table_spans(case)
        indptr = np.concatenate([[0], np.cumsum(num - first)])
        request = int(np.searchsorted(indptr, mismatch.index, side="right") - 1)
        page = int(first[request] + mismatch.index - indptr[request])
        prefix = f"kv_indices[{mismatch.index}] = "
    return (
        f"{prefix}request {request} page {page}: tri={mismatch.tri} ref={mismatch.ref} "
        f"({describe_page(case, request, page)})" + _out_of_pool(case, mismatch.tri)
    )


def explain_crash(case: Case) -> str:
    """For a crash: the cells past a request's pages (or before its window) whose value is not a
    slot the layer can translate or divide, one line each (at most two), as ``request 0 page 1:
    req_to_token[3, 4]=2147483647 past seq_len=4 is outside full_to_swa_index_mapping's 64
    entries``; empty when every such cell is in range."""
    page_size = int(case.params["page_size"])
    first, num = table_spans(case)
    req_to_token = case.arrays["req_to_token"]
    mapping = case.arrays.get(SWA_MAPPING)
    limit = mapping.shape[0] if mapping is not None else int(case.params["num_pages"]) * page_size
    what = f"{SWA_MAPPING}'s {limit} entries" if mapping is not None else f"the cache's {limit} slots"
    lines = []
    for request, row in enumerate(case.arrays["req_pool_indices"].tolist()):
        seq = int(case.arrays["seq_lens"][request])
        for page in range(-(-req_to_token.shape[1] // page_size)):
            if first[request] <= page < num[request]:
                continue
            value = int(req_to_token[row, page * page_size])
            if not 0 <= value < limit:
                where = "past" if page >= num[request] else "before the window of"
                lines.append(
                    f"request {request} page {page}: req_to_token[{row}, {page * page_size}]={value} {where} "
                    f"seq_len={seq} is outside {what}: a kernel that reads it faults"
                )
                break
        if len(lines) == 2:
            break
    return "\n".join(lines)
