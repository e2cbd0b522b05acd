"""stream_overlap's shrink passes keep every candidate a legal schedule and reach the shortest
schedule that still shows a race shape (checked with plain predicates, no kernel)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.shrinking import Shrinker
from moefuzz_targets.stream_overlap import TARGET, contract, shrink
from moefuzz_targets.stream_overlap.strategy import build_schedule


def big_schedule(**structure) -> Case:
    fields = dict(
        num_batches=12,
        pages_per_batch=40,
        page_size=64,
        slot_size=128,
        longest=4096,
        reuse="previous",
        ragged="ragged",
        fill="random",
        lengths="random",
        copy_method="sm_kernel",
        seed=5,
    )
    fields.update(structure)
    return build_schedule(**fields)


def shrink_while(case: Case, holds: Callable[[Case], bool]) -> tuple[Case, list[str]]:
    """Shrink ``case`` as long as ``holds``; also return the check errors of every candidate."""
    refused: list[str] = []

    def check(candidate: Case) -> None:
        try:
            contract.check(candidate)
        except CaseError as exc:
            refused.append(str(exc))
            raise

    assert holds(case)
    result = Shrinker(case, holds, TARGET.shrink_passes, TARGET.size, check, budget_s=60).shrink()
    assert result.complete
    return result.case, refused


def long_forward_copies_a_page(case: Case) -> bool:
    """The shape of the first race: a forward of >= 64 rounds whose batch copies a page."""
    lengths, pages = case.arrays["kernel_lengths"], case.arrays["batch_pages"]
    return bool(((lengths >= 64) & (pages >= 0).any(axis=1)).any())


def next_forward_rewrites_a_long_batch_page(case: Case) -> bool:
    """The shape of the second race: batch b spins >= 64 rounds and batch b+1 writes a slot of
    a page batch b copies."""
    pages, lengths = case.arrays["batch_pages"], case.arrays["kernel_lengths"]
    return any(
        lengths[b] >= 64 and np.intersect1d(pages[b][pages[b] >= 0], pages[b + 1][pages[b + 1] >= 0]).size > 0
        for b in range(pages.shape[0] - 1)
    )


def test_the_first_race_shape_shrinks_to_one_batch_copying_one_slot_of_one_page():
    small, refused = shrink_while(big_schedule(), long_forward_copies_a_page)
    assert refused == []
    assert small.arrays["batch_pages"].tolist() == [[0]]
    assert small.arrays["page_fills"].tolist() == [[1]]
    assert small.params["page_size"] == 1 and small.params["slot_size"] == 1 and small.params["num_pages"] == 1
    assert 64 <= small.arrays["kernel_lengths"][0] < 128  # halved while it held


def test_the_second_race_shape_shrinks_to_two_batches_on_one_page_and_one_long_forward():
    small, refused = shrink_while(big_schedule(seed=8), next_forward_rewrites_a_long_batch_page)
    assert refused == []
    assert small.arrays["batch_pages"].tolist() == [[0], [0]]
    assert small.arrays["page_fills"].tolist() == [[1], [1]]
    assert small.params["page_size"] == 1 and small.params["slot_size"] == 1
    lengths = small.arrays["kernel_lengths"].tolist()
    assert lengths[1] == 0 and 64 <= lengths[0] < 128


def test_dropping_a_page_closes_up_its_row_and_trims_empty_columns():
    case = Case(
        {
            "batch_pages": np.array([[3, 1, 4], [1, 5, -1]], dtype=np.int32),
            "page_fills": np.array([[2, 1, 3], [4, 1, 0]], dtype=np.int32),
            "kernel_lengths": np.array([9, 0], dtype=np.int32),
        },
        {"num_pages": 6, "page_size": 4, "slot_size": 2, "copy_method": "copy_engine"},
    )
    once = shrink.drop_page(case, 0, 1)
    assert once.arrays["batch_pages"].tolist() == [[3, 4], [1, 5]]
    assert once.arrays["page_fills"].tolist() == [[2, 3], [4, 1]]
    twice = shrink.drop_page(shrink.drop_page(once, 1, 0), 0, 0)
    assert twice.arrays["batch_pages"].tolist() == [[4], [5]] and twice.arrays["page_fills"].tolist() == [[3], [1]]
    for candidate in (once, twice):
        contract.check(candidate)


def test_keeping_batches_carries_their_spins_and_trims_columns_only_they_used():
    case = big_schedule(num_batches=4, pages_per_batch=6, ragged="ragged", seed=2)
    rows = (case.arrays["batch_pages"] >= 0).sum(axis=1)
    kept = shrink.keep_batches(case, [int(rows.argmin())])
    assert kept.arrays["batch_pages"].shape == (1, max(1, int(rows.min())))
    assert kept.arrays["kernel_lengths"].tolist() == [int(case.arrays["kernel_lengths"][rows.argmin()])]
    contract.check(kept)


def test_a_smaller_page_size_cuts_fills_and_keeps_page_ids():
    case = big_schedule(num_batches=2, pages_per_batch=3, page_size=16, fill="full")
    smaller = shrink.with_page_size(case, 3)
    assert (smaller.arrays["page_fills"] == 3).all()
    assert np.array_equal(smaller.arrays["batch_pages"], case.arrays["batch_pages"])
    contract.check(smaller)
    assert TARGET.size(smaller) < TARGET.size(case)


def test_the_size_order_puts_batches_first_and_spin_rounds_last_but_the_pool():
    case = big_schedule(num_batches=3, pages_per_batch=2)
    fewer_batches_longer_spins = shrink.keep_batches(case, [0, 1]).replace(
        {"kernel_lengths": np.full(2, 4096, dtype=np.int32)}
    )
    assert TARGET.size(fewer_batches_longer_spins) < TARGET.size(case)
    shorter = case.replace({"kernel_lengths": case.arrays["kernel_lengths"] // 2})
    assert TARGET.size(shorter) < TARGET.size(case)
    assert TARGET.size(case)[:6] == TARGET.size(shorter)[:6]
