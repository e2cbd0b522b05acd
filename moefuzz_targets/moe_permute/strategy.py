"""Cases of moe_permute, drawn from the engine's one-sided dispatch strategy.

The :class:`~moefuzz.strategies.dispatch.DispatchedTable` gives ``topk_ids``,
``num_tokens_per_rank``, ``expert_map`` and the sentinel; this module adds ``hidden_states`` of a
few small widths H, multiples of the kernel's 64-column step and not. Nothing is filtered: every
dispatched table is a legal input of the contract.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.strategies.dispatch import DispatchedTable, dispatched_tables
from moefuzz_targets.moe_permute.contract import MAX_EXPERTS

#: Hidden widths: one column, odd, one 64-column step exactly, one and a bit, two and a bit.
#: Small on purpose: the rows are copied, not computed on, and the interpreter pays per element;
#: 128 and the contract's 4096 where the table is small (:data:`MAX_PERMUTED_ELEMENTS`).
HIDDEN_SIZES = (1, 7, 64, 100, 136, 128, 4096)
#: Most entries of the [T * K, H] permuted rows a case may ask for (a few MiB).
MAX_PERMUTED_ELEMENTS = 1 << 21


def hidden_rows(num_rows: int, hidden_size: int) -> np.ndarray:
    """[T, H] float32 with ``hidden_states[t, h] = t + h / 256``: the integer part names the
    row, so a row copied to the wrong place reads as the wrong token (exact for T < 65536)."""
    rows = np.arange(num_rows, dtype=np.float64)[:, None]
    cols = np.arange(hidden_size, dtype=np.float64)[None, :] / 256.0
    return np.ascontiguousarray(rows + cols, dtype=np.float32)


def to_case(table: DispatchedTable, hidden_size: int) -> Case:
    """The moe_permute case of a dispatched table, with hidden rows H wide."""
    return Case(
        {
            "topk_ids": table.topk_ids,
            "num_tokens_per_rank": table.num_tokens_per_rank,
            "expert_map": table.expert_map,
            "hidden_states": hidden_rows(table.topk_ids.shape[0], hidden_size),
        },
        {
            "num_experts": table.num_experts,
            "num_local_experts": table.num_local_experts,
            "max_tokens_per_rank": table.max_tokens_per_rank,
            "sentinel": table.sentinel,
        },
    )


def dispatched_case(
    ranks: Sequence[Sequence[Sequence[int]]],
    expert_map: Sequence[int],
    sentinel: int,
    *,
    max_tokens_per_rank: int | None = None,
    top_k: int | None = None,
    hidden_size: int = 1,
) -> Case:
    """A case written by hand: each rank's real token rows, padded with ``sentinel`` rows to
    ``max_tokens_per_rank`` (default: the longest rank); ``top_k`` is needed when no rank has a
    row. Hidden rows are :func:`hidden_rows`."""
    per_rank = max_tokens_per_rank if max_tokens_per_rank is not None else max((len(r) for r in ranks), default=0)
    first_row = next((row for rank in ranks for row in rank), None)
    if top_k is None and first_row is None:
        raise ValueError("dispatched_case needs top_k when no rank has a row")
    width = top_k if top_k is not None else len(first_row)  # type: ignore[arg-type]
    ids = np.full((len(ranks), per_rank, width), sentinel, dtype=np.int32)
    for rank, rows in enumerate(ranks):
        if len(rows):
            ids[rank, : len(rows)] = np.asarray(rows, dtype=np.int32).reshape(len(rows), width)
    mapping = np.asarray(expert_map, dtype=np.int32)
    return Case(
        {
            "topk_ids": np.ascontiguousarray(ids.reshape(-1, width)),
            "num_tokens_per_rank": np.array([len(r) for r in ranks], dtype=np.int32),
            "expert_map": mapping,
            "hidden_states": hidden_rows(len(ranks) * per_rank, hidden_size),
        },
        {
            "num_experts": int(mapping.shape[0]),
            "num_local_experts": int((mapping >= 0).sum()),
            "max_tokens_per_rank": per_rank,
            "sentinel": sentinel,
        },
    )


def cases(limits: Limits) -> st.SearchStrategy[Case]:
    """moe_permute cases within ``limits``: R source ranks padded to M rows each (R * M up to
    ``limits.max_tokens``), K up to 8, E up to 1024, H from :data:`HIDDEN_SIZES` as far as
    the T * K x H permuted rows stay within :data:`MAX_PERMUTED_ELEMENTS`."""
    tables = dispatched_tables(
        max_tokens=limits.max_tokens,
        max_topk=min(8, limits.max_topk),
        max_experts=min(MAX_EXPERTS, limits.max_experts),
    )
    return tables.flatmap(lambda table: hidden_sizes(table.topk_ids.size).map(lambda h: to_case(table, h)))


def hidden_sizes(items: int) -> st.SearchStrategy[int]:
    """One of :data:`HIDDEN_SIZES` with ``items * H <= MAX_PERMUTED_ELEMENTS`` (at least 1)."""
    return st.sampled_from([h for h in HIDDEN_SIZES if max(items, 1) * h <= MAX_PERMUTED_ELEMENTS] or [1])
