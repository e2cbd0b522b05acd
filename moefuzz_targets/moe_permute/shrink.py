"""Shrink passes for moe_permute cases that keep the one-sided dispatch layout.

A case is R rank segments of M rows, real tokens first and whole sentinel rows after them. The
engine's token passes would cut through segments, so these passes cut whole ranks, rows of
every segment at once, or real tokens (a dropped token's segment gets one more padded row);
they drop global experts nobody routes to and make local experts remote. ``drop_topk_slots`` of
:mod:`moefuzz.shrinking.routing` applies as is (a padded row minus a slot is still padding).
Passes edit arrays only; the target's ``derive`` recomputes the params. The size order::

    (T, K, E, E_local, real tokens, H, duplicated real slots, distinct real rows, sum |real ids|)

ends a reproducer with as few rows (ranks x rows per rank), slots and experts as still fail,
then as few real tokens, hidden columns (the engine's ``truncate_hidden``) and duplicates,
then real rows as alike as possible.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking.passes import Shrinker, ShrinkPass, delete_runs, lower
from moefuzz.shrinking.routing import RoutingLayout, drop_topk_slots, hidden_columns, hidden_pass, later_duplicates
from moefuzz.strategies.dispatch import padded_rows

LAYOUT = RoutingLayout(ids="topk_ids", num_experts="num_experts")


def size(case: Case) -> tuple[int, ...]:
    """The size order of this module's doc."""
    ids = case.arrays["topk_ids"]
    rows, top_k = ids.shape
    real = ids[~_padded(case)]
    return (
        rows,
        top_k,
        int(case.arrays["expert_map"].shape[0]),
        int((case.arrays["expert_map"] >= 0).sum()),
        int(real.shape[0]),
        int(case.arrays["hidden_states"].shape[1]),
        int(later_duplicates(real).sum()),
        int(np.unique(real, axis=0).shape[0]) if real.shape[0] else 0,
        int(np.abs(real.astype(np.int64)).sum()),
    )


def passes() -> list[ShrinkPass]:
    """The passes, big cuts first."""
    return [
        ShrinkPass(drop_ranks),
        ShrinkPass(truncate_ranks),
        ShrinkPass(keep_one_topk_slot),
        ShrinkPass(lambda s: drop_topk_slots(s, LAYOUT), "drop_topk_slots"),
        ShrinkPass(drop_unused_experts),
        ShrinkPass(make_local_experts_remote),
        ShrinkPass(drop_real_tokens),
        hidden_pass(*hidden_columns("hidden_states")),
        ShrinkPass(unify_real_rows),
    ]


# -- passes ---------------------------------------------------------------------------------
def drop_ranks(shrinker: Shrinker) -> None:
    """Delete source ranks (their segments and counts): halves first, down to single ranks;
    one rank always stays."""
    delete_runs(shrinker, _ranks, _select_ranks, keep_one=True)


def truncate_ranks(shrinker: Shrinker) -> None:
    """Lower M, by bisection (M' = 1 first): keep the first M' rows of every segment (real tokens
    past M' go), then the last M' rows (the first real tokens go, the padding stays). One row
    first because every accepted candidate of a crash costs a worker on a GPU, and a failure of
    one padded row, the sentinel's, needs no more: one accept where bisection takes log2(M)."""
    for from_end in (False, True):

        def kept(rows: int, from_end: bool = from_end) -> Case:
            return _keep_rows(shrinker.current, rows, from_end)

        lower(shrinker, _per_rank(shrinker.current), kept, lowest=1, probes=(1,))


def keep_one_topk_slot(shrinker: Shrinker) -> None:
    """Keep a single top-k slot (one column of topk_ids), the first slot first; stop at the first
    that fails. K = 1 in one accepted candidate, where ``drop_topk_slots`` takes K - 1 (each a
    worker when the failure is a crash on a GPU); a padded row minus slots is still padding."""
    top_k = shrinker.current.arrays["topk_ids"].shape[1]
    for slot in range(top_k if top_k > 1 else 0):
        if shrinker.exhausted:
            return
        ids = np.ascontiguousarray(shrinker.current.arrays["topk_ids"][:, slot : slot + 1])
        if shrinker.consider(shrinker.current.replace({"topk_ids": ids})):
            return


