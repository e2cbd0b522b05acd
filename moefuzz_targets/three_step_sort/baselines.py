"""three_step_sort's two benchmark baselines: a plain ``@given`` strategy and an engines-style grid.

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
    GRID_EXPERTS,
    GRID_TOKENS,
    GRID_TOPK,
    Baselines,
    router_topk,
)


def three_step_case(ids: np.ndarray, num_experts: int, start: int, end: int) -> Case:
    """The three_step_sort case of ``token_selected_experts`` [T, K] int32 and a local range."""
    return Case(
        {"token_selected_experts": np.ascontiguousarray(ids, dtype=np.int32)},
        {"num_experts": num_experts, "start_expert": start, "end_expert": end},
    )


@st.composite
def _three_step_sort_given(draw: st.DrawFn, max_tokens: int) -> Case:
    num_experts = draw(st.integers(1, GIVEN_MAX_EXPERTS))
    tokens = draw(st.integers(1, max_tokens))
    topk = draw(st.integers(1, GIVEN_MAX_TOPK))
    start = draw(st.integers(0, num_experts))
    end = draw(st.integers(start, num_experts))
    ids = draw(arrays(np.int32, (tokens, topk), elements=st.integers(0, num_experts - 1)))
    return three_step_case(ids, num_experts, start, end)


def three_step_sort_given(max_tokens: int = GIVEN_MAX_TOKENS) -> st.SearchStrategy[Case]:
    """T in 1..max_tokens, K in 1..8, E in 1..256, a local range s <= e, ids in [0, E)."""
    return _three_step_sort_given(max_tokens)


def three_step_sort_grid(seed: int) -> Iterator[Case]:
    """T x K x E of :data:`GRID_TOKENS` x :data:`GRID_TOPK` x :data:`GRID_EXPERTS` (K <= E), ids
    from the router, the whole range local (one rank, as the FlashInfer / vLLM tests run it)."""
    generator = torch.Generator().manual_seed(seed)
    for tokens, topk, experts in itertools.product(GRID_TOKENS, GRID_TOPK, GRID_EXPERTS):
        if topk <= experts:
            ids, _ = router_topk(generator, tokens, experts, topk)
            yield three_step_case(ids, experts, 0, experts)


BASELINES = Baselines("three_step_sort", three_step_sort_given, three_step_sort_grid)
