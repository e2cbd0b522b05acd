"""Contract of the three-step sort: the permutation prologue of a fused-MoE layer.

Source: TensorRT-LLM / FlashInfer ``csrc/fused_moe/cutlass_backend/cutlass_fused_moe_kernels.cuh``,
``threeStepBuildExpertMapsSortFirstToken`` (T > 256: per-block prefix sums, a global prefix, a
merge) and ``fusedBuildExpertMapsSortFirstTokenKernel`` (T <= 256, one thread block).

Input (a :class:`~moefuzz.model.case.Case`)::

    token_selected_experts  [T, K] int32   any ids; 0 <= T <= 65536, 1 <= K <= 8
    num_experts             E              E <= 1024
    start_expert, end_expert s, e          0 <= s <= e <= E; local experts are s <= id < e

An item is one (token t, k) slot; its unpermuted row is u = k * T + t (k-major). It is local when
s <= id < e, with local expert id - s; ids outside [s, e) (-1 sentinels, ids >= E) are not local.
A repeated id in one token's top-k is legal, and every occurrence is an item of its own. N is the
number of local items. Outputs::

    expert_first_token_offset        [E_local + 1] int64  exclusive prefix of per-expert counts; [-1] = N
    permuted_row_to_unpermuted_row   [T * K] int32        p < N: u of permuted row p
    unpermuted_row_to_permuted_row   [T * K] int32        local u: p with p2u[p] = u
    permuted_token_selected_experts  [T * K] int32        p < N: local expert of permuted row p

Permuted rows are ordered by local expert, then token t, then k. Entries p >= N and the entries
u of non-local items are unspecified (not compared); every other entry must be written.

The bug this target was built for (flashinfer-ai/flashinfer#3011, vllm-project/vllm#39244): the
T > 256 path's ``blockExpertPrefixSumKernel`` ``break``s after the first k of a token that matches
an expert, so a repeated expert is counted once and its later slots are never written.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch, compare_exact
from moefuzz.model.target import OutputSpec
from moefuzz.model.validation import require_array, require_int_param

#: Largest top-k of the upstream kernels.
MAX_TOPK = 8
#: Largest global expert count the contract covers.
MAX_EXPERTS = 1024
#: Largest token count the contract covers.
MAX_TOKENS = 65536

OUTPUT_ORDER = (
    "expert_first_token_offset",
    "permuted_row_to_unpermuted_row",
    "permuted_token_selected_experts",
    "unpermuted_row_to_permuted_row",
)


def check(case: Case) -> None:
    """Raise :class:`CaseError` when ``case`` violates the contract's preconditions."""
    experts = require_array(case, "token_selected_experts", np.int32, 2)  # [T, K]
    num_tokens, top_k = experts.shape
    if not 1 <= top_k <= MAX_TOPK:
        raise CaseError(f"top_k K={top_k!r} outside 1..{MAX_TOPK}")
    if num_tokens > MAX_TOKENS:
        raise CaseError(f"num_tokens T={num_tokens!r} above {MAX_TOKENS}")
    num_experts = require_int_param(case, "num_experts")
    start = require_int_param(case, "start_expert")
    end = require_int_param(case, "end_expert")
    if num_experts > MAX_EXPERTS:
        raise CaseError(f"num_experts={num_experts!r} above {MAX_EXPERTS}")
    if not 0 <= start <= end <= num_experts:
        raise CaseError(
            f"local range (start_expert, end_expert)={(start, end)!r} not within 0 <= s <= e <= "
            f"num_experts={num_experts!r}"
        )


