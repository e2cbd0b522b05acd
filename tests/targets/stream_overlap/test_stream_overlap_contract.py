"""stream_overlap's contract: preconditions with the offending value in the message, the host
buffer's shape, a comparison that skips rows of -1 pages, and explanations naming the fence."""

from __future__ import annotations

import numpy as np
import pytest

from moefuzz.errors import CaseError
from moefuzz.execute.inprocess import oracle_outputs
from moefuzz.execute.launch import INT_POISON
from moefuzz.model.case import Case
from moefuzz.model.target import OutputSpec
from moefuzz_targets.stream_overlap import contract
from moefuzz_targets.stream_overlap.oracle import stream_overlap_torch


def valid() -> Case:
    return Case(
        {
            "batch_pages": np.array([[2, 0], [0, -1]], dtype=np.int32),
            "page_fills": np.array([[4, 1], [2, 0]], dtype=np.int32),
            "kernel_lengths": np.array([10, 0], dtype=np.int32),
        },
        {"num_pages": 3, "page_size": 4, "slot_size": 2, "copy_method": "sm_kernel"},
    )


def with_arrays(**arrays) -> Case:
    return valid().replace({name: np.array(value, dtype=np.int32) for name, value in arrays.items()})


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (with_arrays(batch_pages=[[2, 0], [0, 3]], page_fills=[[4, 1], [2, 1]]), "outside -1..num_pages-1"),
        (with_arrays(batch_pages=[[2, 0], [-1, 0]], page_fills=[[4, 1], [0, 2]]), "real page after -1 padding"),
        (with_arrays(batch_pages=[[2, 2], [0, -1]]), "batch_pages[0]=[2, 2] repeats a page"),
        (with_arrays(page_fills=[[5, 1], [2, 0]]), "page_fills[0]=[5, 1]"),
        (with_arrays(page_fills=[[4, 1], [2, 1]]), "0 on -1 padding"),
        (with_arrays(page_fills=[[4, 0], [2, 0]]), "want 1..page_size=4"),
        (with_arrays(kernel_lengths=[-1, 0]), "kernel_lengths=[-1, 0]"),
        (with_arrays(kernel_lengths=[1, 2, 3]), "shapes="),
        (valid().replace(copy_method="dma"), "copy_method='dma'"),
        (valid().replace(page_size=0), "page_size=0"),
        (valid().replace(slot_size=4096), "slot_size=4096"),
        (valid().replace(num_pages=2**20, slot_size=1024), "exceeds int32 slot values"),
        (valid().replace({"batch_pages": np.array([[2, 0]], dtype=np.int64)}), "batch_pages dtype='<i8'"),
    ],
)
def test_check_names_the_offending_value(case, message):
    with pytest.raises(CaseError) as excinfo:
        contract.check(case)
    assert message in str(excinfo.value)


def test_a_batch_that_copies_nothing_is_a_legal_schedule():
    contract.check(with_arrays(batch_pages=[[2, 0], [-1, -1]], page_fills=[[4, 1], [0, 0]]))


def test_the_host_buffer_is_batches_by_pages_by_page_size_by_slot_size():
    specs = contract.output_specs(valid())
    assert specs == {"host_pages": OutputSpec((2, 2, 4, 2), "int32")}


def test_rows_of_minus_one_pages_are_not_compared_and_every_other_entry_is():
    case = valid()
    ref = oracle_outputs(stream_overlap_torch, case)
    tri = {"host_pages": ref["host_pages"].copy()}
    tri["host_pages"][1, 1] = INT_POISON  # batch 1's -1 page: unspecified
    assert contract.compare(case, tri, ref) is None
    tri["host_pages"][1, 0, 3, 1] += 1  # batch 1, page 0, slot 3, element 1
    mismatch = contract.compare(case, tri, ref)
    assert mismatch is not None and mismatch.count == 1 and mismatch.checked == 2 * 4 * 2 + 4 * 2
    assert np.unravel_index(mismatch.index, (2, 2, 4, 2)) == (1, 0, 3, 1)


def explain_one_wrong_entry(value: int) -> str:
    """Explanation of batch 1's copy of page 0 when slot 0, element 0 reads ``value``."""
    case = valid()
    ref = oracle_outputs(stream_overlap_torch, case)
    tri = {"host_pages": ref["host_pages"].copy()}
    tri["host_pages"][1, 0, 0, 0] = value
    mismatch = contract.compare(case, tri, ref)
    assert mismatch is not None
    return contract.explain(case, mismatch)


def test_a_copy_that_ran_before_its_forward_is_blamed_on_the_write_stream():
    # batch 0 wrote slot 0 of page 0: (0 * 12 + 0) * 2 + 0 + 1 = 1; batch 1 rewrote it: 25
    text = explain_one_wrong_entry(1)
    assert "batch 1's copy of page 0 (host row j=0), slot 0, element 0" in text
    assert "ref 25 = batch 1's value of slot 0, element 0" in text
    assert "tri 1 = batch 0's value" in text
    assert "the copy did not wait for the forward" in text
    assert "no forward had written" in explain_one_wrong_entry(0)


def test_a_later_batch_value_is_blamed_on_the_forward_stream():
    later = int(contract.slot_value(2, 0, 0, 12, 2))  # a batch 2 that does not exist here
    assert "the forward did not wait for the copy" in explain_one_wrong_entry(later)


def test_an_in_progress_marker_says_a_forward_was_mid_write():
    text = explain_one_wrong_entry(-37)
    assert "in-progress marker -37" in text and "mid-write" in text


def test_the_uncopied_marker_is_moefuzz_int_poison():
    from moefuzz.execute.launch import INT_POISON
    from moefuzz_targets.stream_overlap.layout import UNCOPIED

    assert UNCOPIED == INT_POISON
