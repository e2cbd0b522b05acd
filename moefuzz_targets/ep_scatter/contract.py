"""Contract of ep_scatter: expand one EP rank's received tokens into expert-grouped rows.

Source: LightLLM ``lightllm/common/fused_moe/deepep_scatter_gather.py`` ``ep_scatter``
(``_fwd_kernel_ep_scatter_1`` then ``_fwd_kernel_ep_scatter_2``), copied by SGLang
``ep_moe/kernels.py``, vLLM ``fused_moe/deep_gemm_utils.py`` and RTP-LLM: the step between a
DeepEP normal dispatch and DeepGEMM's contiguous grouped GEMM.

Input (a :class:`~moefuzz.model.case.Case`)::

    recv_x                      [N, H] float32  token rows, exact in the device dtype; H >= 1
    recv_x_scale                [N, S] float32  fp8: S = ceil(H / 128) per-128 scales; bf16: S = 0
    recv_topk                   [N, K] int32    local expert id in [0, E) or -1; 1 <= K <= 8
    num_recv_tokens_per_expert  [E] int32       items of each expert rounded up to a multiple of 128
    num_experts                 E               1 <= E <= 1024 (derived: len of the counts)
    dtype                       "bf16" | "fp8"  device dtype of recv_x (bf16 / float8_e4m3fn)

An item is a (t, k) slot with recv_topk[t, k] >= 0. With n_e the items of expert e, a_e =
num_recv_tokens_per_expert[e] = 128 * ceil(n_e / 128) (derived from recv_topk: DeepEP's alignment),
start_e = sum_{e' < e} a_e' and M = sum_e a_e, the outputs are::

    output_tensor        [M, H] float32  (device dtype)  row of item (t, k) = recv_x[t]
    output_tensor_scale  [M, S] float32                   row of item (t, k) = recv_x_scale[t]
    m_indices            [M] int32       e on every row of e's aligned segment [start_e, start_e + a_e)
    output_index         [N, K] int32    row of item (t, k): the items of e take the rows
                                         [start_e, start_e + n_e), one each, in any order
    expert_start_loc     [E] int32       start_e + n_e: upstream's atomic row cursor after the call

The order of the items inside a segment is the order of the kernel's atomics, so it is not part
of the contract: ``compare`` checks that each expert's items took its first n_e rows, one each,
and that the row an item took holds its token (``output_tensor[output_index[t, k]] == recv_x[t]``;
with the former, each segment's real rows equal the oracle's as a multiset). Unspecified: the
padding rows [start_e + n_e, start_e + a_e) of output_tensor and its scales, and output_index where
recv_topk is -1 (left untouched). m_indices is specified on the whole aligned segment because
LightLLM's ``_fwd_kernel_ep_scatter_1`` fills it in blocks of 128 up to a_e.

The bug this target carries (ModelTC/LightLLM ep_scatter stale read, alibaba/rtp-llm#1098):
``_fwd_kernel_ep_scatter_1`` stores the prefix sum to expert_start_loc and loads its own start
back from global memory in the same program, with no barrier between; another warp may read a
stale value (0 or the buffer's garbage) and scatter m_indices to a wild address.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch, compare_exact
from moefuzz.model.target import OutputSpec
from moefuzz.model.validation import require_array
from moefuzz.strategies.expert_parallel import ALIGNMENT, aligned_counts, is_bf16_exact, is_e4m3_exact

#: Largest top-k of the contract.
MAX_TOPK = 8
#: Most local experts (the kernels' prefix sum holds up to 1024 experts in one block).
MAX_EXPERTS = 1024
#: Most received tokens.
MAX_TOKENS = 65536
#: Hidden columns per scale of the fp8 variant (DeepGEMM's 1x128 activation quantization).
SCALE_BLOCK = 128
DTYPES = ("bf16", "fp8")

OUTPUT_ORDER = ("expert_start_loc", "m_indices", "output_index", "output_tensor", "output_tensor_scale")


def scale_columns(hidden: int, dtype: str) -> int:
    """S: columns of recv_x_scale for hidden size ``hidden`` (0 for bf16)."""
    return -(-hidden // SCALE_BLOCK) if dtype == "fp8" else 0


def check(case: Case) -> None:
    """Raise :class:`CaseError` when ``case`` violates the contract's preconditions."""
    recv_x = require_array(case, "recv_x", np.float32, 2)
    scale = require_array(case, "recv_x_scale", np.float32, 2)
    topk = require_array(case, "recv_topk", np.int32, 2)
    counts = require_array(case, "num_recv_tokens_per_expert", np.int32, 1)
    dtype = case.params.get("dtype")
    if dtype not in DTYPES:
        raise CaseError(f"param dtype={dtype!r} not one of {DTYPES!r}")
    num_experts = case.params.get("num_experts")
    if isinstance(num_experts, bool) or not isinstance(num_experts, int) or not 1 <= num_experts <= MAX_EXPERTS:
        raise CaseError(f"param num_experts={num_experts!r} not an int in 1..{MAX_EXPERTS}")
    num_tokens, hidden = recv_x.shape
    if not 1 <= topk.shape[1] <= MAX_TOPK:
        raise CaseError(f"top_k K={topk.shape[1]!r} outside 1..{MAX_TOPK}")
    if num_tokens > MAX_TOKENS:
        raise CaseError(f"num_tokens N={num_tokens!r} above {MAX_TOKENS}")
    if hidden < 1:
        raise CaseError(f"hidden size H={hidden!r} below 1")
    if topk.shape[0] != num_tokens or scale.shape[0] != num_tokens:
        raise CaseError(
            f"token counts (recv_x, recv_x_scale, recv_topk)={(num_tokens, scale.shape[0], topk.shape[0])!r}"
        )
    if scale.shape[1] != scale_columns(hidden, dtype):
        raise CaseError(f"recv_x_scale columns S={scale.shape[1]!r}, not {scale_columns(hidden, dtype)} for {dtype}")
    if topk.size and not ((topk >= -1) & (topk < num_experts)).all():
        bad = topk[(topk < -1) | (topk >= num_experts)][0]
        raise CaseError(f"recv_topk id={int(bad)!r} outside -1..num_experts-1={num_experts - 1}")
    if counts.shape[0] != num_experts:
        raise CaseError(f"num_recv_tokens_per_expert length={counts.shape[0]!r}, not num_experts={num_experts}")
    expected = aligned_counts(topk, num_experts)
    if not np.array_equal(counts, expected):
        e = int(np.flatnonzero(counts != expected)[0])
        raise CaseError(
            f"num_recv_tokens_per_expert[{e}]={int(counts[e])!r}, but recv_topk holds {int((topk == e).sum())} "
            f"items of expert {e} (aligned to {ALIGNMENT}: {int(expected[e])})"
        )
    exact = is_bf16_exact(recv_x) if dtype == "bf16" else is_e4m3_exact(recv_x)
    if not exact.all():
        t, d = (int(i) for i in np.argwhere(~exact)[0])
        raise CaseError(f"recv_x[{t}, {d}]={float(recv_x[t, d])!r} is not exact in dtype={dtype!r}")
    if not np.isfinite(scale).all():
        raise CaseError(f"recv_x_scale holds a non-finite value={float(scale[~np.isfinite(scale)][0])!r}")


