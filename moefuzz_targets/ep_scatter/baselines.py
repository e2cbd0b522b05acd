"""ep_scatter's two benchmark baselines: a plain ``@given`` strategy and an engines-style grid.

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


def scatter_case(recv_x: np.ndarray, scale: np.ndarray, recv_topk: np.ndarray, num_experts: int, dtype: str) -> Case:
    """The ep_scatter case: ``recv_x`` [N, H] float32 (exact in ``dtype``), ``recv_x_scale``
    [N, S] float32, ``recv_topk`` [N, K] int32 local ids or -1; the aligned counts derived."""
    return Case(
        {
            "recv_x": np.ascontiguousarray(recv_x, dtype=np.float32),
            "recv_x_scale": np.ascontiguousarray(scale, dtype=np.float32),
            "recv_topk": np.ascontiguousarray(recv_topk, dtype=np.int32),
            "num_recv_tokens_per_expert": aligned_counts(recv_topk, num_experts),
        },
        {"num_experts": num_experts, "dtype": dtype},
    )


def scale_columns(hidden: int, dtype: str) -> int:
    """S: one scale per 128 columns for fp8 (DeepGEMM's 1x128 quantization), none for bf16."""
    return -(-hidden // 128) if dtype == "fp8" else 0


@st.composite
def _ep_scatter_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    tokens = draw(st.integers(1, max_tokens))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    dtype = draw(st.sampled_from(("bf16", "fp8")))
    hidden = draw(st.integers(1, GIVEN_MAX_HIDDEN))
    recv_topk = draw(arrays(np.int32, (tokens, topk), elements=st.integers(-1, num_experts - 1)))
    recv_x = exact_values(draw, (tokens, hidden))
    steps = draw(arrays(np.int16, (tokens, scale_columns(hidden, dtype)), elements=st.integers(1, 1024)))
    return scatter_case(recv_x, steps.astype(np.float32) / 1024, recv_topk, num_experts, dtype)


def ep_scatter_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """N in 1..max_tokens, K in 1..8, E (local) in 1..256, bf16 or fp8, H in 1..256, ids in
    [-1, E), token values i / 4 (exact in both dtypes), fp8 scales in (0, 1]."""
    return _ep_scatter_given(max_tokens)


def ep_scatter_grid(seed: int) -> Iterator[Case]:
    """N x K x E x ep_size x dtype of :data:`GRID_TOKENS` x :data:`GRID_TOPK` x
    :data:`GRID_EXPERTS` x :data:`GRID_EP_SIZES` x (bf16, fp8), K <= E: the tokens a rank
    receives, in local ids (-1 for the other ranks' experts) as DeepEP hands them over, H = 2048
    random rows cast to the dtype, random per-128 scales (the LightLLM / DLBlas tests)."""
    generator = torch.Generator().manual_seed(seed)
    axes = (GRID_TOKENS, GRID_TOPK, GRID_EXPERTS, GRID_EP_SIZES, ("bf16", "fp8"))
    for tokens, topk, experts, ep_size, dtype in itertools.product(*axes):
        if topk > experts:
            continue
        recv_topk, _, num_local = received_tokens(generator, tokens, experts, topk, ep_size)
        rows = torch.randn(tokens, GRID_HIDDEN, generator=generator)
        cast = torch.float8_e4m3fn if dtype == "fp8" else torch.bfloat16
        scale = torch.rand(tokens, scale_columns(GRID_HIDDEN, dtype), generator=generator) + 2.0**-10
        yield scatter_case(rows.to(cast).float().numpy(), scale.numpy(), recv_topk, num_local, dtype)


BASELINES = Baselines("ep_scatter", ep_scatter_given, ep_scatter_grid)
