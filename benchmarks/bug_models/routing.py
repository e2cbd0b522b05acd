"""Ground truth of the routing targets' bug models: where each bug lives and when it fires.

One :class:`~benchmarks.bug_models.BugModel` per ``bug-*`` kernel of three_step_sort,
moe_align_block_size, moe_permute, ep_gather and ep_scatter. Each predicate is read off the bug
kernel's code in ``moefuzz_targets/<target>/kernels.py`` (the function named in its docstring) and is
plain numpy on ``case.arrays`` / ``case.params``::

    target                kernel                       reached                  triggered
    three_step_sort       bug-duplicate-topk           T > 256                  + a token repeats a local expert
    moe_align_block_size  bug-negative-id              some id == -1            + no map, or expert_map[E-1] >= 0
    moe_permute           bug-sentinel-minus-one       E_local > 0, an id < 0   + expert_map[id + E] >= 0, -E <= id
    moe_permute           bug-sentinel-minus-one-oob   E_local > 0, an id < 0   = reached
    ep_gather             bug-minus-one-slot           a -1 slot                + in-range index, nonzero term
    ep_scatter            bug-stale-start-loc          every case               + some item (a GPU race)
    ep_scatter            bug-wide-local-experts       E local > 512            + an item below expert E - 1

Each ``minimum_case`` is the smallest failing case in its target's own size order
(``get_target(name).size``), worked out from the condition; none is larger than the reproducer
the fuzzer shrank to (``corpus/<target>/``, docs/gpu-results.md).
"""

from __future__ import annotations

import numpy as np

from benchmarks.bug_models import BugModel
from moefuzz.model.case import Case

#: three_step_sort's single-program path takes T <= BLOCK_TOKENS (moefuzz_targets/three_step_sort/kernels.py).
THREE_STEP_MIN_TOKENS = 257
#: Slots of ep_gather's term check per numpy step: bounds the [slots, H] temporary.
GATHER_SLOTS_PER_STEP = 4096


def _earlier_duplicate(ids: np.ndarray) -> np.ndarray:
    """[T, K] bool: ids[t, k] == ids[t, k'] for some k' < k (a repeat inside the token's top-k)."""
    if ids.shape[0] == 0 or ids.shape[1] < 2:
        return np.zeros(ids.shape, dtype=bool)
    same = ids[:, :, None] == ids[:, None, :]  # [T, K, K]: same[t, k, k'] = ids[t, k] == ids[t, k']
    return np.tril(same, k=-1).any(axis=2)


# -- three_step_sort: bug-duplicate-topk ---------------------------------------------------------
# Models flashinfer-ai/flashinfer#3011 (vllm-project/vllm#39244; seed
# flashinfer-three-step-sort-duplicate-topk.txt): blockExpertPrefixSumKernel `break`s after the
# first k of a token that matches an expert, so past 256 tokens a repeated expert counts once.
def duplicate_topk_reached(case: Case) -> bool:
    """T > 256: ``_launch`` sends ``token_selected_experts`` [T, K] int32 to the three-step path
    (``_block_rank_kernel`` / ``_scatter_kernel`` with DROP_DUPLICATES) only when
    ``num_tokens > BLOCK_TOKENS`` = 256; the fused kernel below it is correct."""
    return case.arrays["token_selected_experts"].shape[0] >= THREE_STEP_MIN_TOKENS


def duplicate_topk_triggered(case: Case) -> bool:
    """T > 256 and exists (t, k' < k): ids[t, k] == ids[t, k'] with s <= ids[t, k] < e.

    From ``_local_experts`` with DROP_DUPLICATES: an item whose id equals an earlier k's of the
    same token is not local, so N (``expert_first_token_offset[-1]``) drops by one per repeat.
    Exact: the count is always compared. ``token_selected_experts`` [T, K] int32, s, e =
    ``start_expert``, ``end_expert``.
    """
    if not duplicate_topk_reached(case):
        return False
    ids = case.arrays["token_selected_experts"]
    start, end = int(case.params["start_expert"]), int(case.params["end_expert"])
    local = (ids >= start) & (ids < end)
    return bool((_earlier_duplicate(ids) & local).any())


def duplicate_topk_minimum() -> Case:
    """(T, K, E, duplicates, distinct rows, E_local, sum |ids|) = (257, 2, 1, 1, 2, 1, 256).

    T = 257 is the first three-step size, K = 2 the fewest slots a repeat needs, E = E_local = 1
    (expert 0, local); one token [0, 0] and 256 alike rows [0, -1] (the cheapest distinct pair:
    sum |ids| = 1 each). The committed corpus reproducer is (257, 2, 3, 1, 2, 1, 260), shrunk before
    the routing layouts had a sentinel; with it the shrinker reaches this minimum."""
    ids = np.zeros((THREE_STEP_MIN_TOKENS, 2), dtype=np.int32)
    ids[:, 1] = -1
    ids[-1] = (0, 0)
    return Case({"token_selected_experts": ids}, {"num_experts": 1, "start_expert": 0, "end_expert": 1})


