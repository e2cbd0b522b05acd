"""Cases of ep_gather: the rows an ep_scatter laid out, and what the scatter left unwritten.

A received table (:func:`~moefuzz.strategies.expert_parallel.recv_topk_tables`) becomes
``recv_topk``; the oracle scatter's layout of it (:func:`scatter_layout`) gives M and the rows of
the valid slots of ``input_index``, optionally permuted inside each segment as a GPU scatter's
atomics order them. What the scatter never writes is drawn from what engines leave there:

- ``input_index`` of a -1 slot (:data:`UNWRITTEN_INDEX`): -1 (vLLM fills its inv_perm with -1),
  a stale in-range row (LightLLM allocates output_index with torch.empty: an earlier layer's
  value), or the int poison.
- ``recv_topk_weight`` of a -1 slot (:data:`SKIPPED_WEIGHTS`): 0 (DeepEP zeroes the weights of
  non-local experts) or the router's weight.
- padding rows of ``input_tensor`` (:data:`PADDING_ROWS`): NaN (never written), 0, or values.

Real rows and weights are random (bf16 values of moderate size; weights in [1/16, 1]).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from moefuzz.execute.poison import INT_POISON
from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.shrinking.routing import RoutingLayout
from moefuzz.strategies.expert_parallel import hidden_sizes, recv_topk_tables, scatter_layout, token_rows
from moefuzz_targets.ep_gather.contract import MAX_EXPERTS

#: The contract takes -1 in any slot (not on this rank; its weight and input_index: anything).
LAYOUT = RoutingLayout(
    ids="recv_topk", topk_arrays=("recv_topk_weight", "input_index"), num_experts="num_experts", sentinel=-1
)

#: What input_index holds where recv_topk is -1.
UNWRITTEN_INDEX = ("minus_one", "stale", "poison")
#: What recv_topk_weight holds where recv_topk is -1.
SKIPPED_WEIGHTS = ("zero", "router")
#: What the padding rows of input_tensor hold.
PADDING_ROWS = ("nan", "zero", "values")


def make_case(
    recv_topk: np.ndarray,
    num_experts: int,
    hidden: int,
    seed: int,
    *,
    unwritten_index: str = "minus_one",
    skipped_weight: str = "zero",
    padding_rows: str = "nan",
    atomic_order: bool = False,
) -> Case:
    """The ep_gather case of a received table (see the module doc for the keyword choices)."""
    rng = np.random.default_rng(seed)
    layout = scatter_layout(recv_topk, num_experts)
    index = layout.output_index.reshape(-1).copy()
    experts = recv_topk.reshape(-1).astype(np.int64)
    valid = experts >= 0
    if atomic_order:
        items = np.flatnonzero(valid)
        order = np.lexsort((rng.random(items.size), experts[items]))  # random order inside each expert
        first = np.cumsum(layout.counts) - layout.counts
        rank = np.arange(items.size) - first[experts[items][order]]
        index[items[order]] = layout.expert_start[experts[items][order]] + rank
    unwritten = {
        "minus_one": np.full(index.size, -1),
        "stale": rng.integers(0, max(layout.num_rows, 1), size=index.size),
        "poison": np.full(index.size, INT_POISON),
    }[unwritten_index]
    input_index = np.where(valid, index, unwritten).astype(np.int32).reshape(recv_topk.shape)
    weight = rng.uniform(1.0 / 16, 1.0, size=recv_topk.shape).astype(np.float32)
    if skipped_weight == "zero":
        weight[recv_topk < 0] = 0.0
    values = token_rows(rng, layout.num_rows, hidden, "bf16")
    is_real = np.zeros(layout.num_rows, dtype=bool)
    is_real[input_index[recv_topk >= 0]] = True
    if padding_rows != "values":
        values[~is_real] = np.nan if padding_rows == "nan" else 0.0
    return Case(
        {
            "input_tensor": values,
            "recv_topk": np.ascontiguousarray(recv_topk, dtype=np.int32),
            "recv_topk_weight": weight,
            "input_index": np.ascontiguousarray(input_index),
        },
        {"num_experts": num_experts},
    )


@st.composite
def cases(draw: st.DrawFn, limits: Limits) -> Case:
    """ep_gather cases within ``limits``: N up to ``limits.max_tokens``, K up to 8, E local up to
    1024, H from the hidden sizes (M x H kept to a few MiB), and the unwritten entries' modes."""
    recv = draw(
        recv_topk_tables(
            max_tokens=limits.max_tokens,
            max_topk=min(8, limits.max_topk),
            max_experts=min(MAX_EXPERTS, limits.max_experts),
        )
    )
    rows = scatter_layout(recv.recv_topk, recv.num_experts).num_rows
    hidden = draw(hidden_sizes(max(rows, recv.recv_topk.shape[0])), label="hidden")
    return make_case(
        recv.recv_topk,
        recv.num_experts,
        hidden,
        draw(st.integers(0, 2**32 - 1), label="values_seed"),
        unwritten_index=draw(st.sampled_from(UNWRITTEN_INDEX), label="unwritten_index"),
        skipped_weight=draw(st.sampled_from(SKIPPED_WEIGHTS), label="skipped_weight"),
        padding_rows=draw(st.sampled_from(PADDING_ROWS), label="padding_rows"),
        atomic_order=draw(st.booleans(), label="atomic_order"),
    )
