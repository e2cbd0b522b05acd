"""The routing strategies hit the shapes routing bugs need, and build big tables cheaply."""

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moefuzz.engine.generate import CaseSource
from moefuzz.model.target import Limits
from moefuzz.shrinking.routing import later_duplicates
from moefuzz.strategies import (
    DUPLICATE_MODES,
    PADDING_MODES,
    SKEWS,
    build_routing_table,
    local_expert_range,
    routing_tables,
)
from moefuzz_targets.three_step_sort.strategy import cases

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@FAST
@given(routing_tables(max_tokens=600))
def test_tables_are_int32_within_bounds_and_local_range_inside_experts(table):
    assert table.topk_ids.dtype == np.int32 and table.topk_ids.flags.c_contiguous
    assert 0 <= table.num_tokens <= 600 and 1 <= table.topk <= 8
    assert 0 <= table.start_expert <= table.end_expert <= table.num_experts
    valid = (table.topk_ids >= 0) & (table.topk_ids < table.num_experts)
    assert ((table.topk_ids == table.sentinel) | valid).all()


@FAST
@given(st.integers(1, 600), st.integers(1, 17))
def test_ep_ranks_split_all_experts_without_overlap(num_experts, ep_size):
    ep_size = min(ep_size, num_experts)
    ranges = [local_expert_range(num_experts, r, ep_size) for r in range(ep_size)]
    assert ranges[0][0] == 0 and ranges[-1][1] == num_experts
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [e - s for s, e in ranges]
    assert max(sizes) - min(sizes) <= 1


def table(**overrides):
    structure = dict(
        num_tokens=300,
        topk=4,
        num_experts=64,
        ep_rank=0,
        ep_size=1,
        skew="uniform",
        duplicates="none",
        padding="none",
        sentinel=-1,
        seed=1,
    )
    structure.update(overrides)
    return build_routing_table(**structure)


def test_uniform_rows_without_injected_duplicates_are_distinct_like_a_real_topk():
    assert not later_duplicates(table().topk_ids).any()


def test_duplicate_mode_one_puts_a_repeat_in_exactly_one_token():
    dup_rows = later_duplicates(table(duplicates="one").topk_ids).any(axis=1)
    assert dup_rows.sum() == 1


def test_tail_padding_fills_whole_trailing_rows_with_the_sentinel():
    ids = table(padding="tail", sentinel=64).topk_ids
    padded = (ids == 64).all(axis=1)
    assert padded.any() and padded[-1]
    assert not padded[: np.argmax(padded)].any()


def test_rank_padding_pads_the_tail_of_each_source_rank_segment():
    ids = table(padding="ranks", ep_size=4, ep_rank=1, sentinel=-1, num_tokens=400, seed=3).topk_ids
    padded = (ids == -1).all(axis=1)
    for segment in np.split(padded, 4):
        if segment.any():
            assert segment[np.argmax(segment) :].all()


def test_all_local_skew_keeps_every_id_on_this_rank():
    t = table(skew="all_local", ep_size=4, ep_rank=2)
    assert ((t.topk_ids >= t.start_expert) & (t.topk_ids < t.end_expert)).all()


def test_every_structural_mode_is_reachable_from_random_bytes():
    source = CaseSource(routing_tables(max_tokens=2048), seed=3)
    seen = {"skew": set(), "duplicates": set(), "padding": set(), "straddles_256": set()}
    for _ in range(400):
        drawn = source.draw()
        seen["skew"].add(drawn.skew)
        seen["duplicates"].add(drawn.duplicates)
        seen["padding"].add(drawn.padding)
        seen["straddles_256"].add(drawn.num_tokens if drawn.num_tokens in (256, 257) else None)
    assert seen["skew"] == set(SKEWS)
    assert seen["duplicates"] == set(DUPLICATE_MODES)
    assert seen["padding"] == set(PADDING_MODES)
    assert {256, 257} <= seen["straddles_256"]


def test_a_16384_by_8_table_is_drawn_from_a_small_byte_buffer():
    source = CaseSource(cases(Limits()), seed=0)
    biggest = max((source.draw() for _ in range(300)), key=lambda c: c.arrays["token_selected_experts"].size)
    assert biggest.arrays["token_selected_experts"].shape[0] >= 8192


def test_the_same_seed_draws_the_same_cases():
    def digests(seed):
        source = CaseSource(cases(Limits()), seed)
        return [source.draw().digest() for _ in range(5)]

    assert digests(11) == digests(11)
    assert len(set(digests(11))) == 5
    assert digests(11) != digests(12)
