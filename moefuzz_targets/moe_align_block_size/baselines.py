"""moe_align_block_size's two benchmark baselines: a plain ``@given`` strategy and an engines-style grid.

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
    GIVEN_MAX_TOKENS,
    GIVEN_MAX_TOPK,
    Baselines,
    router_topk,
)

#: vLLM tests/kernels/moe/test_moe_align_block_size.py, with its top-k 16 and 32 replaced by
#: the contract's K <= 8.
ALIGN_TOKENS = (1, 3, 7, 16, 256, 2256, 4096)
ALIGN_TOPK = (1, 2, 6, 8)
ALIGN_EXPERTS = (32, 160, 256, 257, 512)
ALIGN_BLOCK_SIZES = (32, 64, 128, 256)

#: Its expert-map test: M x K, E = 8, block_size 64, the even experts local.
ALIGN_MAP_TOKENS = (16, 32)
ALIGN_MAP_TOPK = (2, 4)


def align_case(ids: np.ndarray, num_experts: int, block_size: int, pad: bool, expert_map: np.ndarray | None) -> Case:
    """The moe_align_block_size case of ``topk_ids`` [M, K] int32 and an optional
    ``expert_map`` [E] int32."""
    case_arrays = {"topk_ids": np.ascontiguousarray(ids, dtype=np.int32)}
    if expert_map is not None:
        case_arrays["expert_map"] = np.ascontiguousarray(expert_map, dtype=np.int32)
    return Case(case_arrays, {"num_experts": num_experts, "block_size": block_size, "pad_sorted_ids": pad})


@st.composite
def _moe_align_block_size_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    tokens = draw(st.integers(1, max_tokens))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    ids = draw(arrays(np.int32, (tokens, topk), elements=st.integers(-1, num_experts - 1)))
    expert_map = None
    if draw(st.booleans()):
        owners = draw(st.permutations(range(num_experts)))
        num_local = draw(st.integers(0, num_experts))
        expert_map = np.full(num_experts, -1, dtype=np.int32)
        expert_map[np.asarray(owners[:num_local], dtype=np.int64)] = np.arange(num_local)
    return align_case(ids, num_experts, draw(st.integers(1, 256)), draw(st.booleans()), expert_map)


def moe_align_block_size_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """M in 1..max_tokens, K in 1..8, E in 1..256, ids in [-1, E) (-1: the padding the
    ``ignore_invalid_experts`` mode skips), block_size in 1..256, pad_sorted_ids, and half the
    time an expert map: E_local experts of a permutation numbered 0..E_local-1."""
    return _moe_align_block_size_given(max_tokens)


def moe_align_block_size_grid(seed: int) -> Iterator[Case]:
    """vLLM's test_moe_align_block_size (M x K x E x block_size x pad_sorted_ids from
    :data:`ALIGN_TOKENS`...), then its expert-map test (the even experts local); ids from the
    router, no -1 (vLLM draws ``randperm(E)[:K]`` per token)."""
    generator = torch.Generator().manual_seed(seed)
    axes = (ALIGN_TOKENS, ALIGN_TOPK, ALIGN_EXPERTS, ALIGN_BLOCK_SIZES, (False, True))
    for tokens, topk, experts, block_size, pad in itertools.product(*axes):
        ids, _ = router_topk(generator, tokens, experts, topk)
        yield align_case(ids, experts, block_size, pad, None)
    experts = 8
    expert_map = np.full(experts, -1, dtype=np.int32)
    expert_map[0::2] = np.arange(experts // 2)
    for tokens, topk in itertools.product(ALIGN_MAP_TOKENS, ALIGN_MAP_TOPK):
        ids, _ = router_topk(generator, tokens, experts, topk)
        yield align_case(ids, experts, 64, False, expert_map)


BASELINES = Baselines("moe_align_block_size", moe_align_block_size_given, moe_align_block_size_grid)
