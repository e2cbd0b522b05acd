"""alloc_extend's contract: preconditions, output size, the slot properties compare checks on every
run, and explanations that name the request and page."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

from moefuzz.errors import CaseError
from moefuzz.execute.launch import INT_POISON
from moefuzz.model.case import Case
from moefuzz.model.target import INTERPRETER_LIMITS
from moefuzz_targets.alloc_extend import contract
from moefuzz_targets.alloc_extend.contract import POISON_PAGE, UNWRITTEN
from moefuzz_targets.alloc_extend.strategy import allocation_case, cases

# page_size 4, num_pages 10 (pages 1..9). r0: prefix 6 on pages [5, 2] (last slot 9), seq 13.
# r1: prefix 8 on pages [4, 8] (last slot 35, page 8 full), seq 10. Free list [7, 3, 1, 6].
# r0 gets 10, 11 | 28..31 (page 7) | 12 (page 3); r1 gets 4, 5 (page 1). Page 6 stays free.
CASE = allocation_case(
    page_size=4, num_pages=10, prefix_lens=[6, 8], seq_lens=[13, 10], last_loc=[9, 35], free_pages=[7, 3, 1, 6]
)
REF = np.array([10, 11, 28, 29, 30, 31, 12, 4, 5], dtype=np.int64)


def with_slot(entry: int, slot: int) -> dict[str, np.ndarray]:
    tri = REF.copy()
    tri[entry] = slot
    return {"out_indices": tri}


def edit(case: Case, **fields) -> Case:
    params = {name: fields.pop(name) for name in ("page_size", "num_pages", "num_free") if name in fields}
    arrays = {name: np.asarray(value, dtype=np.int64) for name, value in fields.items()}
    return case.replace(arrays, **params)


def test_the_unwritten_marker_is_the_engines_output_poison():
    assert UNWRITTEN == INT_POISON


def test_hand_made_empty_and_decode_cases_pass_check():
    contract.check(CASE)
    contract.check(allocation_case(page_size=16, num_pages=1, prefix_lens=[], seq_lens=[], last_loc=[], free_pages=[]))
    contract.check(
        allocation_case(
            page_size=4, num_pages=5, prefix_lens=[5, 4], seq_lens=[6, 5], last_loc=[12, 11], free_pages=[4]
        )
    )


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases(INTERPRETER_LIMITS))
def test_every_drawn_case_passes_check(case: Case):
    contract.check(case)


@pytest.mark.parametrize(
    ("case", "names"),
    [
        (CASE.replace({"last_loc": np.array([9, 35], np.int32)}), "last_loc dtype='<i4', not int64"),
        (edit(CASE, seq_lens=[13]), "lengths=(2, 1, 2)"),
        (edit(CASE, seq_lens=[5, 10]), "request 0: (prefix_len, seq_len)=(6, 5)"),
        (edit(CASE, page_size=0), "param page_size=0"),
        (edit(CASE, num_free=12), "param num_free=12 outside 0..11"),
        (edit(CASE, num_free=3), "free_pages tail=[6, 999999999"),
        (edit(CASE, free_pages=[7, 3, 1, 10] + [POISON_PAGE] * 8), "free_pages[3]=10 outside 1..num_pages-1=9"),
        (edit(CASE, free_pages=[7, 3, 0, 6] + [POISON_PAGE] * 8), "free_pages[2]=0"),
        (edit(CASE, free_pages=[7, 3, 7, 6] + [POISON_PAGE] * 8), "free_pages lists page=7 twice"),
        (edit(CASE, last_loc=[9, -1]), "request 1: last_loc=-1 outside pages 1..9"),
        (edit(CASE, prefix_lens=[0, 8], seq_lens=[7, 10]), "request 0: last_loc=9 with an empty prefix"),
        (edit(CASE, last_loc=[10, 35]), "request 0: last_loc=10 is not at offset (prefix_len - 1) % page_size"),
        (edit(CASE, last_loc=[9, 3]), "request 1: last_loc=3 outside pages 1..9"),
        (edit(CASE, last_loc=[9, 27]), "request 1: last prefix page=6 is on the free list"),
        (edit(CASE, last_loc=[9, 11]), "requests [0, 1] share last prefix page=2, partly filled by request 0"),
        (edit(CASE, seq_lens=[13, 30]), "the batch needs 8 new pages, more than num_free=4"),
        (
            edit(CASE, prefix_lens=[6, 24], seq_lens=[13, 26]),
            "num_pages=10 cannot hold page 0, 4 free pages and the prefixes' pages (at least 11)",
        ),
    ],
    ids=[
        "int32-last-loc",
        "lengths-differ",
        "seq-below-prefix",
        "page-size-0",
        "no-poisoned-tail",
        "free-page-in-the-tail",
        "free-page-past-the-cache",
        "free-page-zero",
        "free-page-twice",
        "minus-one-last-loc-with-a-prefix",
        "last-loc-without-a-prefix",
        "last-loc-at-the-wrong-offset",
        "last-loc-on-page-zero",
        "last-page-on-the-free-list",
        "partly-filled-page-shared",
        "more-pages-than-free",
        "cache-too-small",
    ],
)
def test_check_refuses_a_broken_precondition_and_names_the_value(case: Case, names: str):
    with pytest.raises(CaseError) as info:
        contract.check(case)
    assert names in str(info.value)
    assert "\n" not in str(info.value)


def test_two_requests_may_share_a_full_last_page():
    # a radix-cache prefix shared whole: page 8 is full for both, neither extends into it
    shared = edit(CASE, prefix_lens=[8, 8], last_loc=[35, 35], seq_lens=[13, 10])
    contract.check(shared)


def test_output_has_one_slot_per_new_token():
    assert contract.output_specs(CASE)["out_indices"].shape == (9,)
    assert contract.output_specs(CASE)["out_indices"].dtype == "int64"


def test_compare_accepts_the_hand_worked_slots():
    assert contract.compare(CASE, {"out_indices": REF}, {"out_indices": REF}) is None


@pytest.mark.parametrize(
    ("entry", "slot", "says"),
    [
        (2, POISON_PAGE * 4 + 1, "a page id from free_pages past the free list (num_free=4)"),
        (3, 40, "request 0 got slot 40 = page 10 of page_size 4, past num_pages=10"),
        (7, -1, "slot -1, negative"),
        (7, 1, "page 0 of page_size 4, the reserved page"),
        (0, 8, "its own last prefix page, a slot its prefix holds"),
        (8, 36, "page 9 of page_size 4, neither free nor its own last prefix page"),
        (7, 20, "page 5 of page_size 4, neither free nor its own last prefix page"),
        (0, 34, "request 1's last prefix page"),
        (7, 24, "page 6 of page_size 4 = free_pages[3], which no request takes in this extend"),
        (7, 28, "page 7 of page_size 4 = free_pages[0], which request 0 takes"),
    ],
    ids=[
        "read-past-the-free-list",
        "past-capacity",
        "negative",
        "reserved-page",
        "own-prefix-slot",
        "page-nobody-lists",
        "earlier-prefix-page",
        "other-requests-last-page",
        "free-page-nobody-takes",
        "slot-handed-out-twice",
    ],
)
def test_compare_reports_each_broken_property_and_explain_names_the_page(entry: int, slot: int, says: str):
    mismatch = contract.compare(CASE, with_slot(entry, slot), {"out_indices": REF})
    assert mismatch is not None
    assert mismatch.output == "out_indices" and mismatch.tri == slot
    explanation = contract.explain(CASE, mismatch)
    assert says in explanation


def test_a_slot_handed_out_twice_is_reported_at_the_holder_the_oracle_disagrees_with():
    mismatch = contract.compare(CASE, with_slot(7, 28), {"out_indices": REF})  # r1 gets r0's page 7 slot
    assert (mismatch.index, mismatch.count) == (7, 2)
    assert contract.explain(CASE, mismatch).startswith("request 1 got slot 28")


def test_properties_come_before_the_oracle_in_their_order():
    tri = REF.copy()
    tri[1] = 99  # past the cache...
    tri[5] = POISON_PAGE * 4  # ...and, later in the output, read past the free list
    mismatch = contract.compare(CASE, {"out_indices": tri}, {"out_indices": REF})
    assert (mismatch.index, mismatch.count) == (5, 1)


def test_a_legal_but_wrong_slot_is_a_plain_mismatch():
    # slot 13 is free for request 0 (page 3 is its second new page), but not the contract's
    tri = REF.copy()
    tri[[6, 5]] = [31, 13]
    mismatch = contract.compare(CASE, {"out_indices": tri}, {"out_indices": REF})
    assert (mismatch.index, mismatch.tri, mismatch.ref, mismatch.count) == (5, 13, 31, 2)


def test_a_never_written_entry_is_a_mismatch_not_a_property():
    mismatch = contract.compare(CASE, with_slot(4, UNWRITTEN), {"out_indices": REF})
    assert (mismatch.index, mismatch.count) == (4, 1)
    assert "never written" in contract.explain(CASE, mismatch)


def test_an_output_of_the_wrong_length_is_reported_as_such():
    mismatch = contract.compare(CASE, {"out_indices": REF[:-1]}, {"out_indices": REF})
    assert mismatch.index == -1
    assert contract.explain(CASE, mismatch) == "out_indices has 8 entries, the contract wants 9"


def test_explain_gives_the_request_its_position_and_how_full_its_last_page_is():
    mismatch = contract.compare(CASE, with_slot(8, 40), {"out_indices": REF})
    lines = contract.explain(CASE, mismatch).splitlines()
    assert lines == [
        "request 1 got slot 40 = page 10 of page_size 4, past num_pages=10, for position 9 (new token 1 of 2)",
        "the contract gives slot 5 = page 1 of page_size 4 = free_pages[2], which request 1 takes",
        "request 1: prefix_len=8, seq_len=10, last_loc=35 (page 8, full: the prefix ends on a page boundary)",
    ]


def test_the_oracle_output_passes_every_property_on_drawn_cases():
    from moefuzz.engine.generate import CaseSource
    from moefuzz.execute.inprocess import oracle_outputs
    from moefuzz_targets.alloc_extend.oracle import alloc_extend_torch

    source = CaseSource(cases(INTERPRETER_LIMITS), seed=3)
    for _ in range(30):
        case = source.draw()
        ref = oracle_outputs(alloc_extend_torch, case)["out_indices"]
        for name, broken in contract.property_violations(case, ref):
            assert not broken.any(), (name, case.describe())
        assert torch.from_numpy(ref).unique().numel() == ref.size