# -- moe_align_block_size: bug-negative-id ------------------------------------------------------
# Models vLLM's moe_align_block_size small-batch kernel before its -1 guard: the only check is
# `expert_id >= num_experts`, so a -1 padding id indexes tokens_cnts[(tid + 1) * E + id], the
# expert E-1 counter of the previous thread's row.
def negative_id_reached(case: Case) -> bool:
    """Some ``topk_ids`` [M, K] int32 entry is -1: it passes the unguarded ``ids < num_experts``
    test of ``_experts`` (NEGATIVE_ID_BUG) instead of being skipped."""
    return bool((case.arrays["topk_ids"] == -1).any())


def negative_id_triggered(case: Case) -> bool:
    """Exists (t, k): topk_ids[t, k] == -1, and no ``expert_map`` or expert_map[E - 1] >= 0.

    From ``_experts`` with NEGATIVE_ID_BUG: ``ids = where(ids < 0, ids + E, ids)`` turns -1 into
    expert E - 1, then the map (if any) keeps it when ``expert_map[E - 1]`` is local. The item
    then fills a slot of that expert's segment, so sorted_token_ids (compared as a set per
    segment) holds its flat index where the contract has the pad M * K. Exact.
    ``expert_map``: [E] int32, optional; E = ``num_experts``.
    """
    if not negative_id_reached(case):
        return False
    expert_map = case.arrays.get("expert_map")
    return expert_map is None or int(expert_map[int(case.params["num_experts"]) - 1]) >= 0


def negative_id_minimum() -> Case:
    """(M, K, E, duplicates, distinct rows, -, sum |ids|, has map, E_local, block_size, pad) =
    (1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0): ``topk_ids = [[-1]]``, E = 1, block_size 1, no map; the
    kernel pads the -1 to one slot, the contract to none. Equal to the corpus reproducer."""
    return Case(
        {"topk_ids": np.full((1, 1), -1, dtype=np.int32)},
        {"num_experts": 1, "block_size": 1, "pad_sorted_ids": False},
    )


# -- moe_permute: bug-sentinel-minus-one and bug-sentinel-minus-one-oob -------------------------
# Both model vllm-project/vllm#42034 (seed vllm-one-sided-padding-sentinel.txt): the one-sided
# dispatch pads each source rank with -1 and preprocessTopkIdKernel reads expert_map[topk_id]
# without a guard.
def sentinel_reached(case: Case) -> bool:
    """E_local > 0 and some ``topk_ids`` [R * M, K] int32 entry is negative: ``_block_items``
    looks a negative id up in ``expert_map`` [E] int32 unguarded (WRAP or READ_NEGATIVE_IDS);
    ``_launch`` runs no kernel when E_local = 0."""
    return bool((case.arrays["expert_map"] >= 0).any() and (case.arrays["topk_ids"] < 0).any())


def sentinel_wrap_triggered(case: Case) -> bool:
    """Exists (t, k): -E <= topk_ids[t, k] < 0 and expert_map[topk_ids[t, k] + E] >= 0.

    From ``_block_items`` with WRAP_NEGATIVE_IDS: ``ids + E`` for a negative id, then the lookup
    for 0 <= ids + E < E; a local entry makes the pad a local item, N grows. Exact (the offsets'
    last entry N is always compared). A -1 pad reads the map's last entry, expert_map[E - 1].
    """
    ids = case.arrays["topk_ids"].astype(np.int64)
    expert_map = case.arrays["expert_map"]
    num_experts = expert_map.shape[0]
    wrapped = ids[(ids < 0) & (ids >= -num_experts)] + num_experts
    return bool((expert_map[wrapped] >= 0).any())


def sentinel_oob_triggered(case: Case) -> bool:
    """E_local > 0 and some topk_ids[t, k] < 0: the same as :func:`sentinel_reached`.

    From ``_block_items`` with READ_NEGATIVE_IDS: ``known`` keeps every id < E, so a negative id
    loads ``expert_map[id]``, before the buffer; the interpreter's checker refuses it
    (``crash:out-of-bounds-load``). Exact on the CPU, where a load before the map lands in no
    buffer of the launch (one that did would read that buffer's int32 instead, unseen); on a
    GPU the load is undefined.
    """
    return sentinel_reached(case)