def drop_real_tokens(shrinker: Shrinker) -> None:
    """Delete real tokens (delta debugging over all ranks' real rows, halves down to single
    ones); each rank's remaining tokens move up and padding fills its segment to M."""
    delete_runs(
        shrinker,
        lambda case: int(_real_rows(case).size),
        lambda case, keep: _drop_rows(case, _real_rows(case)[~keep]),
    )


def drop_unused_experts(shrinker: Shrinker) -> None:
    """Delete global experts no real token routes to (and that are not the sentinel): all at
    once, then halves, down to one at a time. Local ids stay in order, renumbered from 0;
    ids above the deleted experts move down, ids >= E keep their distance to E.

    When every expert is unused (only padding left) deleting all of them is no case (E >= 1),
    so first one expert alone is kept: the last local one, else the last one. One accepted
    candidate where halving takes log2(E), each a worker for a crash on a GPU."""
    unused = _unused_experts(shrinker.current)
    if unused.size == shrinker.current.arrays["expert_map"].shape[0]:
        local = np.flatnonzero(shrinker.current.arrays["expert_map"] >= 0)
        for kept in dict.fromkeys((*local[-1:].tolist(), int(unused[-1]))):
            candidate = _drop_experts(shrinker.current, unused[unused != kept])
            if shrinker.exhausted or (candidate is not None and shrinker.consider(candidate)):
                break
    delete_runs(
        shrinker,
        lambda case: int(_unused_experts(case).size),
        lambda case, keep: _drop_experts(case, _unused_experts(case)[~keep]),
        all_first=True,
    )


def make_local_experts_remote(shrinker: Shrinker) -> None:
    """Map one local expert to -1 (another rank's), last global expert first; the other local
    ids are renumbered in order."""
    for expert in np.flatnonzero(shrinker.current.arrays["expert_map"] >= 0)[::-1]:
        if shrinker.exhausted:
            return
        expert_map = shrinker.current.arrays["expert_map"].copy()
        expert_map[expert] = -1
        shrinker.consider(shrinker.current.replace({"expert_map": _renumber_local(expert_map)}))


