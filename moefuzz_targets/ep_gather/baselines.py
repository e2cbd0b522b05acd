"""ep_gather's two benchmark baselines: a plain ``@given`` strategy and an engines-style grid.

What a property test written without moefuzz would draw (see
:class:`~moefuzz_targets.shared.baselines.Baselines`); ``benchmarks.baselines`` runs them. Uses
nothing from :mod:`moefuzz.strategies`, the thing compared against.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from moefuzz.model.case import Case
from moefuzz_targets.shared.baselines import (
    GIVEN_MAX_EXPERTS,
    GIVEN_MAX_HIDDEN,
    GIVEN_MAX_TOKENS,
    GIVEN_MAX_TOPK,
    GRID_EP_SIZES,
    GRID_EXPERTS,
    GRID_HIDDEN,
    GRID_TOKENS,
    GRID_TOPK,
    Baselines,
    aligned_counts,
    exact_values,
    received_tokens,
)


def scatter_rows(recv_topk: np.ndarray, num_experts: int) -> tuple[np.ndarray, int]:
    """``(input_index, M)``: [N, K] int32 the row of each item in ep_scatter's layout (expert
    e's items fill rows [start_e, start_e + n_e) in (t, k) order, start_e the prefix of the
    aligned counts), 0 where recv_topk is -1 (an unwritten ``zeros_like`` buffer), and M."""
    aligned = aligned_counts(recv_topk, num_experts).astype(np.int64)
    start = np.cumsum(aligned) - aligned
    flat = recv_topk.reshape(-1).astype(np.int64)
    items = np.flatnonzero(flat >= 0)
    experts = flat[items]
    order = np.argsort(experts, kind="stable")
    counts = np.bincount(experts, minlength=num_experts)
    first = np.cumsum(counts) - counts  # where each expert's items start in `order`
    rank = np.empty(items.size, dtype=np.int64)
    rank[order] = np.arange(items.size) - first[experts[order]]
    index = np.zeros(flat.size, dtype=np.int64)
    index[items] = start[experts] + rank
    return index.reshape(recv_topk.shape).astype(np.int32), int(aligned.sum())


def gather_case(
    values: np.ndarray, recv_topk: np.ndarray, weights: np.ndarray, index: np.ndarray, experts: int
) -> Case:
    """The ep_gather case: ``input_tensor`` [M, H] float32 (bf16-exact), ``recv_topk``,
    ``recv_topk_weight`` and ``input_index`` [N, K]."""
    return Case(
        {
            "input_tensor": np.ascontiguousarray(values, dtype=np.float32),
            "recv_topk": np.ascontiguousarray(recv_topk, dtype=np.int32),
            "recv_topk_weight": np.ascontiguousarray(weights, dtype=np.float32),
            "input_index": np.ascontiguousarray(index, dtype=np.int32),
        },
        {"num_experts": experts},
    )


@st.composite
def _ep_gather_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    tokens = draw(st.integers(1, max_tokens))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    rows = draw(st.integers(1, 2 * max_tokens))
    hidden = draw(st.integers(1, GIVEN_MAX_HIDDEN))
    recv_topk = draw(arrays(np.int32, (tokens, topk), elements=st.integers(-1, num_experts - 1)))
    sixteenths = draw(arrays(np.int8, (tokens, topk), elements=st.integers(0, 16)))
    index = draw(arrays(np.int32, (tokens, topk), elements=st.integers(0, rows - 1)))
    return gather_case(exact_values(draw, (rows, hidden)), recv_topk, sixteenths / 16, index, num_experts)


def ep_gather_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """N in 1..max_tokens, K in 1..8, E (local) in 1..256, M in 1..2 * max_tokens rows of H in
    1..256, ids in [-1, E), weights in [0, 1] (sixteenths), every input_index in [0, M) (legal
    for every slot: the contract reads only the valid ones), values i / 4 (bf16-exact)."""
    return _ep_gather_given(max_tokens)


def ep_gather_grid(seed: int) -> Iterator[Case]:
    """N x K x E x ep_size of :data:`GRID_TOKENS` x :data:`GRID_TOPK` x :data:`GRID_EXPERTS` x
    :data:`GRID_EP_SIZES`, K <= E: the received tokens as in :func:`ep_scatter_grid`, the
    router's weights on every slot (vLLM hands topk_weights over unchanged), input_index from
    the scatter's layout with 0 in the -1 slots (the tests' ``zeros_like`` output_index), and
    M x 2048 random bf16 rows, padding rows included (the grouped GEMM writes all M)."""
    generator = torch.Generator().manual_seed(seed)
    for tokens, topk, experts, ep_size in itertools.product(GRID_TOKENS, GRID_TOPK, GRID_EXPERTS, GRID_EP_SIZES):
        if topk > experts:
            continue
        recv_topk, weights, num_local = received_tokens(generator, tokens, experts, topk, ep_size)
        index, rows = scatter_rows(recv_topk, num_local)
        values = torch.randn(rows, GRID_HIDDEN, generator=generator).to(torch.bfloat16).float().numpy()
        yield gather_case(values, recv_topk, weights, index, num_local)


BASELINES = Baselines("ep_gather", ep_gather_given, ep_gather_grid)