def sentinel_minimum() -> Case:
    """(T, K, E, E_local, real tokens, H, duplicates, distinct real rows, sum |real ids|) =
    (1, 1, 1, 1, 0, 1, 0, 0, 0): one rank of one padded row ``[[-1]]``, expert_map = [0], H = 1.
    Both bug models fail it (the wrap reads expert_map[0] = 0; the read loads expert_map[-1]).
    Equal to the corpus reproducer of bug-sentinel-minus-one."""
    return Case(
        {
            "topk_ids": np.full((1, 1), -1, dtype=np.int32),
            "num_tokens_per_rank": np.zeros(1, dtype=np.int32),
            "expert_map": np.zeros(1, dtype=np.int32),
            "hidden_states": np.zeros((1, 1), dtype=np.float32),
        },
        {"num_experts": 1, "num_local_experts": 1, "max_tokens_per_rank": 1, "sentinel": -1},
    )


# -- ep_gather: bug-minus-one-slot --------------------------------------------------------------
# Models vLLM deep_gemm_utils' apply_expert_map without its `expert_id != -1` guard: -1 became
# expert_map[-1], passed the gather's `expert_id >= 0` test, and the slot was summed through an
# input_index entry the scatter never wrote.
def minus_one_slot_reached(case: Case) -> bool:
    """Some ``recv_topk`` [N, K] int32 slot is -1: ``_gather_kernel`` (GATHER_MINUS_ONE) drops
    its ``expert >= 0`` test there."""
    return bool((case.arrays["recv_topk"] == -1).any())


def minus_one_slot_triggered(case: Case) -> bool:
    """Exists (t, k, d): recv_topk[t, k] == -1, 0 <= input_index[t, k] < M and
    w[t, k] * input_tensor[input_index[t, k], d] (fp32) is nonzero or NaN.

    From ``_gather_kernel`` with GATHER_MINUS_ONE: ``take = token`` for every slot, then only the
    ``0 <= row < num_rows`` mask, so the -1 slot's term joins the fp32 sum. Exact one way: a case
    that fails triggers it. Not the other: a term small beside the token's other terms can round
    away in bf16 or fall within the contract's tolerance (RTOL * |ref| + ATOL_OF_SUM * s).
    ``input_tensor`` [M, H] float32, ``recv_topk_weight`` w and ``input_index`` [N, K].
    """
    topk, index = case.arrays["recv_topk"], case.arrays["input_index"]
    values = case.arrays["input_tensor"]
    slots = (topk == -1) & (index >= 0) & (index < values.shape[0])
    rows = index[slots]
    weights = case.arrays["recv_topk_weight"][slots].astype(np.float32)
    with np.errstate(all="ignore"):
        for first in range(0, rows.size, GATHER_SLOTS_PER_STEP):
            step = slice(first, first + GATHER_SLOTS_PER_STEP)
            terms = weights[step, None] * values[rows[step]]  # [slots, H] float32
            if ((terms != 0) | np.isnan(terms)).any():
                return True
    return False


def minus_one_slot_minimum() -> Case:
    """(N, K, E, duplicates, distinct rows, -, sum |ids|, H, M) = (1, 1, 1, 0, 1, 0, 1, 1, 1):
    one token whose only slot is -1, its input_index 0 naming the one stale row [1.0] with
    weight 1.0; the kernel returns 1, the contract 0. The corpus reproducer has the same size
    (its stale row is NaN)."""
    return Case(
        {
            "input_tensor": np.ones((1, 1), dtype=np.float32),
            "recv_topk": np.full((1, 1), -1, dtype=np.int32),
            "recv_topk_weight": np.ones((1, 1), dtype=np.float32),
            "input_index": np.zeros((1, 1), dtype=np.int32),
        },
        {"num_experts": 1},
    )


# -- ep_scatter: bug-stale-start-loc ------------------------------------------------------------
# Models ModelTC/LightLLM _fwd_kernel_ep_scatter_1's cross-warp stale read of expert_start_loc
# (alibaba/rtp-llm#1098; seed lightllm-ep-scatter-stale-read.txt). A GPU race: the interpreter
# runs a program's operations in order and reads the right start.
def stale_start_reached(case: Case) -> bool:
    """Every case: each of the E programs of ``_expert_start_kernel`` (STALE_START_LOC) stores the
    prefix to ``expert_start_loc`` [E] int32 and loads its own start back, with no barrier."""
    return case.arrays["num_recv_tokens_per_expert"].shape[0] >= 1


def stale_start_triggered(case: Case) -> bool:
    """Exists (t, k): recv_topk[t, k] >= 0, i.e. some expert e has a_e > 0 aligned rows.

    From ``_expert_start_kernel``: a stale ``start`` is used only by the m_indices stores of the
    program's a_e rows, so a case can show it (a wrong m_indices row, or a wild store) only when
    some expert has items. Whether it does depends on the schedule and on the stale value (the
    buffer's old contents): on the CPU the bug model passes every case.
    ``recv_topk`` [N, K] int32, local ids or -1.
    """
    return bool((case.arrays["recv_topk"] >= 0).any())


