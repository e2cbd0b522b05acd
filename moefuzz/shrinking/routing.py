"""Shrink passes and the size order for cases built around a routing table [T, K] of expert ids.

A routing target names its table (``token_selected_experts``, ``topk_ids``...), the arrays that
share its token axis or its [T, K] layout (``topk_weights``...), and the params that hold the
expert count and the local range. :func:`routing_passes` then gives it passes that cut tokens,
top-k slots, experts and duplicates, and :func:`routing_size` the order they reduce:

    (T, K, E, duplicated slots, distinct rows, local experts, sum of |ids|)

so a reproducer ends with as few tokens as still fail, then as few slots, experts and
duplicates, then rows as alike as possible. A target whose token rows carry hidden states adds
:func:`hidden_pass` (fewer hidden columns). A target whose contract takes a "no expert" id in
any slot (the -1 of one-sided dispatch padding, of another rank's expert) names it as the
layout's ``sentinel``; only then do the passes write it (:func:`replace_duplicates_with_sentinel`,
:func:`retire_experts`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from moefuzz.model.case import Case
from moefuzz.shrinking.search import delete_runs, lower
from moefuzz.shrinking.shrinker import Shrinker, ShrinkPass


@dataclass(frozen=True)
class RoutingLayout:
    """Where a target keeps its routing table.

    Attributes:
        ids: name of the [T, K] int array of expert ids.
        token_arrays: other arrays whose first axis is the token axis (sliced with ``ids``).
        topk_arrays: other [T, K] arrays (columns dropped with ``ids``'s).
        num_experts: param holding E, or ``None``.
        start_expert, end_expert: params holding the local range, or ``None``.
        sentinel: an id the target's contract accepts in any slot of ``ids`` as "no expert"
            (skipped, never local), or ``None`` (the default) when it accepts none: set it only
            where the contract says so, because passes then write it into cases (the
            :data:`SENTINEL_PASSES`).
    """

    ids: str
    token_arrays: tuple[str, ...] = ()
    topk_arrays: tuple[str, ...] = ()
    num_experts: str | None = "num_experts"
    start_expert: str | None = None
    end_expert: str | None = None
    sentinel: int | None = None


def later_duplicates(ids: np.ndarray) -> np.ndarray:
    """[T, K] bool: entry (t, k) equals an entry (t, k') with k' < k in the same row."""
    if ids.shape[0] == 0 or ids.shape[1] < 2:
        return np.zeros(ids.shape, dtype=bool)
    eq = ids[:, :, None] == ids[:, None, :]
    return np.tril(eq, k=-1).any(axis=2)


def routing_size(layout: RoutingLayout) -> Callable[[Case], tuple[int, ...]]:
    """The size order of :mod:`this module's doc <moefuzz.shrinking.routing>` for ``layout``."""

    def size(case: Case) -> tuple[int, ...]:
        ids = case.arrays[layout.ids]
        tokens, topk = ids.shape
        experts = int(case.params.get(layout.num_experts, 0)) if layout.num_experts else 0
        local = _local_range(case, layout)
        distinct_rows = int(np.unique(ids, axis=0).shape[0]) if tokens else 0
        return (
            tokens,
            topk,
            experts,
            int(later_duplicates(ids).sum()),
            distinct_rows,
            local[1] - local[0] if local else 0,
            int(np.abs(ids.astype(np.int64)).sum()),
        )

    return size


#: Passes that write the layout's sentinel into cases: offered only when it names one.
SENTINEL_PASSES = ("replace_duplicates_with_sentinel", "retire_experts")


def routing_passes(layout: RoutingLayout) -> list[ShrinkPass]:
    """The routing passes for ``layout``: cheap bisections and big cuts first; the
    :data:`SENTINEL_PASSES` only when the layout names a ``sentinel``."""
    passes = [
        ShrinkPass(lambda s: truncate_tokens(s, layout), "truncate_tokens"),
        ShrinkPass(lambda s: drop_topk_slots(s, layout), "drop_topk_slots"),
        ShrinkPass(lambda s: compact_experts(s, layout), "compact_experts"),
        ShrinkPass(lambda s: lower_experts(s, layout), "lower_experts"),
        ShrinkPass(lambda s: remove_duplicates(s, layout), "remove_duplicates"),
        ShrinkPass(lambda s: replace_duplicates_with_sentinel(s, layout), "replace_duplicates_with_sentinel"),
        ShrinkPass(lambda s: unify_rows(s, layout), "unify_rows"),
        # About 2 runs per expert in use when every one is needed: after the cheaper passes.
        ShrinkPass(lambda s: retire_experts(s, layout), "retire_experts"),
        # Last: about 2T runs when no single token can go (a failure that needs T > 256).
        ShrinkPass(lambda s: drop_tokens(s, layout), "drop_tokens"),
    ]
    return [p for p in passes if layout.sentinel is not None or p.name not in SENTINEL_PASSES]


# -- passes ---------------------------------------------------------------------------------
def truncate_tokens(shrinker: Shrinker, layout: RoutingLayout) -> None:
    """Keep the shortest prefix of the tokens that still fails, then the shortest suffix of
    that, each found by bisection: about 2 log2(T) runs where deleting runs of tokens one by
    one would take T. Assumes (without relying on it) that longer prefixes fail if shorter do."""
    for from_end in (False, True):

        def prefix(tokens: int, from_end: bool = from_end) -> Case:
            keep = np.zeros(_tokens(shrinker.current, layout), dtype=bool)
            keep[slice(-tokens, None) if from_end else slice(None, tokens)] = True
            return _select_tokens(shrinker.current, layout, keep)

        lower(shrinker, _tokens(shrinker.current, layout), prefix, lowest=1)


def drop_tokens(shrinker: Shrinker, layout: RoutingLayout) -> None:
    """Delete runs of tokens (rows of every token-indexed array): halves first, then quarters,
    down to single tokens (delta debugging)."""
    delete_runs(shrinker, lambda case: _tokens(case, layout), lambda case, keep: _select_tokens(case, layout, keep))


def drop_topk_slots(shrinker: Shrinker, layout: RoutingLayout) -> None:
    """Delete one top-k slot (a column of every [T, K] array), last slot first."""
    slot = shrinker.current.arrays[layout.ids].shape[1] - 1
    while slot >= 0 and shrinker.current.arrays[layout.ids].shape[1] > 1 and not shrinker.exhausted:
        case = shrinker.current
        keep = np.ones(case.arrays[layout.ids].shape[1], dtype=bool)
        keep[slot] = False
        arrays = {name: np.ascontiguousarray(case.arrays[name][:, keep]) for name in (layout.ids, *layout.topk_arrays)}
        shrinker.consider(case.replace(arrays))
        slot -= 1


def compact_experts(shrinker: Shrinker, layout: RoutingLayout) -> None:
    """Renumber the experts in use to 0, 1, 2... keeping their order and keeping each on its
    side of the local range; drop unused experts from E and from the local range. Ids outside
    [0, E) (sentinels) become -1 if negative, else the new E."""
    if layout.num_experts is not None:
        shrinker.consider(compacted(shrinker.current, layout))


def lower_experts(
    shrinker: Shrinker,
    layout: RoutingLayout,
    compact: Callable[[Case], Case] | None = None,
    widen: Callable[[Case, int], Case] | None = None,
) -> None:
    """Lower E itself, by bisection, to the fewest experts that still fail: the experts in use
    renumbered 0, 1, 2... (``compact``, by default :func:`compacted`), then E widened to the
    candidate number (``widen(case, e)``, by default :func:`widened`: the added experts local if
    the local range ended at E).

    The move for a failure that needs many experts but few in use: a per-expert table sized
    from E, shared memory that grows with E. :func:`compact_experts` keeps only the experts in
    use, which such a failure does not survive, and the ids in use may be as large as E - 1.
    About log2(E) runs, and only when compacting alone passed."""
    if layout.num_experts is None:
        return
    compact = compact or (lambda case: compacted(case, layout))
    start = shrinker.current
    local = _local_range(start, layout)
    ends_at_e = local is not None and local[1] == int(start.params[layout.num_experts])
    add = widen or (lambda case, experts: widened(case, layout, experts, local=ends_at_e))
    base = compact(start)
    used = int(base.params[layout.num_experts])
    experts = int(start.params[layout.num_experts])
    if experts - used >= 2:  # one fewer than E is compact_experts' own candidate when all but one are in use
        lower(shrinker, experts, lambda e: add(base, e), lowest=used + 1)


def widened(case: Case, layout: RoutingLayout, experts: int, local: bool = False) -> Case:
    """``case`` with E raised to ``experts`` by unused experts numbered after the others: with
    ``local``, inside the local range, which then ends at the new E (for a case whose range
    ended at E: every expert local, often), else outside it."""
    assert layout.num_experts is not None
    params: dict[str, int] = {layout.num_experts: experts}
    if local and layout.end_expert:
        params[layout.end_expert] = experts
    return case.replace(None, **params)


def retire_experts(shrinker: Shrinker, layout: RoutingLayout, compact: Callable[[Case], Case] | None = None) -> None:
    """Replace every slot of a run of the experts in use by the layout's sentinel and drop those
    experts from E in the same candidate (``compact``, by default :func:`compacted`, renumbers
    the rest): half of the experts in use first, down to one at a time.

    The move that lowers E when every expert is in use: :func:`compact_experts` drops only
    unused ones, and a row like ``[0, 2]`` beside the failure's ``[1, 1]`` keeps experts 0 and 2
    in use. It keeps the failure's chance as dropping tokens does: the retired experts' items
    go, every token and every other item stays; a failure that needs an expert keeps it, since
    the candidates that retire it pass. Offered only with a ``sentinel``; the replaced slot may
    make a row hold the sentinel twice (a duplicate), which the smaller E outweighs."""
    sentinel = layout.sentinel
    num_experts = layout.num_experts
    if sentinel is None or num_experts is None:
        return
    compact = compact or (lambda case: compacted(case, layout))

    def in_use(case: Case) -> np.ndarray:
        ids = case.arrays[layout.ids]
        experts = int(case.params[num_experts])
        return np.unique(ids[(ids >= 0) & (ids < experts) & (ids != sentinel)])

    def without(case: Case, keep: np.ndarray) -> Case:
        ids = case.arrays[layout.ids]
        retired = np.isin(ids, in_use(case)[~keep])
        return compact(case.replace({layout.ids: np.where(retired, sentinel, ids).astype(ids.dtype)}))

    delete_runs(shrinker, lambda case: int(in_use(case).size), without)


def remove_duplicates(shrinker: Shrinker, layout: RoutingLayout) -> None:
    """Replace duplicated top-k entries by the smallest expert id missing from their row, all
    at once, then half of them, down to one at a time."""
    if layout.num_experts is None:
        return
    _replace_in_runs(
        shrinker,
        lambda case: np.argwhere(later_duplicates(case.arrays[layout.ids])),
        lambda case, positions: _replace_duplicates(case, layout, positions),
    )


def replace_duplicates_with_sentinel(shrinker: Shrinker, layout: RoutingLayout) -> None:
    """Replace duplicated top-k entries by the layout's sentinel (the contract's "no expert"
    id), all at once, then half of them, down to one at a time; at most one sentinel per row,
    and none in a row that holds it already (a second one would be a duplicate again).

    The move :func:`remove_duplicates` cannot make when a row holds every expert there is (E = 1:
    ``[0, 0]`` becomes ``[0, -1]``). It keeps the failure's chance as removing the duplicate
    does: the slot's item leaves every expert's count, the token and its other slots stay, and
    the failure's own duplicate, if it needs one, is one the candidates that fail leave alone."""
    sentinel = layout.sentinel
    if sentinel is None:
        return

    def positions(case: Case) -> np.ndarray:
        ids = case.arrays[layout.ids]
        return np.argwhere(later_duplicates(ids) & ~(ids == sentinel).any(axis=1, keepdims=True))

    def replace(case: Case, positions: np.ndarray) -> Case | None:
        new_ids = case.arrays[layout.ids].copy()
        changed = False
        for token, slot in positions:
            if not (new_ids[token] == sentinel).any():
                new_ids[token, slot] = sentinel
                changed = True
        return case.replace({layout.ids: new_ids}) if changed else None

    _replace_in_runs(shrinker, positions, replace)


def unify_rows(shrinker: Shrinker, layout: RoutingLayout) -> None:
    """Make runs of rows copies of the first row that has no duplicate (half the table, then
    quarters...), so the reproducer's rows are alike except where the failure needs them."""
    ids = shrinker.current.arrays[layout.ids]
    clean = np.flatnonzero(~later_duplicates(ids).any(axis=1))
    if clean.size == 0:
        return
    reference = ids[clean[0]].copy()
    chunk = max(1, ids.shape[0] // 2)
    while chunk >= 1 and not shrinker.exhausted:
        start = 0
        while start < shrinker.current.arrays[layout.ids].shape[0] and not shrinker.exhausted:
            current = shrinker.current.arrays[layout.ids]
            rows = np.arange(start, min(start + chunk, current.shape[0]))
            if (current[rows] != reference).any():
                new_ids = current.copy()
                new_ids[rows] = reference
                shrinker.consider(shrinker.current.replace({layout.ids: new_ids}))
            start += chunk
        chunk //= 2


def truncate_hidden(shrinker: Shrinker, hidden: Callable[[Case], int], cut: Callable[[Case, int], Case]) -> None:
    """Keep the fewest leading hidden columns that still fail, by bisection (1 first):
    ``hidden(case)`` is the case's hidden size H, ``cut(case, h)`` the case cut to its first
    ``h`` columns (with whatever depends on H, like the per-128 scales of fp8 rows)."""
    lower(shrinker, hidden(shrinker.current), lambda h: cut(shrinker.current, h), lowest=1, probes=(1,))


def hidden_pass(
    hidden: Callable[[Case], int], cut: Callable[[Case, int], Case], name: str = "truncate_hidden"
) -> ShrinkPass:
    """The :func:`truncate_hidden` pass of a target whose token rows have a hidden axis."""
    return ShrinkPass(lambda s: truncate_hidden(s, hidden, cut), name)


def hidden_columns(*names: str) -> tuple[Callable[[Case], int], Callable[[Case, int], Case]]:
    """``(hidden, cut)`` for :func:`hidden_pass` when the hidden axis is axis 1 of the arrays
    ``names`` (all of one H, the first one's giving it) and nothing else depends on H."""

    def hidden(case: Case) -> int:
        return int(case.arrays[names[0]].shape[1])

    def cut(case: Case, columns: int) -> Case:
        return case.replace({name: np.ascontiguousarray(case.arrays[name][:, :columns]) for name in names})

    return hidden, cut


def compacted(case: Case, layout: RoutingLayout) -> Case:
    """``case`` with the experts in use renumbered 0, 1, 2... in order, each kept on its side of
    the local range, and the unused ones dropped from E and from the local range (at least one
    expert stays). Ids outside [0, E) become -1 if negative, else the new E."""
    assert layout.num_experts is not None
    ids = case.arrays[layout.ids].astype(np.int64)
    experts = int(case.params[layout.num_experts])
    local = _local_range(case, layout) or (0, experts)
    valid = (ids >= 0) & (ids < experts)
    used = np.unique(ids[valid])
    below = used[used < local[0]]
    inside = used[(used >= local[0]) & (used < local[1])]
    above = used[used >= local[1]]
    order = np.concatenate([below, inside, above])
    new_experts = max(1, int(order.size))
    remap = np.full(experts, -1, dtype=np.int64)
    remap[order] = np.arange(order.size)
    new_ids = np.where(valid, remap[np.clip(ids, 0, experts - 1)], np.where(ids < 0, -1, new_experts))
    params: dict[str, int] = {layout.num_experts: new_experts}
    if layout.start_expert and layout.end_expert:
        params[layout.start_expert] = int(below.size)
        params[layout.end_expert] = int(below.size + inside.size)
    return case.replace({layout.ids: new_ids.astype(case.arrays[layout.ids].dtype)}, **params)


# -- helpers --------------------------------------------------------------------------------
def _tokens(case: Case, layout: RoutingLayout) -> int:
    return int(case.arrays[layout.ids].shape[0])


def _select_tokens(case: Case, layout: RoutingLayout, keep: np.ndarray) -> Case:
    names: Sequence[str] = (layout.ids, *layout.token_arrays, *layout.topk_arrays)
    return case.replace({name: np.ascontiguousarray(case.arrays[name][keep]) for name in dict.fromkeys(names)})


def _local_range(case: Case, layout: RoutingLayout) -> tuple[int, int] | None:
    if layout.start_expert and layout.end_expert:
        return int(case.params[layout.start_expert]), int(case.params[layout.end_expert])
    return None


def _replace_in_runs(
    shrinker: Shrinker,
    positions: Callable[[Case], np.ndarray],
    replace: Callable[[Case, np.ndarray], Case | None],
) -> None:
    """Propose ``replace(case, run)`` for runs of the [n, 2] (token, slot) ``positions(case)``:
    all of them, then halves, down to one at a time (``None``: no candidate for that run)."""
    chunk = max(1, len(positions(shrinker.current)))
    while chunk >= 1 and not shrinker.exhausted:
        start = 0
        current = positions(shrinker.current)
        while start < len(current) and not shrinker.exhausted:
            candidate = replace(shrinker.current, current[start : start + chunk])
            if candidate is not None and shrinker.consider(candidate):
                current = positions(shrinker.current)
            else:
                start += chunk
        chunk //= 2


def _replace_duplicates(case: Case, layout: RoutingLayout, positions: np.ndarray) -> Case | None:
    assert layout.num_experts is not None
    experts = int(case.params[layout.num_experts])
    new_ids = case.arrays[layout.ids].copy()
    for token, slot in positions:
        present = set(new_ids[token].tolist())
        free = next((e for e in range(experts) if e not in present), None)
        if free is None:
            return None
        new_ids[token, slot] = free
    return case.replace({layout.ids: new_ids})
