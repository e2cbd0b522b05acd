"""Contract of paged_decode: one decode step of paged attention with GQA and a sliding window.

Source: the decode kernels SGLang's attention backends call on a page table,
FlashInfer ``flashinfer/decode.py`` ``trtllm_batch_decode_with_kv_cache(query, kv_cache, ...,
block_tables, seq_lens, ..., window_left)`` (``trtllm_mha_backend.py`` builds
``page_table = req_to_token[req_pool_indices, :max_seq_len_k] // page_size``) and FA3
``flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=..., page_table=...,
softmax_scale=..., causal=True, window_size=(W - 1, 0))`` (``flashattention_backend.py``).

Input (a :class:`~moefuzz.model.case.Case`)::

    q              [B, Hq, D] float32                   one query token per request
    k_cache        [num_pages, page_size, Hkv, D] float32
    v_cache        [num_pages, page_size, Hkv, D] float32
    page_table     [B, max_pages] int32                 page of request i's j-th page
    cache_seqlens  [B] int32                            L_i: tokens cached, the query's own included
    sliding_window W >= 0                               0: no window
    sm_scale       float > 0                            scale of q . k (1 / sqrt(D) as drawn)

with Hq a multiple of Hkv (q head h reads kv head h // (Hq // Hkv), FA's and FlashInfer's GQA
grouping), 1 <= D <= 256, 0 <= L_i <= max_pages * page_size. Position p of request i lives at
``k_cache[page_table[i, p // page_size], p % page_size]``; the entries ``page_table[i, j]`` for
j < ceil(L_i / page_size) are pages of the cache, every later entry is garbage (a stale page,
a wild int past the cache or negative, 0) that must not be read: sglang-trtllm-mha-page-table-oob
is a kernel that dereferenced them.

The query sits at position L - 1 and attends, with W > 0, the last W positions
[max(0, L - W), L): FA's ``window_size=(W - 1, 0)`` ("query at position i attends keys between
[i + seqlen_k - seqlen_q - window_size[0], i + seqlen_k - seqlen_q + window_size[1]] inclusive",
flash_attn_interface.py) and FlashInfer's ``window_left = W - 1``; SGLang passes
``sliding_window_size = config.sliding_window - 1`` as window_size[0] ("two side inclusive").
W >= L attends everything. Output::

    o  [B, Hq, D] float32   o[i, h] = sum_p softmax_p(sm_scale * q[i, h] . k[p]) v[p] over the
                            attended p; a request with L = 0 attends nothing and outputs 0
                            (FA: "if the row of the mask is all zero, the output will be zero")

Every entry is specified. K/V slots that no attended position holds may hold anything, NaN
included (the strategy fills pages no request owns with NaN, so a read of one shows in o).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch, compare_close
from moefuzz.model.target import OutputSpec
from moefuzz.model.validation import require_array, require_int_param
from moefuzz_targets.paged_decode.oracle import attended_positions

#: Bounds the contract covers.
MAX_HEAD_DIM = 256
MAX_HEADS = 128

#: Tolerance of ``compare``: |tri - ref| <= ATOL + RTOL * |ref|, entry by entry. The strategy's
#: q, k and v are multiples of 1/8 in [-1, 1] (bf16-exact), so every q . k is exact in fp32 in
#: any order (multiples of 1/64, at most D = 256 in size); what differs between two correct
#: kernels is exp (a few ulp), the online softmax's rescaling and the order of the sums over up
#: to ~1000 keys: about n * 2^-24 ~ 6e-5 in the worst case for |v| <= 1, far less in practice
#: (at most 2.4e-7 on 40 drawn cases under the interpreter). A one-key error (the window bug)
#: moves o by about |v[p] - o| / (W + 1): 1e-3 and more for W < 1000.
ATOL = 1e-4
RTOL = 1e-4

ARRAYS = {
    "q": ("float32", 3),
    "k_cache": ("float32", 4),
    "v_cache": ("float32", 4),
    "page_table": ("int32", 2),
    "cache_seqlens": ("int32", 1),
}


def pages_used(cache_seqlens: np.ndarray, page_size: int) -> np.ndarray:
    """[B] int64: ceil(L_i / page_size), the entries of each page_table row that are pages."""
    return -(-cache_seqlens.astype(np.int64) // page_size)


def _check_shapes(case: Case) -> None:
    for name, (dtype, ndim) in ARRAYS.items():
        require_array(case, name, dtype, ndim)
    q, k_cache, v_cache = case.arrays["q"], case.arrays["k_cache"], case.arrays["v_cache"]
    page_table, cache_seqlens = case.arrays["page_table"], case.arrays["cache_seqlens"]
    batch, num_q_heads, head_dim = q.shape
    num_pages, page_size, num_kv_heads, cache_dim = k_cache.shape
    if v_cache.shape != k_cache.shape:
        raise CaseError(f"v_cache shape={v_cache.shape!r} differs from k_cache's {k_cache.shape!r}")
    if page_table.shape[0] != batch or cache_seqlens.shape[0] != batch:
        raise CaseError(
            f"q has B={batch!r} requests; page_table rows={page_table.shape[0]!r} and "
            f"cache_seqlens entries={cache_seqlens.shape[0]!r} must equal it"
        )
    if not 1 <= head_dim <= MAX_HEAD_DIM or cache_dim != head_dim:
        raise CaseError(f"head dim D={head_dim!r} (k_cache's {cache_dim!r}) must match, within 1..{MAX_HEAD_DIM}")
    if not 1 <= num_kv_heads <= num_q_heads <= MAX_HEADS or num_q_heads % num_kv_heads:
        raise CaseError(f"Hq={num_q_heads!r} must be a multiple of Hkv={num_kv_heads!r}, 1 <= Hkv <= Hq <= {MAX_HEADS}")
    if num_pages < 1 or page_size < 1:
        raise CaseError(f"k_cache (num_pages, page_size)={(num_pages, page_size)!r} must both be >= 1")


def _check_lengths_and_pages(case: Case) -> None:
    page_table, cache_seqlens = case.arrays["page_table"], case.arrays["cache_seqlens"]
    num_pages, page_size = case.arrays["k_cache"].shape[:2]
    capacity = page_table.shape[1] * page_size
    bad = np.flatnonzero((cache_seqlens < 0) | (cache_seqlens > capacity))
    if bad.size:
        i = int(bad[0])
        raise CaseError(f"cache_seqlens[{i}]={int(cache_seqlens[i])!r} outside 0..max_pages * page_size={capacity}")
    used = np.arange(page_table.shape[1])[None, :] < pages_used(cache_seqlens, page_size)[:, None]
    wrong = np.argwhere(used & ((page_table < 0) | (page_table >= num_pages)))
    if wrong.size:
        i, j = (int(x) for x in wrong[0])
        raise CaseError(
            f"page_table[{i}, {j}]={int(page_table[i, j])!r} is one of request {i}'s pages "
            f"(L={int(cache_seqlens[i])}), not a page of the cache 0..{num_pages - 1}"
        )


def _check_values(case: Case, sliding_window: int) -> None:
    q = case.arrays["q"]
    if not np.isfinite(q).all():
        raise CaseError(f"q has a non-finite value at {np.argwhere(~np.isfinite(q))[0].tolist()!r}")
    page_size = case.arrays["k_cache"].shape[1]
    for i, seq_len in enumerate(case.arrays["cache_seqlens"].tolist()):
        positions = np.asarray(attended_positions(seq_len, sliding_window), dtype=np.int64)
        pages = case.arrays["page_table"][i, positions // page_size]
        for name in ("k_cache", "v_cache"):
            attended = case.arrays[name][pages, positions % page_size]
            if not np.isfinite(attended).all():
                p = int(positions[np.argwhere(~np.isfinite(attended))[0][0]])
                raise CaseError(f"{name} at request {i} position {p} (attended) is not finite")


def check(case: Case) -> None:
    """Raise :class:`CaseError` when ``case`` violates the contract's preconditions."""
    _check_shapes(case)
    _check_lengths_and_pages(case)
    sliding_window = require_int_param(case, "sliding_window", low=0)
    if "sm_scale" not in case.params:
        raise CaseError(f"case has no param sm_scale (params={sorted(case.params)!r})")
    sm_scale = case.params["sm_scale"]
    if isinstance(sm_scale, bool) or not isinstance(sm_scale, (int, float)) or not 0 < sm_scale < math.inf:
        raise CaseError(f"param sm_scale={sm_scale!r} is not a finite float > 0")
    _check_values(case, sliding_window)


