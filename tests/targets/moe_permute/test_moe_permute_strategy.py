"""The one-sided dispatch strategy lays out padded ranks the way the contract says, and reaches
every structure the padding bugs need (the -1 pad with the last global expert local above all)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from moefuzz.engine.generate import CaseSource
from moefuzz.model.target import INTERPRETER_LIMITS
from moefuzz.strategies.dispatch import (
    FILLS,
    PLACEMENTS,
    RECEIVERS,
    SENTINELS,
    DispatchedTable,
    build_dispatched_table,
    dispatched_tables,
    local_experts,
)
from moefuzz_targets.moe_permute import TARGET, contract

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@functools.cache
def drawn_tables() -> list[DispatchedTable]:
    """400 tables as a campaign draws them (T <= 2048), shared by the reachability tests."""
    source = CaseSource(dispatched_tables(max_tokens=2048), seed=3)
    return [source.draw() for _ in range(400)]


@FAST
@given(dispatched_tables(max_tokens=600))
def test_padded_rows_are_whole_sentinel_rows_at_the_tail_of_each_rank(table):
    ranks, per_rank = table.num_ranks, table.max_tokens_per_rank
    assert table.topk_ids.shape[0] == ranks * per_rank <= 600 and table.topk_ids.dtype == np.int32
    assert ((table.num_tokens_per_rank >= 0) & (table.num_tokens_per_rank <= per_rank)).all()
    padded = table.padded_rows.reshape(ranks, per_rank)
    assert (np.diff(padded.astype(int), axis=1) >= 0).all()  # once padding starts, it goes on
    assert (table.topk_ids[table.padded_rows] == table.sentinel).all()
    real = table.topk_ids[~table.padded_rows]
    assert ((real >= 0) & (real < table.num_experts)).all()


@FAST
@given(dispatched_tables(max_tokens=600))
def test_expert_map_is_a_permutation_of_local_ids_and_the_sentinel_is_never_local(table):
    local = table.expert_map[table.expert_map >= 0]
    assert np.array_equal(np.sort(local), np.arange(local.size)) and local.size >= 1
    assert not (0 <= table.sentinel < table.num_experts and table.expert_map[table.sentinel] >= 0)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize(("receiver", "expert"), [("last_expert", -1), ("first_expert", 0)])
def test_the_receiver_owns_the_last_or_first_expert_under_every_placement(placement, receiver, expert):
    tables = [t for t in drawn_tables() if t.placement == placement and t.receiver == receiver]
    assert tables and all(t.expert_map[expert] >= 0 for t in tables)


def test_placements_give_every_rank_its_vllm_share():
    assert local_experts(10, 1, 4, "linear").tolist() == [3, 4, 5]
    assert local_experts(10, 1, 4, "round_robin").tolist() == [1, 5, 9]
    scattered = local_experts(10, 3, 4, "scattered", np.random.default_rng(0))
    assert scattered.size == 2 and len(set(scattered.tolist())) == 2


def test_skews_that_mean_local_keep_their_meaning_under_a_relabelled_placement():
    table = build_dispatched_table(
        num_ranks=4,
        max_tokens_per_rank=30,
        topk=2,
        num_experts=20,
        ep_rank=2,
        placement="round_robin",
        fill="full",
        sentinel_kind="minus_one",
        skew="all_local",
        seed=4,
    )
    assert (table.expert_map[table.topk_ids] >= 0).all()


def test_fills_pad_as_named():
    def counts(fill, seed=1):
        return build_dispatched_table(
            num_ranks=6,
            max_tokens_per_rank=9,
            topk=1,
            num_experts=6,
            ep_rank=0,
            placement="linear",
            fill=fill,
            sentinel_kind="minus_one",
            seed=seed,
        ).num_tokens_per_rank.tolist()

    assert counts("full") == [9] * 6
    assert counts("all_empty") == [0] * 6
    assert sorted(counts("one_short")) == [8] + [9] * 5
    assert max(counts("uneven")) == 9
    assert 0 in counts("empty_ranks")


def test_every_structural_mode_and_the_seed_bug_shape_are_reachable_from_random_bytes():
    seen = {"placement": set(), "receiver": set(), "fill": set(), "sentinel": set(), "ranks": set()}
    bug_shapes = 0
    for table in drawn_tables():
        seen["placement"].add(table.placement)
        seen["receiver"].add(table.receiver)
        seen["fill"].add(table.fill)
        seen["sentinel"].add(table.sentinel_kind)
        seen["ranks"].add(table.num_ranks)
        bug_shapes += table.sentinel == -1 and table.expert_map[-1] >= 0 and bool(table.padded_rows.any())
    assert seen["placement"] == set(PLACEMENTS) and seen["receiver"] == set(RECEIVERS)
    assert seen["fill"] == set(FILLS) and seen["sentinel"] == set(SENTINELS)
    assert {1, 3, 16, 64} <= seen["ranks"]
    assert bug_shapes >= 20  # one case in ten or more: a campaign meets it within seconds


def test_every_drawn_case_passes_the_contract_check():
    source = CaseSource(TARGET.strategy(INTERPRETER_LIMITS), seed=5)
    for _ in range(100):
        case = source.draw()
        contract.check(case)
        assert contract.derive(case).params == case.params
        assert case.arrays["topk_ids"].shape[0] <= INTERPRETER_LIMITS.max_tokens
