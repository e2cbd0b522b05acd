"""moe_permute's two benchmark baselines: a plain ``@given`` strategy and an engines-style grid.

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
    GRID_HIDDEN,
    Baselines,
    draw_rank,
    ep_split,
    exact_values,
    router_topk,
)

#: vLLM tests/kernels/moe/test_moe_permute_unpermute.py (n_hidden 2048 only: 7168 is above
#: the contract's H <= 4096; align_block_size is not part of the contract).
PERMUTE_TOKENS = (1, 33, 1024, 5000)
PERMUTE_EXPERTS = (16, 64, 256)
PERMUTE_TOPK = (2, 6, 8)
PERMUTE_EP_SIZES = (1, 4, 16)


def permute_case(
    ids: np.ndarray, num_tokens_per_rank: np.ndarray, expert_map: np.ndarray, sentinel: int, hidden: np.ndarray
) -> Case:
    """The moe_permute case: ``topk_ids`` [R * M, K] int32 (padded rows already ``sentinel``),
    ``num_tokens_per_rank`` [R] int32, ``expert_map`` [E] int32, ``hidden_states`` [R * M, H]."""
    per_rank = ids.shape[0] // num_tokens_per_rank.shape[0]
    return Case(
        {
            "topk_ids": np.ascontiguousarray(ids, dtype=np.int32),
            "num_tokens_per_rank": np.ascontiguousarray(num_tokens_per_rank, dtype=np.int32),
            "expert_map": np.ascontiguousarray(expert_map, dtype=np.int32),
            "hidden_states": np.ascontiguousarray(hidden, dtype=np.float32),
        },
        {
            "num_experts": int(expert_map.shape[0]),
            "num_local_experts": int((expert_map >= 0).sum()),
            "max_tokens_per_rank": per_rank,
            "sentinel": sentinel,
        },
    )


@st.composite
def _moe_permute_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    ranks = draw(st.integers(1, 8))
    per_rank = draw(st.integers(0, max_tokens // ranks))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    owners = draw(st.permutations(range(num_experts)))
    num_local = draw(st.integers(0, num_experts))
    expert_map = np.full(num_experts, -1, dtype=np.int32)
    expert_map[np.asarray(owners[:num_local], dtype=np.int64)] = np.arange(num_local)
    counts = draw(arrays(np.int32, (ranks,), elements=st.integers(0, per_rank)))
    ids = draw(arrays(np.int32, (ranks * per_rank, topk), elements=st.integers(0, num_experts - 1)))
    sentinel = draw(st.sampled_from((-1, num_experts)))
    padded = (np.arange(ranks * per_rank) % max(per_rank, 1)) >= np.repeat(counts, per_rank)
    ids[padded] = sentinel
    hidden = exact_values(draw, (ranks * per_rank, draw(st.integers(1, GIVEN_MAX_HIDDEN))))
    return permute_case(ids, counts, expert_map, sentinel, hidden)


def moe_permute_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """R in 1..8 source ranks of M rows (R * M <= max_tokens), K in 1..8, E in 1..256, an expert
    map of E_local experts of a permutation, each rank's real count in 0..M, real ids in [0, E),
    padded rows whole rows of the sentinel -1 or E, H in 1..256."""
    return _moe_permute_given(max_tokens)


def moe_permute_grid(seed: int) -> Iterator[Case]:
    """vLLM's test_moe_permute_unpermute: T x E x K x ep_size from :data:`PERMUTE_TOKENS`...,
    H = 2048, ids from the router, the rank drawn from the seed with vLLM's linear expert map.
    One source rank, every row a real token (vLLM's test dispatches nothing, so no row is
    padded; the sentinel is the one-sided dispatch's -1)."""
    generator = torch.Generator().manual_seed(seed)
    axes = (PERMUTE_TOKENS, PERMUTE_EXPERTS, PERMUTE_TOPK, PERMUTE_EP_SIZES)
    for tokens, experts, topk, ep_size in itertools.product(*axes):
        start, end = ep_split(experts, ep_size, draw_rank(generator, ep_size))
        expert_map = np.full(experts, -1, dtype=np.int32)
        expert_map[start:end] = np.arange(end - start)
        ids, _ = router_topk(generator, tokens, experts, topk)
        hidden = torch.randn(tokens, GRID_HIDDEN, generator=generator).numpy()
        yield permute_case(ids, np.array([tokens], dtype=np.int32), expert_map, -1, hidden)


BASELINES = Baselines("moe_permute", moe_permute_given, moe_permute_grid)
