"""The paged KV strategy builds consistent caches and reaches the shapes paging bugs need."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from moefuzz.strategies import PagedKVState, build_paged_kv_state, paged_kv_states

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def _owned_slots(state: PagedKVState) -> list[np.ndarray]:
    return [
        state.req_to_token[row, : state.prefix_lens[i]].astype(np.int64) for i, row in enumerate(state.req_pool_indices)
    ]


@FAST
@given(paged_kv_states(max_tokens=1024))
def test_every_owned_slot_is_in_the_cache_and_pages_are_whole(state: PagedKVState) -> None:
    after = state.extended()
    for slots in _owned_slots(after):
        assert ((slots >= state.page_size) & (slots < state.capacity)).all()  # page 0 is reserved
        positions = np.arange(slots.size)
        assert (slots % state.page_size == positions % state.page_size).all()
        pages = slots // state.page_size
        assert (pages == pages[(positions // state.page_size) * state.page_size]).all()


@FAST
@given(paged_kv_states(max_tokens=1024))
def test_no_page_is_owned_twice_or_both_owned_and_free(state: PagedKVState) -> None:
    after = state.extended()
    owned = [np.unique(slots // state.page_size) for slots in _owned_slots(after)]
    flat = np.concatenate([*owned, after.free_pages]) if owned else after.free_pages
    assert np.unique(flat).size == flat.size
    assert state.free_pages.size - after.free_pages.size == int(state.new_pages().sum())


@FAST
@given(paged_kv_states(max_tokens=1024))
def test_the_swa_mapping_translates_every_windowed_token(state: PagedKVState) -> None:
    if state.swa is None:
        return
    after = state.extended()
    mapping, size = state.swa.full_to_swa_index_mapping, state.page_size
    assert ((mapping >= 0) & (mapping < state.swa.num_pages * size)).all()
    for i, row in enumerate(after.req_pool_indices):
        seq = int(after.seq_lens[i])
        full = after.req_to_token[row, max(0, seq - state.swa.sliding_window) : seq].astype(np.int64)
        swa = mapping[full]
        assert (swa % size == full % size).all() and (swa >= size).all()
        assert np.unique(swa // size).size == np.unique(full // size).size


def test_extend_finishes_the_last_page_then_takes_free_pages_in_order() -> None:
    state = build_paged_kv_state(
        page_size=4,
        prefix_lens=[6, 0],
        seq_lens=[13, 3],
        spare_pages=1,
        other_pages=0,
        pool_gaps=2,
        extra_context=1,
        free_order="shuffled",
        garbage="wild",
        window="none",
        seed=7,
    )
    after = state.extended()
    first, second = (after.req_to_token[row] for row in state.req_pool_indices)
    prefix_pages = state.req_to_token[state.req_pool_indices[0], [0, 4]] // 4
    free = state.free_pages
    assert list(first[:13] // 4) == [prefix_pages[0]] * 4 + [prefix_pages[1]] * 4 + [free[0]] * 4 + [free[1]]
    assert list(second[:3] // 4) == [free[2]] * 3
    assert list(after.free_pages) == list(free[3:]) and after.free_pages.size == 1


def test_page_table_lists_each_request_pages_and_pads_with_page_zero() -> None:
    state = build_paged_kv_state(
        page_size=2,
        prefix_lens=[0, 5],
        seq_lens=[1, 5],
        spare_pages=0,
        other_pages=1,
        pool_gaps=0,
        extra_context=0,
        free_order="ascending",
        garbage="zeros",
        window="none",
        seed=1,
    )
    table = state.page_table()
    after = state.extended()
    assert table.shape == (2, 3)
    assert table[0, 0] == after.req_to_token[state.req_pool_indices[0], 0] // 2 and list(table[0, 1:]) == [0, 0]
    assert (table[1] == after.req_to_token[state.req_pool_indices[1], [0, 2, 4]] // 2).all()


def test_the_strategy_reaches_boundaries_long_requests_full_caches_and_windows() -> None:
    seen: set[str] = set()

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(paged_kv_states(max_tokens=2048))
    def observe(state: PagedKVState) -> None:
        size = state.page_size
        if state.batch_size and (state.seq_lens % size == 0).any() and (state.seq_lens % size == 1).any():
            seen.add("page boundary and one after")
        if state.seq_lens.size and state.seq_lens.max() > 1024:
            seen.add("a long request")
        if state.extended().free_pages.size == 0:
            seen.add("no free page left")
        if (state.seq_lens == 0).any():
            seen.add("an empty request")
        if state.swa is not None:
            seen.add({True: "window below a page", False: "window of a page or more"}[state.swa.sliding_window < size])

    observe()
    assert seen == {
        "page boundary and one after",
        "a long request",
        "no free page left",
        "an empty request",
        "window below a page",
        "window of a page or more",
    }
