"""The three-step sort's contract: preconditions, output specs, compare masks and explanations."""

from __future__ import annotations

import numpy as np
import pytest

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz_targets.three_step_sort import contract


def make_case(ids, num_experts: int = 4, start: int = 0, end: int = 4, dtype=np.int32) -> Case:
    table = np.array(ids, dtype=dtype)
    return Case(
        {"token_selected_experts": table},
        {"num_experts": num_experts, "start_expert": start, "end_expert": end},
    )


# t=0: [2, 0], t=1: [1, 1], t=2: [-1, 2]; worked out in test_three_step_sort_oracle.py
REF = {
    "expert_first_token_offset": np.array([0, 1, 3, 5, 5], dtype=np.int64),
    "permuted_row_to_unpermuted_row": np.array([3, 1, 4, 0, 5, -1], dtype=np.int32),
    "permuted_token_selected_experts": np.array([0, 1, 1, 2, 2, -1], dtype=np.int32),
    "unpermuted_row_to_permuted_row": np.array([3, 1, -1, 0, 2, 4], dtype=np.int32),
}
CASE = make_case([[2, 0], [1, 1], [-1, 2]])


def test_a_valid_case_passes_check():
    contract.check(CASE)
    contract.check(make_case(np.zeros((0, 8)), num_experts=1024, start=1000, end=1024))


@pytest.mark.parametrize(
    ("case", "names"),
    [
        (Case({}, {"num_experts": 4, "start_expert": 0, "end_expert": 4}), "token_selected_experts"),
        (make_case([[1, 2]], dtype=np.int64), "dtype='<i8'"),
        (make_case([1, 2]), "ndim=1"),
        (make_case(np.zeros((2, 9))), "K=9"),
        (make_case(np.zeros((2, 0))), "K=0"),
        (make_case(np.zeros((65537, 1))), "T=65537"),
        (make_case([[1]], num_experts=1025, end=1025), "num_experts=1025"),
        (make_case([[1]], start=3, end=2), "(3, 2)"),
        (make_case([[1]], end=5), "(0, 5)"),
        (make_case([[1]], start=-1), "(-1, 4)"),
        (Case({"token_selected_experts": np.ones((1, 1), np.int32)}, {"num_experts": 4}), "start_expert"),
        (make_case([[1]], num_experts=True), "num_experts=True"),
    ],
    ids=[
        "no-array",
        "int64",
        "1-d",
        "k-9",
        "k-0",
        "too-many-tokens",
        "too-many-experts",
        "start-after-end",
        "end-after-num-experts",
        "negative-start",
        "missing-param",
        "bool-param",
    ],
)
def test_check_refuses_a_broken_precondition_and_names_the_value(case: Case, names: str):
    with pytest.raises(CaseError) as info:
        contract.check(case)
    assert names in str(info.value)
    assert "\n" not in str(info.value)


def test_output_specs_follow_the_case_shape():
    specs = contract.output_specs(make_case(np.zeros((5, 3)), num_experts=8, start=2, end=7))
    assert specs["expert_first_token_offset"].shape == (6,)
    assert specs["expert_first_token_offset"].dtype == "int64"
    for name in ("permuted_row_to_unpermuted_row", "unpermuted_row_to_permuted_row"):
        assert specs[name].shape == (15,)
        assert specs[name].dtype == "int32"


def test_compare_skips_unspecified_entries():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["permuted_row_to_unpermuted_row"][5] = 12345  # p >= N
    tri["permuted_token_selected_experts"][5] = 12345
    tri["unpermuted_row_to_permuted_row"][2] = 12345  # the -1 sentinel's row
    assert contract.compare(CASE, tri, REF) is None


def test_compare_reports_offsets_before_the_maps():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["unpermuted_row_to_permuted_row"][4] = 2147483605
    tri["expert_first_token_offset"][2] = 2
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None
    assert (mismatch.output, mismatch.index, mismatch.count, mismatch.checked) == (
        "expert_first_token_offset",
        2,
        1,
        5,
    )


def test_explain_names_the_duplicate_slot_of_an_unwritten_unpermuted_row():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["unpermuted_row_to_permuted_row"][4] = 2147483605
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None and mismatch.output == "unpermuted_row_to_permuted_row"
    text = contract.explain(CASE, mismatch)
    assert "token t=1, k=1, expert 1" in text
    assert "duplicate of k=0" in text


def test_explain_names_the_local_expert_of_an_offset_and_the_first_duplicate_before_it():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["expert_first_token_offset"][2:] -= 1
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None
    text = contract.explain(CASE, mismatch)
    assert "local expert 2" in text
    assert "token t=1, k=1, expert 1" in text
    assert len(text.splitlines()) <= 2


def test_explain_names_the_item_a_permuted_row_should_hold():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["permuted_row_to_unpermuted_row"][3] = 5
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None
    assert "permuted row p=3 belongs to token t=0, k=0, expert 2" in contract.explain(CASE, mismatch)
