"""Contract of moe_align_block_size: group a routing table's items by expert, in blocks.

Source: vLLM ``csrc/moe/moe_align_sum_kernels.cu`` (``moe_align_block_size_kernel`` +
``count_and_sort_expert_tokens_kernel``, and ``moe_align_block_size_small_batch_expert_kernel``
for fewer than 1024 items and at most 64 experts) behind the Python wrapper
``vllm/model_executor/layers/fused_moe/moe_align_block_size.py::moe_align_block_size`` called
with ``ignore_invalid_experts=True``, the mode in which the kernel applies ``expert_map`` itself.

Input (a :class:`~moefuzz.model.case.Case`)::

    topk_ids         [M, K] int32    ids >= -1; 0 <= M <= 65536, 1 <= K <= 8
    num_experts      E               1 <= E <= 1024, the global expert count
    block_size       B               1 <= B <= 1024, rows of one block of the grouped GEMM
    pad_sorted_ids   bool            round the sorted_token_ids length up to a multiple of B
    expert_map       [E] int32       optional: global -> local id, -1 = another rank's expert;
                                     the non -1 entries are 0..E_local-1, each once, any order

An item is one (token t, k) slot; its flat index is i = t * K + k. Its expert is topk_ids[t, k],
mapped through expert_map when there is one; the item is skipped when the id is -1 or >= E, or
when its map entry is -1. Experts are numbered 0..E_eff-1 with E_eff = E_local with a map, E
without. Expert e's c_e items fill a segment of round_up(c_e, B) slots (zero blocks when c_e = 0),
the segments in expert order, the rest of the segment padded with the sentinel M * K. Outputs::

    sorted_token_ids        [max_num_tokens_padded] int32       segments, then M * K to the end
    expert_ids              [cdiv(max_num_tokens_padded, B)] int32  expert of each block; -1 past
                                                                    the last segment
    num_tokens_post_padded  [1] int32                            sum_e round_up(c_e, B)

with vLLM's buffer length, the global E even with a map::

    max_num_tokens_padded = M*K + E*(B-1), rounded up to a multiple of B if pad_sorted_ids,
                            then min(M*K*B, that) when M*K < E

Every entry is specified: vLLM fills the whole sorted_token_ids buffer with M*K before the sort,
and writes -1 (``inactive_expert_id``) into every expert_ids block past the segments (releases
before the multi-LoRA refactor wrote 0 there). Only the order of the items inside one segment is
free (upstream places them with atomicAdd): a segment is compared as a set.

The bug this target was built for: upstream's only guard is ``if (expert_id >= num_experts)
continue;`` (the small-batch kernel, without a map, has none), so a -1 padding id indexes the
per-expert counters: ``tokens_cnts[(tid + 1) * E + id]`` lands on the expert E-1 counter of the
previous thread's row, ``shared_counts[-1]`` before the array. The ``bug-negative-id`` model counts
and places a -1 item as expert E-1; the contract skips it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch, compare_exact
from moefuzz.model.target import OutputSpec
from moefuzz.model.validation import require_array, require_int_param
from moefuzz_targets.moe_align_block_size.sizes import max_num_tokens_padded

MAX_TOKENS = 65536
MAX_TOPK = 8
#: vLLM checks ``round_up(E, 32) < 1024`` (one thread per expert); moefuzz's kernel takes 1024.
MAX_EXPERTS = 1024
MAX_BLOCK_SIZE = 1024

OUTPUT_ORDER = ("num_tokens_post_padded", "expert_ids", "sorted_token_ids")


def check(case: Case) -> None:
    """Raise :class:`CaseError` when ``case`` violates the contract's preconditions."""
    ids = require_array(case, "topk_ids", np.int32, 2)  # [M, K]
    num_tokens, topk = ids.shape
    if not 1 <= topk <= MAX_TOPK:
        raise CaseError(f"topk K={topk!r} outside 1..{MAX_TOPK}")
    if num_tokens > MAX_TOKENS:
        raise CaseError(f"num_tokens M={num_tokens!r} above {MAX_TOKENS}")
    if ids.size and int(ids.min()) < -1:
        raise CaseError(f"topk_ids min={int(ids.min())!r} below -1 (the only negative id is the -1 sentinel)")
    num_experts = require_int_param(case, "num_experts", 1, MAX_EXPERTS)
    require_int_param(case, "block_size", 1, MAX_BLOCK_SIZE)
    pad = case.params.get("pad_sorted_ids")
    if not isinstance(pad, bool):
        raise CaseError(f"param pad_sorted_ids={pad!r} is not a bool")
    if "expert_map" in case.arrays:
        _check_expert_map(case.arrays["expert_map"], num_experts)


