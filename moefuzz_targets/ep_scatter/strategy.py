"""Cases of ep_scatter, drawn from the engine's expert-parallel strategies.

A received table (:func:`~moefuzz.strategies.expert_parallel.recv_topk_tables`: routed tables
in local ids, all -1, one expert for every token, counts at the 128 alignment edge) becomes
``recv_topk``; its aligned counts become ``num_recv_tokens_per_expert``; the dtype, a hidden size
(:data:`~moefuzz.strategies.expert_parallel.HIDDEN_SIZES`, non-multiples of 128 included, capped
so that the M x H output stays a few MiB) and a seed for the token rows and scales are drawn next.
Nothing is filtered: every such case is a legal input of the contract.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from moefuzz.model.case import Case
from moefuzz.model.target import Limits
from moefuzz.shrinking.routing import RoutingLayout
from moefuzz.strategies.expert_parallel import aligned_counts, hidden_sizes, recv_topk_tables, token_rows
from moefuzz_targets.ep_scatter.contract import DTYPES, MAX_EXPERTS, scale_columns

#: The contract takes -1 in any slot (not on this rank: no item, output_index left untouched).
LAYOUT = RoutingLayout(ids="recv_topk", token_arrays=("recv_x", "recv_x_scale"), num_experts="num_experts", sentinel=-1)


def make_case(recv_topk: np.ndarray, num_experts: int, hidden: int, dtype: str, seed: int) -> Case:
    """The ep_scatter case of a received table: token rows exact in ``dtype``, positive scales
    (fp8 only) and the aligned counts, all from ``seed``."""
    rng = np.random.default_rng(seed)
    num_tokens = recv_topk.shape[0]
    recv_x = token_rows(rng, num_tokens, hidden, dtype)
    scale = rng.uniform(2.0**-10, 1.0, size=(num_tokens, scale_columns(hidden, dtype))).astype(np.float32)
    return Case(
        {
            "recv_x": recv_x,
            "recv_x_scale": scale,
            "recv_topk": np.ascontiguousarray(recv_topk, dtype=np.int32),
            "num_recv_tokens_per_expert": aligned_counts(recv_topk, num_experts),
        },
        {"num_experts": num_experts, "dtype": dtype},
    )


@st.composite
def cases(draw: st.DrawFn, limits: Limits) -> Case:
    """ep_scatter cases within ``limits``: N up to ``limits.max_tokens``, K up to 8, E local up to
    1024, dtype bf16 or fp8, H from the hidden sizes."""
    recv = draw(
        recv_topk_tables(
            max_tokens=limits.max_tokens,
            max_topk=min(8, limits.max_topk),
            max_experts=min(MAX_EXPERTS, limits.max_experts),
        )
    )
    rows = max(int(aligned_counts(recv.recv_topk, recv.num_experts).astype(np.int64).sum()), recv.recv_topk.shape[0])
    hidden = draw(hidden_sizes(rows), label="hidden")
    dtype = draw(st.sampled_from(DTYPES), label="dtype")
    seed = draw(st.integers(0, 2**32 - 1), label="values_seed")
    return make_case(recv.recv_topk, recv.num_experts, hidden, dtype, seed)
