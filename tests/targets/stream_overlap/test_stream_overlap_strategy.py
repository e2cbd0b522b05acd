"""The schedule strategy lays pages out as its modes say, stays within its bounds, and draws the
shapes both races need (a long forward; consecutive batches sharing a page) often."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from moefuzz.engine.generate import CaseSource
from moefuzz.model.case import Case
from moefuzz.model.target import INTERPRETER_LIMITS, Limits
from moefuzz_targets.stream_overlap import TARGET, contract
from moefuzz_targets.stream_overlap.contract import COPY_METHODS
from moefuzz_targets.stream_overlap.strategy import (
    GPU_BOUNDS,
    INTERPRETER_BOUNDS,
    build_schedule,
    schedule_bounds,
)


@functools.cache
def drawn(device: str) -> list[Case]:
    """300 schedules as a campaign on ``device`` draws them."""
    limits = INTERPRETER_LIMITS if device == "cpu" else Limits()
    source = CaseSource(TARGET.strategy(limits), seed=7)
    return [source.draw() for _ in range(300)]


def shares_a_page_with_the_next_batch(case: Case) -> np.ndarray:
    """[B - 1] bool: batch b's copy and batch b+1's forward touch a common page."""
    pages = case.arrays["batch_pages"]
    return np.array([bool(np.intersect1d(a[a >= 0], b[b >= 0]).size) for a, b in itertools.pairwise(pages)], dtype=bool)


def schedule(**structure) -> Case:
    fields = dict(num_batches=6, pages_per_batch=5, page_size=16, slot_size=8, longest=100, seed=3)
    fields.update(structure)
    return build_schedule(**fields)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_every_drawn_schedule_passes_the_check_within_its_bounds(device):
    bounds = INTERPRETER_BOUNDS if device == "cpu" else GPU_BOUNDS
    for case in drawn(device):
        contract.check(case)
        pages = case.arrays["batch_pages"]
        num_batches, per_batch = pages.shape
        assert num_batches <= bounds.max_batches and per_batch <= bounds.max_pages_per_batch
        assert case.params["page_size"] <= bounds.max_page_size
        assert case.arrays["kernel_lengths"].max() <= bounds.max_kernel_length
        host = num_batches * per_batch * case.params["page_size"] * case.params["slot_size"]
        assert host <= bounds.max_host_elements


def test_the_interpreter_token_budget_gets_the_small_bounds():
    assert schedule_bounds(INTERPRETER_LIMITS) is INTERPRETER_BOUNDS
    assert schedule_bounds(Limits()) is GPU_BOUNDS
    assert INTERPRETER_BOUNDS.max_kernel_length <= 8 < 1024 <= GPU_BOUNDS.max_kernel_length


def test_fresh_pages_are_never_copied_by_two_batches():
    pages = schedule(reuse="fresh", ragged="ragged").arrays["batch_pages"]
    real = pages[pages >= 0]
    assert np.unique(real).size == real.size


def test_previous_reuse_hands_half_of_each_batch_pages_to_the_next():
    case = schedule(reuse="previous")
    assert shares_a_page_with_the_next_batch(case).all()
    pages = case.arrays["batch_pages"]
    for a, b in itertools.pairwise(pages):
        assert np.intersect1d(a, b).size == 5 // 2  # the rest are new pages


def test_same_reuse_copies_one_list_of_pages_in_every_batch():
    pages = schedule(reuse="same", ragged="ragged").arrays["batch_pages"]
    full = pages[(pages >= 0).sum(axis=1).argmax()]
    for row in pages:
        count = int((row >= 0).sum())
        assert row[:count].tolist() == full[:count].tolist()


def test_small_pools_hold_between_one_and_two_batches_of_pages():
    case = schedule(reuse="small_pool")
    assert 5 <= case.params["num_pages"] <= 10


def test_ragged_modes_pad_rows_and_empty_one_batch():
    full = schedule(ragged="full").arrays["batch_pages"]
    ragged = schedule(ragged="ragged").arrays["batch_pages"]
    empty = schedule(ragged="empty_batch").arrays["batch_pages"]
    assert (full >= 0).all()
    assert (ragged >= 0).sum(axis=1).max() == 5 and (ragged >= 0).sum(axis=1).min() >= 1
    assert ((empty >= 0).sum(axis=1) == 0).sum() == 1


def test_fill_modes_write_as_named():
    def fills(fill):
        return schedule(fill=fill, ragged="full").arrays["page_fills"]

    assert (fills("full") == 16).all() and (fills("one_slot") == 1).all()
    partial = fills("partial_last")
    assert (partial[:, :-1] == 16).all() and ((partial[:, -1] >= 1) & (partial[:, -1] <= 16)).all()
    assert ((fills("random") >= 1) & (fills("random") <= 16)).all()


def test_length_modes_spin_as_named():
    def lengths(mode):
        return schedule(lengths=mode).arrays["kernel_lengths"]

    assert (lengths("zero") == 0).all()
    assert ((lengths("long") >= 50) & (lengths("long") <= 100)).all()
    assert sorted(lengths("one_long").tolist()) == [0] * 5 + [100]
    assert ((lengths("random") >= 0) & (lengths("random") <= 100)).all()


def test_the_same_structure_and_seed_build_the_same_schedule():
    assert schedule(reuse="small_pool").digest() == schedule(reuse="small_pool").digest()
    assert schedule(reuse="small_pool").digest() != schedule(reuse="small_pool", seed=4).digest()


def test_both_race_shapes_and_every_structure_are_common_in_gpu_draws():
    cases = drawn("cuda")

    def count(holds) -> int:
        return sum(bool(holds(case)) for case in cases)

    def long(case: Case) -> bool:
        return case.arrays["kernel_lengths"].max() >= 512

    # the first race needs a long forward; the second also two consecutive batches sharing a page
    assert count(long) >= 40
    assert count(lambda c: long(c) and shares_a_page_with_the_next_batch(c).any()) >= 20
    # and the cases that should not race, to shrink towards: no spin at all, one batch
    assert count(lambda c: (c.arrays["kernel_lengths"] == 0).all()) >= 40
    assert count(lambda c: c.arrays["batch_pages"].shape[0] == 1) >= 20
    # ragged rows, an empty batch, partly written pages, both copy methods
    assert count(lambda c: (c.arrays["batch_pages"] < 0).any()) >= 60
    assert count(lambda c: ((c.arrays["batch_pages"] >= 0).sum(axis=1) == 0).any()) >= 30
    assert (
        count(lambda c: ((c.arrays["page_fills"] > 0) & (c.arrays["page_fills"] < c.params["page_size"])).any()) >= 60
    )
    assert {c.params["copy_method"] for c in cases} == set(COPY_METHODS)
    assert {c.params["page_size"] for c in cases} == {1, 3, 7, 16, 33, 64, 100, 256}