def _check_expert_map(expert_map: np.ndarray, num_experts: int) -> None:
    if expert_map.dtype != np.int32 or expert_map.shape != (num_experts,):
        raise CaseError(
            f"expert_map (dtype, shape)={(expert_map.dtype.str, expert_map.shape)!r}, not int32 "
            f"[num_experts={num_experts!r}]"
        )
    local = np.sort(expert_map[expert_map != -1])
    if not np.array_equal(local, np.arange(local.size)):
        raise CaseError(f"expert_map local ids={local.tolist()!r} are not 0..E_local-1 once each")


def output_specs(case: Case) -> dict[str, OutputSpec]:
    """Shape and dtype of each output buffer of ``case``."""
    block_size = int(case.params["block_size"])
    length = max_num_tokens_padded(
        case.arrays["topk_ids"].size,
        int(case.params["num_experts"]),
        block_size,
        bool(case.params["pad_sorted_ids"]),
    )
    return {
        "sorted_token_ids": OutputSpec((length,), "int32"),
        "expert_ids": OutputSpec((-(-length // block_size),), "int32"),
        "num_tokens_post_padded": OutputSpec((1,), "int32"),
    }


def segment_ids(expert_ids: np.ndarray, num_tokens_post_padded: int, block_size: int, length: int) -> np.ndarray:
    """[length] int64: the segment each slot of sorted_token_ids belongs to, from an oracle's
    expert_ids; slots past ``num_tokens_post_padded`` are each a segment of their own."""
    num_blocks = num_tokens_post_padded // block_size
    blocks = expert_ids[:num_blocks]
    run = np.concatenate([[0], np.cumsum(blocks[1:] != blocks[:-1])]) if num_blocks else np.zeros(0, np.int64)
    tail = np.arange(length - num_tokens_post_padded) + (int(run[-1]) + 1 if num_blocks else 0)
    return np.concatenate([np.repeat(run, block_size), tail]).astype(np.int64)


def compare(case: Case, tri: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> Mismatch | None:
    """The first mismatch, outputs in ``OUTPUT_ORDER``; sorted_token_ids is compared with both
    sides sorted inside each of the oracle's segments (order inside a segment is free)."""
    for name in OUTPUT_ORDER[:2]:
        mismatch = compare_exact(name, tri[name], ref[name])
        if mismatch is not None:
            return mismatch
    tri_sorted, ref_sorted = tri["sorted_token_ids"], ref["sorted_token_ids"]
    if tri_sorted.shape == ref_sorted.shape:
        block_size = int(case.params["block_size"])
        segments = segment_ids(ref["expert_ids"], int(ref["num_tokens_post_padded"][0]), block_size, ref_sorted.size)
        tri_sorted = tri_sorted[np.lexsort((tri_sorted, segments))]
        ref_sorted = ref_sorted[np.lexsort((ref_sorted, segments))]
    return compare_exact("sorted_token_ids", tri_sorted, ref_sorted)


# -- explanations ------------------------------------------------------------------------------
def _item(case: Case, flat: int) -> str:
    """``token t=.., k=.. (id ..)`` of flat index ``flat``, saying why the contract skips it."""
    ids = case.arrays["topk_ids"]
    topk = ids.shape[1]
    token, k = divmod(flat, topk)
    expert = int(ids[token, k])
    text = f"token t={token}, k={k} (id {expert}"
    expert_map = case.arrays.get("expert_map")
    num_experts = int(case.params["num_experts"])
    if expert == -1:
        text += ", the -1 sentinel: skipped"
    elif expert >= num_experts:
        text += f" >= num_experts={num_experts}: skipped"
    elif expert_map is not None:
        local = int(expert_map[expert])
        text += ", another rank's expert: skipped" if local == -1 else f", local expert {local}"
    return text + ")"


def _skip_masks(case: Case) -> dict[str, np.ndarray]:
    """[M * K] bool per reason the contract skips an item."""
    ids = case.arrays["topk_ids"].reshape(-1)
    num_experts = int(case.params["num_experts"])
    masks = {"ids -1": ids == -1, "ids >= num_experts": ids >= num_experts}
    expert_map = case.arrays.get("expert_map")
    if expert_map is not None:
        valid = (ids >= 0) & (ids < num_experts)
        masks["of other ranks"] = valid & (expert_map[np.clip(ids, 0, num_experts - 1)] == -1)
    return masks


def _num_skipped(case: Case) -> int:
    return int(sum(int(mask.sum()) for mask in _skip_masks(case).values()))


def _skipped(case: Case) -> str:
    """How many items the contract skips, and the first -1 sentinel among them."""
    masks = _skip_masks(case)
    parts = [f"{int(mask.sum())} {reason}" for reason, mask in masks.items()]
    minus_one = np.flatnonzero(masks["ids -1"])
    text = "skipped items: " + ", ".join(parts)
    if minus_one.size:
        text += f"; first -1 at {_item(case, int(minus_one[0]))}"
    return text


def _segment_of(case: Case, slot: int) -> str:
    """``in expert e's segment [a, b)``, or ``past the segments (...)``, of a sorted_token_ids slot."""
    ids = case.arrays["topk_ids"].reshape(-1).astype(np.int64)
    block_size = int(case.params["block_size"])
    kept = ~np.logical_or.reduce(list(_skip_masks(case).values()))
    expert_map = case.arrays.get("expert_map")
    experts = ids[kept] if expert_map is None else expert_map[ids[kept]].astype(np.int64)
    num_eff = int(case.params["num_experts"]) if expert_map is None else int((expert_map >= 0).sum())
    padded = -(-np.bincount(experts, minlength=num_eff) // block_size) * block_size
    ends = np.cumsum(padded)
    expert = int(np.searchsorted(ends, slot, side="right"))
    if expert >= num_eff:
        return f"past the segments (num_tokens_post_padded={int(padded.sum())})"
    return f"in expert {expert}'s segment [{int(ends[expert] - padded[expert])}, {int(ends[expert])})"


def explain(case: Case, mismatch: Mismatch) -> str:
    """One or two lines naming the block, segment or item that differs, and the skipped items."""
    numel = case.arrays["topk_ids"].size
    block_size = int(case.params["block_size"])
    if mismatch.index < 0:
        return f"{mismatch.output} has {mismatch.tri} entries, the contract wants {mismatch.ref}"
    if mismatch.output == "num_tokens_post_padded":
        kept = numel - _num_skipped(case)
        head = f"ref pads the {kept} kept items to {mismatch.ref} slots (block_size={block_size})"
        return f"{head}, the kernel to {mismatch.tri}\n{_skipped(case)}"
    if mismatch.output == "expert_ids":
        slots = f"slots [{mismatch.index * block_size}, {(mismatch.index + 1) * block_size})"
        what = "no expert (-1): past the last segment" if mismatch.ref == -1 else f"expert {mismatch.ref}"
        return f"block {mismatch.index} ({slots}) belongs to {what}, the kernel says {mismatch.tri}\n" + _skipped(case)
    tri = int(mismatch.tri)
    text = f"slot {mismatch.index} of sorted_token_ids, {_segment_of(case, mismatch.index)} (compared sorted): "
    text += f"ref {mismatch.ref}, kernel {tri}"
    if 0 <= tri < numel:
        text += f" = {_item(case, tri)}"
    elif tri != numel:
        text += f" (neither an item nor the sentinel M*K={numel})"
    return text
