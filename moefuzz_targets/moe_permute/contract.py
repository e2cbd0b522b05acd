"""Contract of moe_permute with an expert map, on the table a one-sided dispatch delivers.

Source: vLLM ``csrc/moe/moe_permute_unpermute_op.cu`` (``moe_permute`` with ``expert_map``) and
``csrc/moe/permute_unpermute_kernels/moe_permute_unpermute_kernel.cu``
(``preprocessTopkIdKernel``, ``sortAndScanExpert``, ``expandInputRowsKernel``), fed by
``FlashInferNVLinkOneSidedPrepareAndFinalize`` which pads every source rank to the same length
(vllm-project/vllm#42034).

Input (a :class:`~moefuzz.model.case.Case`)::

    topk_ids             [R * M, K] int32   GLOBAL expert ids, any values; 1 <= K <= 16
    num_tokens_per_rank  [R] int32          real tokens of each source rank, 0 <= count <= M
    expert_map           [E] int32          local id of each global expert, -1 = another rank's;
                                            the local ids are a permutation of 0..E_local-1
    hidden_states        [R * M, H] float32 one row per received token; 1 <= H <= 4096
    num_experts          E                  = len(expert_map), 1 <= E <= 1024
    num_local_experts    E_local            = number of entries >= 0 in expert_map
    max_tokens_per_rank  M                  rows per source rank; R >= 1
    sentinel             the pad id         not a local expert (-1, E, or a non-local expert)

Layout: rows ``[r * M, r * M + num_tokens_per_rank[r])`` are rank r's tokens, the rest of its
segment is padding, whole rows of ``sentinel``. An item is one (token t, k) slot, flat index
``i = t * K + k`` (the ``token_expert_indices`` vLLM sorts). It is local when
``0 <= id < E`` and ``expert_map[id] >= 0``, with local expert ``expert_map[id]``; every other id
(-1 and other negatives, ids >= E, experts mapped to -1) is not local, whatever the row. N is the
number of local items. Outputs::

    expert_first_token_offset  [E_local + 1] int64   exclusive prefix of local counts; [-1] = N
    permuted_idx               [T * K] int32         p < N: flat index i of permuted row p
    inv_permuted_idx           [T * K] int32         local i: its permuted row p
    permuted_hidden_states     [T * K, H] float32    p < N: hidden_states[permuted_idx[p] // K]

Permuted rows are ordered by local expert, then i (so token, then k): vLLM sorts keys
(local id, or E + id for non-local, or E for invalid) with a stable radix sort over values
``i`` in increasing order. Entries p >= N and the entries of non-local items are unspecified
(vLLM writes p >= N rows of non-local items there): they are not compared. Every other entry
must be written.

The bug this target was built for (vllm-project/vllm#42034): ``preprocessTopkIdKernel`` without
its guard reads ``expert_map[topk_id]`` for a -1 pad, which is the map's last entry under
Python-style wrapping; when the last global expert is local, padded rows become local items.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch, compare_exact
from moefuzz.model.target import OutputSpec
from moefuzz.model.validation import require_array, require_int_param
from moefuzz.strategies.dispatch import padded_rows

#: Bounds the contract covers.
MAX_TOPK = 16
MAX_EXPERTS = 1024
MAX_TOKENS = 65536
MAX_HIDDEN = 4096

#: Outputs in the order ``compare`` checks them: offsets first (the count of local items is
#: the headline of every routing bug), the hidden rows last (they follow from permuted_idx).
OUTPUT_ORDER = ("expert_first_token_offset", "permuted_idx", "inv_permuted_idx", "permuted_hidden_states")

ARRAYS = {
    "topk_ids": ("int32", 2),
    "num_tokens_per_rank": ("int32", 1),
    "expert_map": ("int32", 1),
    "hidden_states": ("float32", 2),
}


def _check_arrays(case: Case) -> None:
    for name, (dtype, ndim) in ARRAYS.items():
        require_array(case, name, dtype, ndim)


def _check_expert_map(case: Case) -> None:
    expert_map = case.arrays["expert_map"]
    num_experts = require_int_param(case, "num_experts")
    if not 1 <= expert_map.shape[0] <= MAX_EXPERTS or expert_map.shape[0] != num_experts:
        raise CaseError(
            f"expert_map has {expert_map.shape[0]} entries; num_experts={num_experts!r} must equal it, "
            f"within 1..{MAX_EXPERTS}"
        )
    below = np.flatnonzero(expert_map < -1)
    if below.size:
        raise CaseError(f"expert_map[{int(below[0])}]={int(expert_map[below[0]])!r}: entries are -1 or local ids")
    local = np.sort(expert_map[expert_map >= 0])
    wrong = np.flatnonzero(local != np.arange(local.size))
    if wrong.size:
        raise CaseError(
            f"expert_map's local ids are not a permutation of 0..{local.size - 1}: sorted, they hold "
            f"{int(local[wrong[0]])!r} where {int(wrong[0])} belongs"
        )
    num_local = require_int_param(case, "num_local_experts")
    if num_local != local.size:
        raise CaseError(f"num_local_experts={num_local!r}, but expert_map has {local.size} local entries")


def _check_layout(case: Case) -> None:
    ids = case.arrays["topk_ids"]
    counts = case.arrays["num_tokens_per_rank"]
    rows, top_k = ids.shape
    per_rank = require_int_param(case, "max_tokens_per_rank")
    if not 1 <= top_k <= MAX_TOPK:
        raise CaseError(f"top_k K={top_k!r} outside 1..{MAX_TOPK}")
    if rows > MAX_TOKENS:
        raise CaseError(f"topk_ids has T={rows!r} rows, above {MAX_TOKENS}")
    if counts.shape[0] < 1 or per_rank < 0 or rows != counts.shape[0] * per_rank:
        raise CaseError(
            f"topk_ids has T={rows!r} rows, not R * M for R={counts.shape[0]!r} ranks and "
            f"max_tokens_per_rank={per_rank!r} (R >= 1)"
        )
    if ((counts < 0) | (counts > per_rank)).any():
        raise CaseError(f"num_tokens_per_rank={counts.tolist()!r} outside 0..max_tokens_per_rank={per_rank!r}")
    sentinel = require_int_param(case, "sentinel")
    expert_map = case.arrays["expert_map"]
    if 0 <= sentinel < expert_map.shape[0] and expert_map[sentinel] >= 0:
        raise CaseError(f"sentinel={sentinel!r} is a local expert (expert_map[{sentinel}]={expert_map[sentinel]!r})")
    padded = padded_rows(counts, per_rank)
    bad = np.flatnonzero(padded & (ids != sentinel).any(axis=1))
    if bad.size:
        row = int(bad[0])
        raise CaseError(
            f"padded row {row} (rank {row // per_rank}, row {row % per_rank}) holds "
            f"{ids[row].tolist()!r}, not whole rows of sentinel={sentinel!r}"
        )


def check(case: Case) -> None:
    """Raise :class:`CaseError` when ``case`` violates the contract's preconditions."""
    _check_arrays(case)
    _check_expert_map(case)
    _check_layout(case)
    hidden = case.arrays["hidden_states"]
    rows = case.arrays["topk_ids"].shape[0]
    if hidden.shape[0] != rows or not 1 <= hidden.shape[1] <= MAX_HIDDEN:
        raise CaseError(f"hidden_states shape={hidden.shape!r} must be [T={rows}, H] with H in 1..{MAX_HIDDEN}")


