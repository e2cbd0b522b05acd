"""Contract of ep_gather: reduce the expert-grouped rows back to one row per received token.

Source: LightLLM ``lightllm/common/fused_moe/deepep_scatter_gather.py`` ``ep_gather``
(``_fwd_kernel_ep_gather``), copied by SGLang ``ep_moe/kernels.py``, vLLM
``fused_moe/deep_gemm_utils.py`` and RTP-LLM: the step between DeepGEMM's contiguous grouped GEMM
and a DeepEP combine. It is ep_scatter's inverse: ``input_index`` is ep_scatter's output_index.

Input (a :class:`~moefuzz.model.case.Case`)::

    input_tensor      [M, H] float32  expert outputs, bf16 on the device: every entry exact in
                                      bf16 or NaN (padding rows nobody wrote); H >= 1
    recv_topk         [N, K] int32    local expert id in [0, E) or -1 (not on this rank); K <= 8
    recv_topk_weight  [N, K] float32  finite where recv_topk >= 0; anything elsewhere
    input_index       [N, K] int32    where recv_topk >= 0: the row in [0, M) of that item, whose
                                      entries are finite; where -1: anything (never written by
                                      the scatter, so never to be read)
    num_experts       E               1 <= E <= 1024

Output::

    output_tensor  [N, H] float32 (bf16 on the device)
        out[t] = bf16( sum_{k : recv_topk[t, k] >= 0} recv_topk_weight[t, k] * input_tensor[input_index[t, k]] )

summed in fp32 in k order, then rounded to bf16; a token with no valid slot gets a row of zeros.
Every entry is specified. Tolerance, per entry (t, d), with s = sum over the valid k of
|w[t, k] * input_tensor[input_index[t, k], d]|::

    |tri - ref| <= RTOL * |ref| + ATOL_OF_SUM * s        RTOL = 2**-7, ATOL_OF_SUM = 2**-16

RTOL is one bf16 ulp (the two fp32 sums may round to neighbouring bf16 values); ATOL_OF_SUM
covers fp32 sums of up to 8 terms taken in another order or with fused multiply-adds, which can
differ by a few fp32 ulps of s when the terms cancel. Where s = 0 the entry must be exactly 0, and
a NaN is never within tolerance (a poisoned entry the kernel never wrote is a mismatch).

The bug model this target carries (``bug-minus-one-slot``): a -1 slot gathered anyway. vLLM's
``deep_gemm_utils.py`` maps ids through ``apply_expert_map`` before the ``expert_id >= 0`` test;
its first form (still in the NPU ports of that file) had no ``if expert_id != -1`` guard, so a -1
became ``expert_map[-1]``, passed the test whenever the last global expert was local, and the
slot was gathered through an input_index entry the scatter never wrote.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch, compare_close
from moefuzz.model.target import OutputSpec
from moefuzz.model.validation import require_array
from moefuzz.strategies.expert_parallel import is_bf16_exact

#: Largest top-k of the contract.
MAX_TOPK = 8
#: Most local experts.
MAX_EXPERTS = 1024
#: Most received tokens.
MAX_TOKENS = 65536
#: Relative tolerance: one bf16 ulp.
RTOL = 2.0**-7
#: Absolute tolerance per unit of sum_k |w * x|: fp32 reassociation and FMA slack over 8 terms.
ATOL_OF_SUM = 2.0**-16


def check(case: Case) -> None:
    """Raise :class:`CaseError` when ``case`` violates the contract's preconditions."""
    values = require_array(case, "input_tensor", np.float32, 2)
    topk = require_array(case, "recv_topk", np.int32, 2)
    weight = require_array(case, "recv_topk_weight", np.float32, 2)
    index = require_array(case, "input_index", np.int32, 2)
    num_experts = case.params.get("num_experts")
    if isinstance(num_experts, bool) or not isinstance(num_experts, int) or not 1 <= num_experts <= MAX_EXPERTS:
        raise CaseError(f"param num_experts={num_experts!r} not an int in 1..{MAX_EXPERTS}")
    num_tokens, top_k = topk.shape
    num_rows, hidden = values.shape
    if not 1 <= top_k <= MAX_TOPK:
        raise CaseError(f"top_k K={top_k!r} outside 1..{MAX_TOPK}")
    if num_tokens > MAX_TOKENS:
        raise CaseError(f"num_tokens N={num_tokens!r} above {MAX_TOKENS}")
    if hidden < 1:
        raise CaseError(f"hidden size H={hidden!r} below 1")
    if weight.shape != topk.shape or index.shape != topk.shape:
        raise CaseError(
            f"shapes (recv_topk, recv_topk_weight, input_index)={(topk.shape, weight.shape, index.shape)!r}"
        )
    if topk.size and not ((topk >= -1) & (topk < num_experts)).all():
        bad = topk[(topk < -1) | (topk >= num_experts)][0]
        raise CaseError(f"recv_topk id={int(bad)!r} outside -1..num_experts-1={num_experts - 1}")
    exact = is_bf16_exact(values) | np.isnan(values)
    if not exact.all():
        m, d = (int(i) for i in np.argwhere(~exact)[0])
        raise CaseError(f"input_tensor[{m}, {d}]={float(values[m, d])!r} is neither a bf16 value nor NaN")
    valid = topk >= 0
    rows = index[valid]
    if rows.size and not ((rows >= 0) & (rows < num_rows)).all():
        t, k = (int(i) for i in np.argwhere(valid & ((index < 0) | (index >= num_rows)))[0])
        raise CaseError(f"input_index[{t}, {k}]={int(index[t, k])!r} of a valid slot outside 0..M-1={num_rows - 1}")
    if not np.isfinite(weight[valid]).all():
        t, k = (int(i) for i in np.argwhere(valid & ~np.isfinite(weight))[0])
        raise CaseError(f"recv_topk_weight[{t}, {k}]={float(weight[t, k])!r} of a valid slot is not finite")
    if rows.size and not np.isfinite(values[rows]).all():
        row = int(rows[~np.isfinite(values[rows]).all(axis=1)][0])
        raise CaseError(f"input_tensor row={row!r}, gathered by a valid slot, holds a non-finite value")