def stale_start_minimum() -> Case:
    """(N, K, E, duplicates, distinct rows, -, sum |ids|, H) = (1, 1, 1, 0, 1, 0, 0, 1): one bf16
    token [1.0] on expert 0 (128 aligned rows). Its one program stores start 0 and reads it
    back: another warp may read the slot first. On an H200 (torch 2.11, triton 3.6) it failed at
    num_warps=32: crash:illegal-memory-access at the first launch with the default poison,
    divergence:m_indices in 1 of 200 with the -1 fill; 0 of 200 at num_warps 4, 8 and 16 (the
    correct kernel: 0 of 400 at 32). The fuzzer's shortest GPU reproducer was N = 1, K = 4, E = 9
    (docs/gpu-races.md)."""
    return Case(
        {
            "recv_x": np.ones((1, 1), dtype=np.float32),
            "recv_x_scale": np.zeros((1, 0), dtype=np.float32),
            "recv_topk": np.zeros((1, 1), dtype=np.int32),
            "num_recv_tokens_per_expert": np.full(1, 128, dtype=np.int32),
        },
        {"num_experts": 1, "dtype": "bf16"},
    )


# -- ep_scatter: bug-wide-local-experts ---------------------------------------------------------
# A domain-edge bug (issue 15): a prefix block sized for 512 local experts.
#: Local experts the ``bug-wide-local-experts`` prefix block holds (moefuzz_targets/ep_scatter/kernels.py).
WIDE_BLOCK = 512


def wide_reached(case: Case) -> bool:
    """E local > 512: experts from 512 on fall outside ``_expert_start_kernel``'s block."""
    return case.arrays["num_recv_tokens_per_expert"].shape[0] > WIDE_BLOCK


def wide_triggered(case: Case) -> bool:
    """E > 512 and some item on an expert below E - 1: expert e >= 512 reads its start as 0, so
    ``expert_start_loc[e]`` is wrong exactly when start_e > 0, i.e. an earlier expert has items;
    the last expert has the most earlier ones. ``recv_topk`` [N, K] int32, local ids or -1."""
    num_experts = case.arrays["num_recv_tokens_per_expert"].shape[0]
    ids = case.arrays["recv_topk"]
    return num_experts > WIDE_BLOCK and bool(((ids >= 0) & (ids < num_experts - 1)).any())


def wide_minimum() -> Case:
    """(N, K, E, duplicates, distinct rows, -, sum |ids|, H) = (1, 1, 513, 0, 1, 0, 0, 1): one
    bf16 token on expert 0 of 513; expert 512's cursor should be 128 (after expert 0's rows),
    the kernel leaves 0."""
    return Case(
        {
            "recv_x": np.ones((1, 1), dtype=np.float32),
            "recv_x_scale": np.zeros((1, 0), dtype=np.float32),
            "recv_topk": np.zeros((1, 1), dtype=np.int32),
            "num_recv_tokens_per_expert": np.array([128] + [0] * WIDE_BLOCK, dtype=np.int32),
        },
        {"num_experts": WIDE_BLOCK + 1, "dtype": "bf16"},
    )


BUG_MODELS: tuple[BugModel, ...] = (
    BugModel(
        "three_step_sort",
        "bug-duplicate-topk",
        duplicate_topk_reached,
        duplicate_topk_triggered,
        duplicate_topk_minimum(),
    ),
    BugModel(
        "moe_align_block_size",
        "bug-negative-id",
        negative_id_reached,
        negative_id_triggered,
        negative_id_minimum(),
    ),
    BugModel(
        "moe_permute",
        "bug-sentinel-minus-one",
        sentinel_reached,
        sentinel_wrap_triggered,
        sentinel_minimum(),
    ),
    BugModel(
        "moe_permute",
        "bug-sentinel-minus-one-oob",
        sentinel_reached,
        sentinel_oob_triggered,
        sentinel_minimum(),
    ),
    BugModel(
        "ep_gather",
        "bug-minus-one-slot",
        minus_one_slot_reached,
        minus_one_slot_triggered,
        minus_one_slot_minimum(),
    ),
    BugModel(
        "ep_scatter",
        "bug-stale-start-loc",
        stale_start_reached,
        stale_start_triggered,
        stale_start_minimum(),
        race=True,
        perturb=8,
    ),
    BugModel(
        "ep_scatter",
        "bug-wide-local-experts",
        wide_reached,
        wide_triggered,
        wide_minimum(),
    ),
)