def unify_real_rows(shrinker: Shrinker) -> None:
    """Make runs of real rows copies of the first real row without a duplicate (half of them,
    then quarters...), so the reproducer's tokens are alike except where the failure needs."""
    ids = shrinker.current.arrays["topk_ids"]
    real = _real_rows(shrinker.current)
    clean = real[~later_duplicates(ids[real]).any(axis=1)]
    if clean.size == 0:
        return
    reference = ids[clean[0]].copy()
    chunk = max(1, real.size // 2)
    while chunk >= 1 and not shrinker.exhausted:
        for start in range(0, real.size, chunk):
            if shrinker.exhausted:
                return
            current = shrinker.current.arrays["topk_ids"]
            rows = real[start : start + chunk]
            if (current[rows] != reference).any():
                new_ids = current.copy()
                new_ids[rows] = reference
                shrinker.consider(shrinker.current.replace({"topk_ids": new_ids}))
        chunk //= 2


# -- helpers --------------------------------------------------------------------------------
def _ranks(case: Case) -> int:
    return int(case.arrays["num_tokens_per_rank"].shape[0])


def _per_rank(case: Case) -> int:
    return int(case.arrays["topk_ids"].shape[0]) // max(1, _ranks(case))


def _padded(case: Case) -> np.ndarray:
    return padded_rows(case.arrays["num_tokens_per_rank"], _per_rank(case))


def _real_rows(case: Case) -> np.ndarray:
    return np.flatnonzero(~_padded(case))


def _segments(case: Case, name: str) -> np.ndarray:
    """``name`` ([T, ...]) viewed as [R, M, ...]."""
    array = case.arrays[name]
    return array.reshape(_ranks(case), _per_rank(case), *array.shape[1:])


def _with_segments(case: Case, segments: Callable[[str], np.ndarray], counts: np.ndarray) -> Case:
    arrays = {
        name: np.ascontiguousarray(segments(name).reshape(-1, *case.arrays[name].shape[1:]))
        for name in ("topk_ids", "hidden_states")
    }
    arrays["num_tokens_per_rank"] = np.ascontiguousarray(counts, dtype=np.int32)
    return case.replace(arrays)


def _select_ranks(case: Case, keep: np.ndarray) -> Case:
    return _with_segments(case, lambda name: _segments(case, name)[keep], case.arrays["num_tokens_per_rank"][keep])


def _keep_rows(case: Case, rows: int, from_end: bool) -> Case:
    """Each segment's first (or last) ``rows`` rows; the layout holds because padding trails."""
    per_rank = _per_rank(case)
    counts = case.arrays["num_tokens_per_rank"].astype(np.int64)
    if from_end:
        window = slice(per_rank - rows, per_rank)
        counts = np.maximum(0, counts - (per_rank - rows))
    else:
        window = slice(0, rows)
        counts = np.minimum(counts, rows)
    return _with_segments(case, lambda name: _segments(case, name)[:, window], counts)


def _drop_rows(case: Case, rows: np.ndarray) -> Case:
    """Delete real rows ``rows``; every segment is refilled to M with padding (hidden row 0)."""
    per_rank = _per_rank(case)
    dropped = np.zeros(case.arrays["topk_ids"].shape[0], dtype=bool)
    dropped[rows] = True
    keep = ~_padded(case) & ~dropped
    ids = np.full_like(case.arrays["topk_ids"], int(case.params["sentinel"]))
    hidden = np.zeros_like(case.arrays["hidden_states"])
    counts = keep.reshape(_ranks(case), per_rank).sum(axis=1)
    for rank, count in enumerate(counts):
        source = rank * per_rank + np.flatnonzero(keep[rank * per_rank : (rank + 1) * per_rank])
        ids[rank * per_rank : rank * per_rank + count] = case.arrays["topk_ids"][source]
        hidden[rank * per_rank : rank * per_rank + count] = case.arrays["hidden_states"][source]
    return case.replace({"topk_ids": ids, "hidden_states": hidden, "num_tokens_per_rank": counts.astype(np.int32)})


def _unused_experts(case: Case) -> np.ndarray:
    """Global experts that no real row names and that are not the sentinel."""
    num_experts = case.arrays["expert_map"].shape[0]
    used = np.zeros(num_experts, dtype=bool)
    real = case.arrays["topk_ids"][~_padded(case)].reshape(-1)
    used[real[(real >= 0) & (real < num_experts)]] = True
    sentinel = int(case.params["sentinel"])
    if 0 <= sentinel < num_experts:
        used[sentinel] = True
    return np.flatnonzero(~used)


def _drop_experts(case: Case, experts: np.ndarray) -> Case | None:
    expert_map = case.arrays["expert_map"]
    num_experts = expert_map.shape[0]
    keep = np.ones(num_experts, dtype=bool)
    keep[experts] = False
    if not keep.any():
        return None
    removed = num_experts - int(keep.sum())
    new_index = np.cumsum(keep) - 1  # new id of each kept expert

    def remap(ids: np.ndarray) -> np.ndarray:
        wide = ids.astype(np.int64)
        valid = (wide >= 0) & (wide < num_experts)
        moved = np.where(valid, new_index[np.clip(wide, 0, num_experts - 1)], wide)
        return np.where(wide >= num_experts, wide - removed, moved)

    sentinel = int(remap(np.array([int(case.params["sentinel"])]))[0])
    new_map = _renumber_local(expert_map[keep])
    return case.replace(
        {"topk_ids": remap(case.arrays["topk_ids"]).astype(np.int32), "expert_map": new_map}, sentinel=sentinel
    )


def _renumber_local(expert_map: np.ndarray) -> np.ndarray:
    """The same map with its local ids renumbered 0..n-1 in their old order."""
    local = expert_map >= 0
    renumbered = expert_map.copy()
    renumbered[local] = np.argsort(np.argsort(expert_map[local], kind="stable"), kind="stable")
    return renumbered.astype(np.int32)
