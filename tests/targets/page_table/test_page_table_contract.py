"""page_table's contract: preconditions, output specs, the comparison of page ids, explanations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from moefuzz.errors import CaseError
from moefuzz.execute.inprocess import oracle_outputs
from moefuzz.model.case import Case
from moefuzz.model.target import INTERPRETER_LIMITS
from moefuzz_targets.page_table import contract
from moefuzz_targets.page_table.oracle import page_table_torch
from moefuzz_targets.page_table.strategy import cases
from tests.targets.page_table.test_page_table_oracle import FULL, swa_case


def edit(case: Case, arrays=None, **params) -> Case:
    return case.replace(
        {name: np.asarray(value, dtype=case.arrays[name].dtype) for name, value in (arrays or {}).items()}, **params
    )


def with_cell(case: Case, name: str, index: tuple[int, ...], value: int) -> Case:
    array = case.arrays[name].copy()
    array[index] = value
    return case.replace({name: array})


SWA = swa_case(4)
NO_MAPPING = Case({k: v for k, v in SWA.arrays.items() if k != contract.SWA_MAPPING}, SWA.params)


def test_hand_made_and_drawn_cases_pass_check():
    contract.check(FULL)
    contract.check(SWA)
    contract.check(swa_case(4, seq_len=0))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(cases(INTERPRETER_LIMITS))
    def drawn(case: Case) -> None:
        contract.check(case)

    drawn()


@pytest.mark.parametrize(
    ("case", "names"),
    [
        (Case({"req_to_token": np.zeros((1, 1), np.int32)}, {}), "req_pool_indices"),
        (FULL.replace({"seq_lens": np.array([8, 9, 7, 0], np.int32)}), "seq_lens dtype='<i4', not int64"),
        (edit(FULL, page_size=0), "page_size=0"),
        (edit(FULL, page_size=True), "page_size=True"),
        (edit(FULL, {"seq_lens": [8, 9, 13, 0]}), "seq_lens[2]=13 outside 0..max_context=12"),
        (edit(FULL, {"seq_lens": [8, -1, 7, 0]}), "seq_lens[1]=-1"),
        (edit(FULL, {"req_pool_indices": [1, 2, 0, 4]}), "req_pool_indices[3]=4 outside 0..3"),
        (edit(FULL, {"seq_lens": [8, 9, 7]}), "req_pool_indices has 4 entries and seq_lens=3"),
        (edit(FULL, max_pages=2), "max_pages=2 outside 3..3"),
        (edit(FULL.replace({"seq_lens": np.array([4, 5, 1, 0])}), max_pages=4), "max_pages=4 outside 2..3"),
        (with_cell(FULL, "req_to_token", (1, 5), 32), "request 0 (req_to_token row 1) position 5: slot=32"),
        (with_cell(FULL, "req_to_token", (1, 5), 10), "position 5: slot=10 is not offset 1"),
        (with_cell(FULL, "req_to_token", (2, 5), 5), "request 1 (req_to_token row 2) position 5: slot=5"),
        (edit(FULL, sliding_window=0), "sliding_window=0"),
        (edit(FULL, sliding_window=4), "sliding_window=4, swa_num_pages=0"),
        (NO_MAPPING, "full_to_swa_index_mapping absent disagree"),
        (edit(SWA, swa_num_pages=0), "swa_num_pages=0"),
        (SWA.replace({contract.SWA_MAPPING: np.zeros(31, np.int64)}), "has 31 entries, not num_pages * page_size"),
        (with_cell(SWA, contract.SWA_MAPPING, (28,), 16), "full_to_swa_index_mapping of position 8: slot=16"),
        (with_cell(SWA, contract.SWA_MAPPING, (9,), 9), "full_to_swa_index_mapping of position 5: slot=9"),
    ],
    ids=[
        "missing-array",
        "int32-seq-lens",
        "page-size-0",
        "bool-param",
        "seq-len-past-the-context",
        "negative-seq-len",
        "pool-index-past-the-rows",
        "one-seq-len-short",
        "table-narrower-than-a-request",
        "table-wider-than-the-context",
        "owned-slot-past-the-cache",
        "owned-slot-at-the-wrong-offset",
        "one-page-of-positions-on-two-pages",
        "window-0",
        "window-without-a-pool",
        "window-without-a-mapping",
        "pool-without-pages",
        "mapping-of-the-wrong-length",
        "window-slot-past-the-swa-pool",
        "window-page-on-two-swa-pages",
    ],
)
def test_check_refuses_a_broken_precondition_and_names_the_value(case: Case, names: str):
    with pytest.raises(CaseError) as info:
        contract.check(case)
    assert names in str(info.value)
    assert "\n" not in str(info.value)


def test_stale_mapping_entries_off_the_window_are_not_checked():
    contract.check(with_cell(SWA, contract.SWA_MAPPING, (20,), -5))  # full page 5 is page 0, before the window


def test_output_specs_size_the_flat_indices_by_the_table_pages():
    specs = contract.output_specs(FULL)
    assert {name: (spec.shape, spec.dtype) for name, spec in specs.items()} == {
        "page_table": ((4, 3), "int32"),
        "kv_indptr": ((5,), "int32"),
        "kv_indices": ((7,), "int32"),
    }
    assert contract.output_specs(swa_case(1))["kv_indices"].shape == (1,)


def ref_of(case: Case) -> dict[str, np.ndarray]:
    return oracle_outputs(page_table_torch, case)


def tri_with(case: Case, name: str, index: int, value: int) -> dict[str, np.ndarray]:
    tri = {key: value.copy() for key, value in ref_of(case).items()}
    tri[name].reshape(-1)[index] = value
    return tri


def test_compare_accepts_the_oracle_and_catches_a_wrong_trailing_page():
    assert contract.compare(FULL, ref_of(FULL), ref_of(FULL)) is None
    mismatch = contract.compare(FULL, tri_with(FULL, "page_table", 8, 6), ref_of(FULL))  # request 2, page 2
    assert mismatch is not None
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref, mismatch.count) == ("page_table", 8, 6, 0, 1)
    assert contract.explain(FULL, mismatch) == (
        "request 2 page 2: tri=6 ref=0 (past seq_len=7: the request has 2 page(s); "
        "req_to_token[0, 8]=99 is not its own)"
    )


def test_compare_reports_an_id_outside_the_pool_before_an_earlier_wrong_one():
    tri = tri_with(FULL, "page_table", 2, 3)  # request 0 page 2: wrong but in the cache
    tri["page_table"].reshape(-1)[11] = 8  # request 3 page 2: page 8 of an 8-page cache
    mismatch = contract.compare(FULL, tri, ref_of(FULL))
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.count) == ("page_table", 11, 8, 2)
    assert contract.explain(FULL, mismatch).splitlines()[1] == (
        "tri page 8 is outside the KV cache's 8 pages: an attention kernel reads out of bounds"
    )


@pytest.mark.parametrize("value", [-1, 4, 2**31 - 1])
def test_compare_catches_flat_indices_outside_the_swa_pool(value: int):
    mismatch = contract.compare(SWA, tri_with(SWA, "kv_indices", 1, value), ref_of(SWA))
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref) == ("kv_indices", 1, value, 2)
    text = contract.explain(SWA, mismatch)
    assert text.startswith(f"kv_indices[1] = request 0 page 2: tri={value} ref=2 (req_to_token[0, 8]=28: full page 7;")
    assert "translating the page id instead reads full_to_swa_index_mapping[7]=13" in text
    assert f"tri page {value} is outside the SWA pool's 4 pages" in text


def test_compare_catches_a_wrong_indptr_and_explains_the_counts():
    mismatch = contract.compare(FULL, tri_with(FULL, "kv_indptr", 2, 4), ref_of(FULL))
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref) == ("kv_indptr", 2, 4, 5)
    assert contract.explain(FULL, mismatch).endswith("pages per request: [2, 3, 2, 0]")


def test_explain_names_a_page_before_the_window():
    mismatch = contract.compare(SWA, tri_with(SWA, "page_table", 0, 3), ref_of(SWA))
    assert contract.explain(SWA, mismatch) == (
        "request 0 page 0: tri=3 ref=0 (before the window [6, 10) of sliding_window=4, which starts in page 1; "
        "req_to_token[0, 0]=20 is the full cache's, not the SWA table's)"
    )


def test_a_flat_index_array_of_the_wrong_length_is_a_mismatch():
    tri = ref_of(FULL)
    tri["kv_indices"] = tri["kv_indices"][:-1]
    mismatch = contract.compare(FULL, tri, ref_of(FULL))
    assert (mismatch.output, mismatch.index) == ("kv_indices", -1)
    assert contract.explain(FULL, mismatch) == "kv_indices has 6 entries, the contract wants 7"