def output_specs(case: Case) -> dict[str, OutputSpec]:
    """Shape and dtype of the output buffer of ``case`` (float32 whatever the device dtype)."""
    return {
        "output_tensor": OutputSpec(
            (case.arrays["recv_topk"].shape[0], case.arrays["input_tensor"].shape[1]), "float32"
        )
    }


def magnitude(case: Case) -> np.ndarray:
    """[N, H] float64: sum over the valid slots k of |w[t, k] * input_tensor[input_index[t, k], d]|."""
    values = case.arrays["input_tensor"].astype(np.float64)
    topk, weight, index = (case.arrays[n] for n in ("recv_topk", "recv_topk_weight", "input_index"))
    total = np.zeros((topk.shape[0], values.shape[1]))
    for k in range(topk.shape[1]):
        valid = topk[:, k] >= 0
        total[valid] += np.abs(weight[valid, k].astype(np.float64)[:, None] * values[index[valid, k]])
    return total


def compare(case: Case, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """The first entry of output_tensor outside the tolerance of the module doc, or ``None``."""
    return compare_close(
        "output_tensor", tri["output_tensor"], ref["output_tensor"], rtol=RTOL, atol=ATOL_OF_SUM * magnitude(case)
    )


def _slot(case: Case, t: int, k: int, d: int) -> str:
    topk, weight, index = (case.arrays[n] for n in ("recv_topk", "recv_topk_weight", "input_index"))
    row, w = int(index[t, k]), float(weight[t, k])
    num_rows = case.arrays["input_tensor"].shape[0]
    value = (
        f"input_tensor[{row}, {d}]={float(case.arrays['input_tensor'][row, d])!r}" if 0 <= row < num_rows else "no row"
    )
    kind = f"expert {int(topk[t, k])}" if topk[t, k] >= 0 else "-1 (skip)"
    return f"k={k}: {kind}, input_index {row} ({value}), weight {w!r}"


def explain(case: Case, mismatch: Mismatch) -> str:
    """The token and column that differ, its slots, and the -1 slot whose term the kernel's
    value holds, if one does."""
    if mismatch.index < 0:
        return f"output_tensor has {mismatch.tri} entries, the contract wants {mismatch.ref}"
    hidden = case.arrays["input_tensor"].shape[1]
    t, d = divmod(mismatch.index, hidden)
    topk = case.arrays["recv_topk"]
    lines = [f"token t={t}, column d={d}: " + "; ".join(_slot(case, t, k, d) for k in range(topk.shape[1]))]
    values, weight, index = (case.arrays[n] for n in ("input_tensor", "recv_topk_weight", "input_index"))
    extra = float(mismatch.tri) - float(mismatch.ref)
    for k in np.flatnonzero(topk[t] < 0):
        row = int(index[t, k])
        if 0 <= row < values.shape[0]:
            term = float(weight[t, k]) * float(values[row, d])
            slack = 2 * RTOL * (abs(term) + abs(float(mismatch.ref)) + abs(float(mismatch.tri)))
            if (np.isnan(term) and np.isnan(extra)) or abs(term - extra) <= slack:
                lines.append(f"tri - ref = {extra!r} is slot k={k}'s term: the -1 slot was gathered, not skipped")
                break
    return "\n".join(lines)