def num_rows(case: Case) -> int:
    """M: rows of the expanded output (sum of the aligned counts)."""
    return int(case.arrays["num_recv_tokens_per_expert"].astype(np.int64).sum())


def output_specs(case: Case) -> dict[str, OutputSpec]:
    """Shape and dtype of each output buffer of ``case`` (rows as float32 whatever the device dtype)."""
    rows = num_rows(case)
    hidden = case.arrays["recv_x"].shape[1]
    return {
        "output_tensor": OutputSpec((rows, hidden), "float32"),
        "output_tensor_scale": OutputSpec((rows, case.arrays["recv_x_scale"].shape[1]), "float32"),
        "m_indices": OutputSpec((rows,), "int32"),
        "output_index": OutputSpec(case.arrays["recv_topk"].shape, "int32"),
        "expert_start_loc": OutputSpec((case.arrays["num_recv_tokens_per_expert"].shape[0],), "int32"),
    }


def derive(case: Case) -> Case:
    """Recompute num_recv_tokens_per_expert from recv_topk and num_experts (after a shrink pass
    dropped tokens or renumbered experts)."""
    topk = case.arrays["recv_topk"]
    return case.replace({"num_recv_tokens_per_expert": aligned_counts(topk, int(case.params["num_experts"]))})


def segments(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, n, aligned): [E] int64 first row, item count and aligned count of each expert."""
    topk = case.arrays["recv_topk"]
    aligned = case.arrays["num_recv_tokens_per_expert"].astype(np.int64)
    counts = np.bincount(topk[topk >= 0].astype(np.int64), minlength=aligned.size)
    return np.cumsum(aligned) - aligned, counts, aligned


def _check_output_index(case: Case, tri: np.ndarray, ref: np.ndarray) -> Mismatch | None:
    """Each item's row lies in [start_e, start_e + n_e) and no two items share a row."""
    start, counts, _ = segments(case)
    experts = case.arrays["recv_topk"].reshape(-1).astype(np.int64)
    items = np.flatnonzero(experts >= 0)
    rows = tri.reshape(-1)[items].astype(np.int64)
    lo = start[experts[items]]
    bad = (rows < lo) | (rows >= lo + counts[experts[items]])
    _, first = np.unique(rows, return_index=True)
    repeated = np.ones(items.size, dtype=bool)
    repeated[first] = False
    bad |= repeated
    if not bad.any():
        return None
    item = int(items[np.flatnonzero(bad)[0]])
    return Mismatch(
        "output_index", item, int(tri.reshape(-1)[item]), int(ref.reshape(-1)[item]), int(bad.sum()), items.size
    )


