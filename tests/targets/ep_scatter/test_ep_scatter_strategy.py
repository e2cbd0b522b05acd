"""The expert-parallel strategies: local tables, the shapes they must hit, exact token rows."""

from __future__ import annotations

import collections

import numpy as np
from hypothesis import HealthCheck, given, settings

from moefuzz.engine.generate import CaseSource
from moefuzz.model.target import INTERPRETER_LIMITS
from moefuzz.strategies import build_routing_table
from moefuzz.strategies.expert_parallel import (
    E4M3_VALUES,
    aligned_counts,
    is_bf16_exact,
    is_e4m3_exact,
    local_topk_ids,
    recv_topk_tables,
    token_rows,
)
from moefuzz_targets.ep_scatter import TARGET
from moefuzz_targets.ep_scatter.contract import check

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@FAST
@given(recv_topk_tables(max_tokens=600))
def test_received_tables_hold_local_ids_or_minus_one(recv):
    assert recv.recv_topk.dtype == np.int32 and recv.recv_topk.flags.c_contiguous
    assert 1 <= recv.num_experts <= 512 and 1 <= recv.recv_topk.shape[1] <= 8
    assert ((recv.recv_topk >= -1) & (recv.recv_topk < recv.num_experts)).all()


def test_local_ids_are_shifted_by_the_ranks_start_and_everything_else_is_minus_one():
    table = build_routing_table(
        num_tokens=50,
        topk=4,
        num_experts=16,
        ep_rank=1,
        ep_size=4,
        skew="uniform",
        duplicates="none",
        padding="tail",
        sentinel=16,
        seed=3,
    )
    local = local_topk_ids(table)
    ids = table.topk_ids
    mine = (ids >= 4) & (ids < 8)
    assert np.array_equal(local[mine], ids[mine] - 4)
    assert (local[~mine] == -1).all()
    assert (local[-1] == -1).all()  # the sentinel-padded tail


def test_aligned_counts_round_up_to_128_and_keep_zero():
    topk = np.array([[0] * 1] * 127 + [[1]] * 128 + [[2]] * 129, np.int32)
    assert aligned_counts(topk, 4).tolist() == [128, 128, 256, 0]


def test_token_rows_are_exact_in_their_dtype_and_name_their_token():
    rng = np.random.default_rng(0)
    bf16 = token_rows(rng, 2048, 3, "bf16")
    assert is_bf16_exact(bf16).all() and np.unique(bf16[:, 0]).size == 2048
    fp8 = token_rows(rng, 200, 5, "fp8")
    assert is_e4m3_exact(fp8).all() and np.unique(fp8[:, 0]).size == 200
    assert E4M3_VALUES.size == 252 and np.abs(E4M3_VALUES).max() == 448.0


def test_e4m3_exactness_refuses_values_between_grid_points_and_past_448():
    assert is_e4m3_exact(np.array([0.0, 1.125, -448.0, 2.0**-9], np.float32)).all()
    assert not is_e4m3_exact(np.array([1.0625, 449.0, 2.0**-10], np.float32)).any()


def test_campaign_cases_are_valid_and_reach_the_edges_the_issue_names():
    source = CaseSource(TARGET.strategy(INTERPRETER_LIMITS), seed=11)
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(300):
        case = source.draw()
        check(case)
        topk = case.arrays["recv_topk"]
        counts = np.bincount(topk[topk >= 0], minlength=case.params["num_experts"])
        hidden = case.arrays["recv_x"].shape[1]
        seen["N=0"] += topk.shape[0] == 0
        seen["N=1"] += topk.shape[0] == 1
        seen["all -1"] += topk.size > 0 and (topk == -1).all()
        seen["one expert"] += topk.shape[0] > 1 and bool((topk == topk[0, 0]).any(axis=1).all()) and topk[0, 0] >= 0
        seen["empty experts"] += bool((counts == 0).any() and (counts > 0).any())
        seen["E=256 at 127/128/129"] += case.params["num_experts"] == 256 and bool(
            np.isin(counts, (127, 128, 129)).any()
        )
        seen["H % 128 != 0"] += hidden % 128 != 0
        seen["fp8"] += case.params["dtype"] == "fp8"
    assert all(seen[edge] > 0 for edge in seen), seen
    assert len(seen) == 8