def output_specs(case: Case) -> dict[str, OutputSpec]:
    """Shape and dtype of each output buffer of ``case``."""
    num_tokens, top_k = case.arrays["token_selected_experts"].shape
    num_local = int(case.params["end_expert"]) - int(case.params["start_expert"])
    rows = (num_tokens * top_k,)
    return {
        "expert_first_token_offset": OutputSpec((num_local + 1,), "int64"),
        "permuted_row_to_unpermuted_row": OutputSpec(rows, "int32"),
        "unpermuted_row_to_permuted_row": OutputSpec(rows, "int32"),
        "permuted_token_selected_experts": OutputSpec(rows, "int32"),
    }


def _local_rows(case: Case) -> np.ndarray:
    """[T * K] bool, indexed by unpermuted row u = k * T + t: is item u local?"""
    experts = case.arrays["token_selected_experts"]
    start, end = int(case.params["start_expert"]), int(case.params["end_expert"])
    return ((experts >= start) & (experts < end)).T.reshape(-1)


def compare(case: Case, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """The first mismatch on the entries the contract specifies, outputs in ``OUTPUT_ORDER``."""
    local = _local_rows(case)
    permuted = np.arange(local.size) < int(local.sum())
    where = {
        "expert_first_token_offset": None,
        "permuted_row_to_unpermuted_row": permuted,
        "permuted_token_selected_experts": permuted,
        "unpermuted_row_to_permuted_row": local,
    }
    for name in OUTPUT_ORDER:
        mismatch = compare_exact(name, tri[name], ref[name], where[name])
        if mismatch is not None:
            return mismatch
    return None


def _describe_item(case: Case, token: int, k: int) -> str:
    """``token t=.., k=.., expert ..`` plus the earlier k of the same expert in that top-k, if any."""
    experts = case.arrays["token_selected_experts"]
    start = int(case.params["start_expert"])
    expert = int(experts[token, k])
    text = f"token t={token}, k={k}, expert {expert} (local {expert - start})"
    earlier = np.flatnonzero(experts[token, :k] == expert)
    if earlier.size:
        text += f", a duplicate of k={int(earlier[0])} in that token's top-k"
    return text


def _first_duplicate(case: Case, below_local_expert: int) -> tuple[int, int] | None:
    """(t, k) of the first repeated local expert < ``below_local_expert`` in one token's top-k."""
    experts = case.arrays["token_selected_experts"]
    start = int(case.params["start_expert"])
    for token in range(experts.shape[0]):
        for k in range(1, experts.shape[1]):
            local = int(experts[token, k]) - start
            if 0 <= local < below_local_expert and (experts[token, :k] == experts[token, k]).any():
                return token, k
    return None


def explain(case: Case, mismatch: Mismatch) -> str:
    """One or two lines naming the token, k and expert (or the local expert) that differ."""
    num_tokens = case.arrays["token_selected_experts"].shape[0]
    start = int(case.params["start_expert"])
    index = mismatch.index
    if index < 0:
        return f"{mismatch.output} has {mismatch.tri} entries, the contract wants {mismatch.ref}"
    if mismatch.output == "expert_first_token_offset":
        num_local = int(case.params["end_expert"]) - start
        what = "the local item count N" if index == num_local else f"local expert {index} (global {start + index})"
        text = f"start of {what}: ref counts {mismatch.ref} local items before it, the kernel {mismatch.tri}"
        duplicate = _first_duplicate(case, index)
        if duplicate is not None:
            text += "\nfirst repeated expert among them: " + _describe_item(case, *duplicate)
        return text
    if mismatch.output == "unpermuted_row_to_permuted_row":
        return f"unpermuted row u={index}: " + _describe_item(case, index % num_tokens, index // num_tokens)
    # A permuted row: find the item the contract puts there.
    local = _local_rows(case)
    rows = np.flatnonzero(local)
    experts_by_row = case.arrays["token_selected_experts"].T.reshape(-1)[rows]
    tokens = rows % num_tokens
    order = np.lexsort((rows // num_tokens, tokens, experts_by_row))
    row = int(rows[order[index]])
    return f"permuted row p={index} belongs to " + _describe_item(case, row % num_tokens, row // num_tokens)