def _check_rows(case: Case, name: str, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """``tri[name][tri_output_index[t, k]] == ref[name][ref_output_index[t, k]]`` for every
    item; rows no item took are unspecified."""
    items = np.flatnonzero(case.arrays["recv_topk"].reshape(-1) >= 0)
    tri_rows = tri["output_index"].reshape(-1)[items]
    ref_rows = ref["output_index"].reshape(-1)[items]
    expected = np.full_like(ref[name], np.nan)
    expected[tri_rows] = ref[name][ref_rows]
    where = np.zeros(ref[name].shape, dtype=bool)
    where[tri_rows] = True
    return compare_exact(name, tri[name], expected, where)


def compare(case: Case, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """The first mismatch on the entries the contract specifies, outputs in ``OUTPUT_ORDER``;
    the rows are compared through the kernel's own output_index once that one is sound."""
    for name in ("expert_start_loc", "m_indices"):
        mismatch = compare_exact(name, tri[name], ref[name])
        if mismatch is not None:
            return mismatch
    mismatch = _check_output_index(case, tri["output_index"], ref["output_index"])
    if mismatch is not None:
        return mismatch
    for name in ("output_tensor", "output_tensor_scale"):
        mismatch = _check_rows(case, name, tri, ref)
        if mismatch is not None:
            return mismatch
    return None


def _item(case: Case, flat: int) -> str:
    topk = case.arrays["recv_topk"]
    t, k = divmod(flat, topk.shape[1])
    return f"token t={t}, k={k}, local expert {int(topk[t, k])}"


def _segment(case: Case, expert: int) -> str:
    start, counts, aligned = segments(case)
    s, n, a = int(start[expert]), int(counts[expert]), int(aligned[expert])
    return f"expert {expert}'s segment is rows [{s}, {s + a}), its {n} items take rows [{s}, {s + n})"


def explain(case: Case, mismatch: Mismatch) -> str:
    """One or two lines naming the expert, its segment, and the token and k that differ."""
    index = mismatch.index
    if index < 0:
        return f"{mismatch.output} has {mismatch.tri} entries, the contract wants {mismatch.ref}"
    if mismatch.output == "expert_start_loc":
        return f"{_segment(case, index)}; after the call the cursor is {mismatch.ref}, the kernel left {mismatch.tri}"
    if mismatch.output == "m_indices":
        start, _, aligned = segments(case)
        expert = int(np.searchsorted(start + aligned, index, side="right"))
        return f"row {index}: {_segment(case, expert)}"
    if mismatch.output == "output_index":
        expert = int(case.arrays["recv_topk"].reshape(-1)[index])
        return f"{_item(case, index)}: {_segment(case, expert)}; the kernel gave row {mismatch.tri}"
    # A row of output_tensor(_scale): name the segment it lies in.
    width = case.arrays["recv_x" if mismatch.output == "output_tensor" else "recv_x_scale"].shape[1]
    row, column = divmod(index, max(1, width))
    start, _, aligned = segments(case)
    expert = int(np.searchsorted(start + aligned, row, side="right"))
    return (
        f"row {row}, column {column}: {_segment(case, expert)}; the item the kernel put there "
        f"(by its output_index) has {mismatch.ref} there"
    )
