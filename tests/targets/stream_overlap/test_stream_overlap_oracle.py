"""stream_overlap's serial torch oracle on schedules worked out by hand."""

from __future__ import annotations

import numpy as np

from moefuzz.execute.inprocess import oracle_outputs
from moefuzz.model.case import Case
from moefuzz_targets.stream_overlap import contract
from moefuzz_targets.stream_overlap.oracle import stream_overlap_torch


def schedule(pages, fills, lengths=None, *, num_pages, page_size, slot_size, copy_method="copy_engine") -> Case:
    pages = np.array(pages, dtype=np.int32)
    case = Case(
        {
            "batch_pages": pages,
            "page_fills": np.array(fills, dtype=np.int32),
            "kernel_lengths": np.array(lengths if lengths is not None else [0] * len(pages), dtype=np.int32),
        },
        {"num_pages": num_pages, "page_size": page_size, "slot_size": slot_size, "copy_method": copy_method},
    )
    contract.check(case)
    return case


def host_pages(case: Case) -> np.ndarray:
    return oracle_outputs(stream_overlap_torch, case)["host_pages"]


def test_one_batch_writes_the_first_slot_of_its_page_and_copies_the_page_whole():
    # pool: 1 page of 2 slots of 2 elements; batch 0 writes slot 0: (0*2 + 0)*2 + e + 1 = 1, 2
    ref = host_pages(schedule([[0]], [[1]], num_pages=1, page_size=2, slot_size=2))
    assert ref.dtype == np.int32 and ref.shape == (1, 1, 2, 2)
    assert ref.tolist() == [[[[1, 2], [0, 0]]]]  # slot 1 was never written: still 0


def test_a_reused_page_shows_the_new_batch_in_the_slots_it_wrote_and_the_old_one_elsewhere():
    # 2 pages of 2 slots, D = 1, so slot s of batch b holds (b * 4 + s) + 1
    case = schedule([[1], [1]], [[2], [1]], num_pages=2, page_size=2, slot_size=1)
    ref = host_pages(case)
    assert ref[0, 0, :, 0].tolist() == [3, 4]  # batch 0 wrote slots 2 and 3
    assert ref[1, 0, :, 0].tolist() == [7, 4]  # batch 1 rewrote slot 2 only; slot 3 keeps batch 0's
    assert ref[0, 0, 0, 0] == contract.slot_value(0, 2, 0, 4, 1)
    assert ref[1, 0, 0, 0] == contract.slot_value(1, 2, 0, 4, 1)


def test_each_copy_is_a_snapshot_taken_right_after_its_own_forward():
    # batch 0 writes page 0, batch 1 page 1, batch 2 page 0 again; batch 1 copies pages 1 and 0
    case = schedule([[0, -1], [1, 0], [0, -1]], [[1, 0], [1, 1], [1, 0]], num_pages=2, page_size=1, slot_size=1)
    ref = host_pages(case)
    # slot s of batch b: b * 2 + s + 1
    assert ref[0, 0, 0, 0] == 1  # batch 0, slot 0
    assert ref[1, 0, 0, 0] == 4  # batch 1, slot 1
    assert ref[1, 1, 0, 0] == 3  # batch 1 also rewrote page 0: (1 * 2 + 0) + 1
    assert ref[2, 0, 0, 0] == 5  # batch 2, slot 0
    assert ref[0, 1].tolist() == [[0]] and ref[2, 1].tolist() == [[0]]  # rows of -1 pages: 0, unspecified


def test_slot_values_count_elements_then_slots_then_batches():
    case = schedule([[0], [0]], [[3], [3]], num_pages=1, page_size=3, slot_size=4)
    ref = host_pages(case)
    assert ref[0, 0].reshape(-1).tolist() == list(range(1, 13))
    assert ref[1, 0].reshape(-1).tolist() == list(range(13, 25))


def test_spin_lengths_and_the_copy_method_never_change_the_result():
    base = schedule([[2, 0], [0, 1]], [[2, 1], [1, 2]], num_pages=3, page_size=2, slot_size=3)
    other = base.replace(
        {"kernel_lengths": np.array([4096, 7], dtype=np.int32)},
        copy_method="sm_kernel",
    )
    assert np.array_equal(host_pages(base), host_pages(other))