def derive(case: Case) -> Case:
    """Recompute the params the arrays determine (after a shrink pass edited them):
    ``num_experts``, ``num_local_experts`` and ``max_tokens_per_rank`` = T / R.

    Raises:
        CaseError: no ranks, or T not a multiple of R.
    """
    rows = case.arrays["topk_ids"].shape[0]
    ranks = case.arrays["num_tokens_per_rank"].shape[0]
    if ranks < 1 or rows % ranks:
        raise CaseError(f"topk_ids has T={rows!r} rows, not a multiple of R={ranks!r} ranks")
    expert_map = case.arrays["expert_map"]
    return case.replace(
        num_experts=int(expert_map.shape[0]),
        num_local_experts=int((expert_map >= 0).sum()),
        max_tokens_per_rank=rows // ranks,
    )


def output_specs(case: Case) -> dict[str, OutputSpec]:
    """Shape and dtype of each output buffer of ``case``."""
    rows, top_k = case.arrays["topk_ids"].shape
    hidden = case.arrays["hidden_states"].shape[1]
    items = rows * top_k
    return {
        "expert_first_token_offset": OutputSpec((int(case.params["num_local_experts"]) + 1,), "int64"),
        "permuted_idx": OutputSpec((items,), "int32"),
        "inv_permuted_idx": OutputSpec((items,), "int32"),
        "permuted_hidden_states": OutputSpec((items, hidden), "float32"),
    }