def output_specs(case: Case) -> dict[str, OutputSpec]:
    """``o`` [B, Hq, D] float32."""
    return {"o": OutputSpec(tuple(int(n) for n in case.arrays["q"].shape), "float32")}


def compare(case: Case, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """The first entry of ``o`` (flat index) where |tri - ref| > ATOL + RTOL * |ref|, or where
    tri is NaN or infinite (a never-written, NaN-poisoned entry included); ``None`` if none."""
    return compare_close("o", tri["o"], ref["o"], rtol=RTOL, atol=ATOL, dtype=np.float32)


# -- explanations ---------------------------------------------------------------------------
def _garbage_note(case: Case, page: int) -> str:
    """``page`` as a garbage entry: outside the cache, a NaN page, or a page of the cache."""
    num_pages = case.arrays["k_cache"].shape[0]
    if not 0 <= page < num_pages:
        return f"{page} (outside pages 0..{num_pages - 1})"
    if np.isnan(case.arrays["k_cache"][page]).all():
        return f"{page} (NaN page)"
    return str(page)


def describe_request(case: Case, i: int) -> str:
    """Request i's length, pages, garbage and attended positions, one line; with a window
    shorter than L, also the first position outside it and where it lives."""
    page_size = case.arrays["k_cache"].shape[1]
    seq_len = int(case.arrays["cache_seqlens"][i])
    row = case.arrays["page_table"][i].tolist()
    used = int(pages_used(np.array([seq_len]), page_size)[0])
    garbage = ", ".join(_garbage_note(case, page) for page in row[used:])
    text = f"request {i}: L={seq_len}, page_size={page_size}, page_table[{i}] = {row[:used]} | garbage [{garbage}]"
    window = int(case.params["sliding_window"])
    positions = attended_positions(seq_len, window)
    span = f"positions {positions.start}..{positions.stop - 1}" if len(positions) else "nothing"
    if window == 0:
        return f"{text}; no window: attends {span}"
    text += f"; window W={window} of L={seq_len} attends {span}"
    if positions.start > 0:
        outside = positions.start - 1
        column = outside // page_size
        text += (
            f"; position {outside} (page_table[{i}, {column}]={row[column]}, slot {outside % page_size}) "
            "is the first outside it"
        )
    return text


def explain(case: Case, mismatch: Mismatch) -> str:
    """The request, q head (and its kv head) and dim of the first bad entry, the difference, and
    the request's pages, garbage and attended positions."""
    if mismatch.index < 0:
        return f"o has {mismatch.tri} entries, the contract wants {mismatch.ref}"
    _, num_q_heads, head_dim = case.arrays["q"].shape
    group = num_q_heads // case.arrays["k_cache"].shape[2]
    i, rest = divmod(mismatch.index, num_q_heads * head_dim)
    h, d = divmod(rest, head_dim)
    tri, ref = float(mismatch.tri), float(mismatch.ref)
    diff = "tri_o is NaN: the kernel read a slot no attended position holds" if math.isnan(tri) else None
    diff = diff or f"|tri-ref|={abs(tri - ref):.3g} (tri_o={tri:.6g}, ref_o={ref:.6g})"
    return f"request {i} head {h} (kv head {h // group}) dim {d}: {diff}\n{describe_request(case, i)}"


def explain_crash(case: Case) -> str:
    """For a crash: the first request whose page_table row holds, past its pages, an id outside
    the cache (a kernel that loads it faults), with :func:`describe_request`; empty if none."""
    page_size = case.arrays["k_cache"].shape[1]
    num_pages = case.arrays["k_cache"].shape[0]
    for i, seq_len in enumerate(case.arrays["cache_seqlens"].tolist()):
        used = int(pages_used(np.array([seq_len]), page_size)[0])
        row = case.arrays["page_table"][i].tolist()
        for column in range(used, len(row)):
            if not 0 <= row[column] < num_pages:
                return (
                    f"request {i} page {column}: page_table[{i}, {column}]={row[column]} past its {used} page(s) is "
                    f"outside pages 0..{num_pages - 1}: a kernel that loads it faults\n{describe_request(case, i)}"
                )
    return ""
