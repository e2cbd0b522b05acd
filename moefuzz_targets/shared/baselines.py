"""What the benchmark baselines of the built-in targets share: the :class:`Baselines` record,
the engines' test sizes, and small case-building helpers.

A target's ``baselines.py`` defines ``BASELINES``: a plain Hypothesis ``@given`` strategy of its
contract's cases (sizes as integers, arrays element by element) and a grid shaped like the
engines' own tests of that kernel (vLLM ``tests/kernels/moe``, SGLang ``test/srt``, FlashInfer
``tests``), each point once. Neither uses :mod:`moefuzz.strategies`: they are what moefuzz is
compared with. ``benchmarks.baselines`` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from moefuzz.model.case import Case


@dataclass(frozen=True)
class Baselines:
    """A target's two baselines.

    Attributes:
        target: the target's name.
        given: the strategy of the plain ``@given`` test (sizes as integers, arrays element by
            element), a function of no arguments.
        grid: ``grid(seed)``: the engines-style grid, one case per grid point, inputs made from
            ``seed``.
    """

    target: str
    given: Callable[[], Any]
    grid: Callable[[int], Iterator[Case]]


#: The given strategies' default token bound: the sizes of a real test run.
GIVEN_MAX_TOKENS = 2048

#: Largest K, E and hidden size the given strategies draw.
GIVEN_MAX_TOPK = 8
GIVEN_MAX_EXPERTS = 256
GIVEN_MAX_HIDDEN = 256

#: Rows of one expert segment in ep_scatter / ep_gather: DeepEP's alignment for DeepGEMM.
ALIGNMENT = 128

#: The routing grid of the engines' tests (three_step_sort, ep_scatter, ep_gather).
GRID_TOKENS = (1, 7, 33, 64, 222, 256, 1024, 2048)
GRID_TOPK = (1, 2, 6, 8)
GRID_EXPERTS = (8, 64, 128, 256)

#: EP world sizes of the ep_scatter / ep_gather grid: one rank, and DeepSeek's 8-GPU node.
GRID_EP_SIZES = (1, 8)

#: Hidden size of the grids' token rows (FlashInfer / vLLM tests use 2048 and 7168; the
#: contracts take H <= 4096 where they bound it).
GRID_HIDDEN = 2048


def router_topk(generator: torch.Generator, tokens: int, experts: int, topk: int) -> tuple[np.ndarray, np.ndarray]:
    """``(topk_ids, topk_weights)``: [T, K] int32 ``torch.topk`` of random router scores [T, E]
    (distinct ids per token) and [T, K] float32 their softmax weights renormalized over the K."""
    scores = torch.randn(tokens, experts, generator=generator)
    values, ids = torch.topk(torch.softmax(scores, dim=1), topk, dim=1)
    weights = values / values.sum(dim=1, keepdim=True)
    return ids.to(torch.int32).numpy(), weights.to(torch.float32).numpy()


def ep_split(num_experts: int, ep_size: int, ep_rank: int) -> tuple[int, int]:
    """``(start, end)``: the global experts [start, end) rank ``ep_rank`` of ``ep_size`` owns, by
    vLLM's linear ``determine_expert_map`` (the first E % ep_size ranks own one more)."""
    base, extra = divmod(num_experts, ep_size)
    start = ep_rank * base + min(ep_rank, extra)
    return start, start + base + (1 if ep_rank < extra else 0)


def draw_rank(generator: torch.Generator, ep_size: int) -> int:
    """The EP rank a grid point tests, drawn from its seed (vLLM draws ``np.random.randint``)."""
    return int(torch.randint(0, ep_size, (1,), generator=generator))


def aligned_counts(recv_topk: np.ndarray, num_experts: int) -> np.ndarray:
    """[E] int32 ``num_recv_tokens_per_expert``: each local expert's items rounded up to 128."""
    counts = np.bincount(recv_topk[recv_topk >= 0].astype(np.int64), minlength=num_experts)
    return (-(-counts // ALIGNMENT) * ALIGNMENT).astype(np.int32)


def exact_values(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """[shape] float32 drawn element by element as i / 4 for integers -16 <= i <= 16: exact in
    bf16 and in float8_e4m3fn."""
    quarters = draw(arrays(np.int8, shape, elements=st.integers(-16, 16)))
    return quarters.astype(np.float32) / 4


def to_local(ids: np.ndarray, start: int, end: int) -> np.ndarray:
    """[N, K] int32 local expert ids ``id - start`` of this rank, -1 for other ranks' experts."""
    return np.where((ids >= start) & (ids < end), ids - start, -1).astype(np.int32)


def received_tokens(
    generator: torch.Generator, tokens: int, experts: int, topk: int, ep_size: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(recv_topk, weights, E_local)`` of one grid point: the router's [N, K] ids and weights
    on the rank drawn from the seed, ids in that rank's local numbering (-1 elsewhere)."""
    start, end = ep_split(experts, ep_size, draw_rank(generator, ep_size))
    ids, weights = router_topk(generator, tokens, experts, topk)
    return to_local(ids, start, end), weights, end - start


#: Page sizes of SGLang's paged KV cache: 1 (token-granular, its default), 16/32/64 (FA3,
#: FlashInfer, trtllm_mha).
PAGE_SIZES = (1, 16, 32, 64)

#: Batch sizes of the engines' decode tests.
GRID_BATCH_SIZES = (1, 4, 16, 64)

#: Longest request of a grid case ("seq lens random up to a few thousand").
GRID_MAX_SEQ_LEN = 4096


def pages_for(lengths: np.ndarray | int, page_size: int) -> np.ndarray:
    """int64 ceil(lengths / page_size), elementwise."""
    return -(-np.asarray(lengths, dtype=np.int64) // page_size)


def draw_page_order(draw: st.DrawFn, count: int, first: int) -> np.ndarray:
    """[count] int64 page ids first..first+count-1, in order or shuffled by a drawn seed (a
    permutation drawn element by element overruns Hypothesis's buffer at a 4096-token batch of
    page_size 1)."""
    pages = np.arange(first, first + count, dtype=np.int64)
    if draw(st.booleans()):
        np.random.default_rng(draw(st.integers(0, 2**32 - 1))).shuffle(pages)
    return pages