def local_expert_of_items(case: Case) -> np.ndarray:
    """[T * K] int64 by flat index i = t * K + k: the item's local expert, -1 if not local."""
    ids = case.arrays["topk_ids"].reshape(-1).astype(np.int64)
    expert_map = case.arrays["expert_map"]
    valid = (ids >= 0) & (ids < expert_map.shape[0])
    return np.where(valid, expert_map[np.where(valid, ids, 0)], -1).astype(np.int64)


def compare(case: Case, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """The first mismatch on the entries the contract specifies, outputs in ``OUTPUT_ORDER``."""
    local = local_expert_of_items(case) >= 0
    permuted = np.arange(local.size) < int(local.sum())
    where = {
        "expert_first_token_offset": None,
        "permuted_idx": permuted,
        "inv_permuted_idx": local,
        "permuted_hidden_states": np.broadcast_to(permuted[:, None], ref["permuted_hidden_states"].shape),
    }
    for name in OUTPUT_ORDER:
        mismatch = compare_exact(name, tri[name], ref[name], where[name])
        if mismatch is not None:
            return mismatch
    return None


# -- explanations ---------------------------------------------------------------------------
def describe_row(case: Case, row: int) -> str:
    """``rank r row j (padding|token)`` of topk_ids row ``row``."""
    per_rank = int(case.params["max_tokens_per_rank"])
    rank, j = divmod(row, per_rank)
    kind = "padding" if j >= case.arrays["num_tokens_per_rank"][rank] else "a real token"
    return f"rank {rank} row {j} ({kind})"


def describe_item(case: Case, item: int) -> str:
    """Item ``i``: its token, k, row in the layout, global expert and what expert_map says."""
    ids = case.arrays["topk_ids"]
    top_k = ids.shape[1]
    token, k = divmod(item, top_k)
    expert = int(ids[token, k])
    expert_map = case.arrays["expert_map"]
    if 0 <= expert < expert_map.shape[0]:
        local = int(expert_map[expert])
        where = f"local expert {local}" if local >= 0 else "not local"
        seen = f"expert {expert}, expert_map[{expert}]={local} ({where})"
    else:
        seen = f"expert {expert}, outside 0..{expert_map.shape[0] - 1} (not local)"
    return f"item i={item} (token t={token}, k={k}; {describe_row(case, token)}): {seen}"


def _padding_note(case: Case) -> str:
    """What the padded rows hold, and the map entry an unguarded lookup of a negative pad hits."""
    counts = case.arrays["num_tokens_per_rank"]
    per_rank = int(case.params["max_tokens_per_rank"])
    pads = int(padded_rows(counts, per_rank).sum())
    if pads == 0:
        return ""
    sentinel = int(case.params["sentinel"])
    text = f"{pads} padded row(s) hold sentinel {sentinel}, never a local item"
    expert_map = case.arrays["expert_map"]
    if -expert_map.shape[0] <= sentinel < 0:
        wrapped = sentinel + expert_map.shape[0]
        text += f"; expert_map[{sentinel}] would wrap to expert_map[{wrapped}]={int(expert_map[wrapped])}"
    return text


def explain(case: Case, mismatch: Mismatch) -> str:
    """One to three lines naming the item, row and expert (or the local expert) that differ."""
    if mismatch.index < 0:
        return f"{mismatch.output} has {mismatch.tri} entries, the contract wants {mismatch.ref}"
    local = local_expert_of_items(case)
    if mismatch.output == "expert_first_token_offset":
        num_local = int(case.params["num_local_experts"])
        index = mismatch.index
        if index == num_local:
            what = "the local item count N"
        else:
            owner = int(np.flatnonzero(case.arrays["expert_map"] == index)[0])
            what = f"local expert {index} (global {owner})"
        text = f"start of {what}: ref counts {mismatch.ref} local items before it, the kernel {mismatch.tri}"
        note = _padding_note(case)
        return text + (f"\n{note}" if note else "")
    if mismatch.output == "inv_permuted_idx":
        return describe_item(case, mismatch.index)
    # A permuted row (permuted_idx, or a value of permuted_hidden_states): the item put there.
    row = (
        mismatch.index // case.arrays["hidden_states"].shape[1]
        if mismatch.output == "permuted_hidden_states"
        else mismatch.index
    )
    items = np.flatnonzero(local >= 0)
    item = int(items[np.argsort(local[items], kind="stable")][row])
    return f"permuted row p={row} belongs to " + describe_item(case, item)
