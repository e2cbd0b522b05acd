"""ep_gather's contract: preconditions, the stated tolerance, explanations, strategy and passes."""

from __future__ import annotations

import numpy as np
import pytest

from moefuzz.engine.generate import CaseSource
from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz.model.target import INTERPRETER_LIMITS
from moefuzz.shrinking import Shrinker
from moefuzz_targets.ep_gather import TARGET, contract
from moefuzz_targets.ep_gather.shrink import compact_rows
from moefuzz_targets.ep_gather.strategy import INT_POISON, make_case

NAN = np.float32("nan")
# rows r0 = [1, 2], r1 = [0.5, -4], r2 NaN padding; t0 = 0.5 r1; t1 = 0.25 r0 + 2 r1; t2 nothing
CASE = Case(
    {
        "input_tensor": np.array([[1.0, 2.0], [0.5, -4.0], [NAN, NAN]], np.float32),
        "recv_topk": np.array([[0, -1], [1, 0], [-1, -1]], np.int32),
        "recv_topk_weight": np.array([[0.5, 0.25], [0.25, 2.0], [1.0, 1.0]], np.float32),
        "input_index": np.array([[1, 2], [0, 1], [0, 2]], np.int32),
    },
    {"num_experts": 2},
)
REF = {"output_tensor": np.array([[0.25, -2.0], [1.25, -7.5], [0.0, 0.0]], np.float32)}


def broken(**arrays) -> Case:
    return CASE.replace(arrays)


def test_a_valid_case_passes_check():
    contract.check(CASE)


@pytest.mark.parametrize(
    ("case", "names"),
    [
        (Case({}, {"num_experts": 2}), "input_tensor"),
        (CASE.replace(num_experts=0), "num_experts=0"),
        (broken(recv_topk=np.zeros((3, 9), np.int32)), "K=9"),
        (broken(input_tensor=np.zeros((3, 0), np.float32)), "H=0"),
        (broken(recv_topk_weight=np.zeros((3, 1), np.float32)), "(3, 1)"),
        (broken(recv_topk=np.array([[2, -1], [1, 0], [-1, -1]], np.int32)), "id=2"),
        (broken(input_tensor=np.full((3, 2), 0.1, np.float32)), "input_tensor[0, 0]=0.1"),
        (broken(input_index=np.array([[3, 2], [0, 1], [0, 2]], np.int32)), "input_index[0, 0]=3"),
        (broken(input_index=np.array([[1, 2], [-1, 1], [0, 2]], np.int32)), "input_index[1, 0]=-1"),
        (broken(input_index=np.array([[2, 2], [0, 1], [0, 2]], np.int32)), "row=2"),
        (broken(recv_topk_weight=np.array([[NAN, 0], [1, 1], [1, 1]], np.float32)), "recv_topk_weight[0, 0]=nan"),
    ],
    ids=[
        "no-arrays",
        "no-experts",
        "k-9",
        "no-hidden",
        "weight-shape",
        "id-past-experts",
        "value-not-bf16",
        "index-past-rows",
        "valid-index-minus-one",
        "valid-slot-on-a-nan-row",
        "nan-weight",
    ],
)
def test_check_refuses_a_broken_precondition_and_names_the_value(case: Case, names: str):
    with pytest.raises(CaseError) as info:
        contract.check(case)
    assert names in str(info.value)
    assert "\n" not in str(info.value)


def test_anything_goes_in_the_minus_one_slots():
    index = CASE.arrays["input_index"].copy()
    index[0, 1], index[2] = INT_POISON, -7
    weight = CASE.arrays["recv_topk_weight"].copy()
    weight[2] = np.inf
    contract.check(broken(input_index=index, recv_topk_weight=weight))


def test_compare_allows_one_bf16_ulp_and_refuses_two():
    tri = {"output_tensor": REF["output_tensor"].copy()}
    tri["output_tensor"][1, 1] = -7.5 - 2.0**-7 * 7.5 * 0.99  # within RTOL * |ref|
    assert contract.compare(CASE, tri, REF) is None
    tri["output_tensor"][1, 1] = -7.5 - 2 * 2.0**-7 * 7.5
    mismatch = contract.compare(CASE, tri, REF)
    assert (mismatch.output, mismatch.index, mismatch.checked) == ("output_tensor", 3, 6)


def test_compare_wants_exact_zeros_for_tokens_without_a_valid_slot_and_no_nan_anywhere():
    tri = {"output_tensor": REF["output_tensor"].copy()}
    tri["output_tensor"][2, 0] = 1e-30
    assert contract.compare(CASE, tri, REF).index == 4
    tri = {"output_tensor": REF["output_tensor"].copy()}
    tri["output_tensor"][0, 1] = NAN  # the poison of an unwritten entry
    assert contract.compare(CASE, tri, REF).index == 1


def test_tolerance_grows_with_the_sum_of_magnitudes_when_terms_cancel():
    case = CASE.replace(
        {
            "input_tensor": np.array([[256.0], [-256.0]], np.float32),
            "recv_topk": np.array([[0, 1]], np.int32),
            "recv_topk_weight": np.array([[1.0, 1.0]], np.float32),
            "input_index": np.array([[0, 1]], np.int32),
        }
    )
    ref = {"output_tensor": np.zeros((1, 1), np.float32)}
    assert contract.compare(case, {"output_tensor": np.full((1, 1), 2.0**-9, np.float32)}, ref) is None
    assert contract.compare(case, {"output_tensor": np.full((1, 1), 2.0**-6, np.float32)}, ref) is not None


def test_explain_lists_the_tokens_slots_and_names_a_gathered_minus_one_slot():
    tri = {"output_tensor": REF["output_tensor"].copy()}
    tri["output_tensor"][2, 0] = 1.0 * 1.0  # t2's -1 slot k=0 gathered: weight 1 * input_tensor[0, 0]
    mismatch = contract.compare(CASE, tri, REF)
    text = contract.explain(CASE, mismatch)
    assert text.splitlines()[0].startswith("token t=2, column d=0: k=0: -1 (skip), input_index 0")
    assert "is slot k=0's term: the -1 slot was gathered, not skipped" in text


def test_strategy_cases_are_valid_and_hold_what_a_scatter_leaves_unwritten():
    source = CaseSource(TARGET.strategy(INTERPRETER_LIMITS), seed=5)
    stale = nan_rows = router_weights = 0
    for _ in range(150):
        case = source.draw()
        contract.check(case)
        skipped = case.arrays["recv_topk"] < 0
        index = case.arrays["input_index"][skipped]
        stale += bool(((index >= 0) & (index < case.arrays["input_tensor"].shape[0])).any())
        nan_rows += bool(np.isnan(case.arrays["input_tensor"]).any())
        router_weights += bool((case.arrays["recv_topk_weight"][skipped] > 0).any())
    assert stale > 10 and nan_rows > 10 and router_weights > 10


def test_make_case_puts_each_valid_slot_on_a_row_of_its_experts_segment_in_any_order():
    topk = np.array([[1, -1], [0, 1], [1, 1]], np.int32)
    case = make_case(topk, 3, hidden=2, seed=4, atomic_order=True, unwritten_index="poison")
    index = case.arrays["input_index"]
    assert sorted(index[topk == 1].tolist()) == [128, 129, 130, 131] and index[1, 0] == 0
    assert index[0, 1] == INT_POISON
    assert case.arrays["input_tensor"].shape == (256, 2)


def test_compact_rows_keeps_named_rows_and_renumbers_every_in_range_entry():
    case = make_case(np.array([[0, -1], [-1, 1]], np.int32), 2, hidden=1, seed=0, unwritten_index="stale")
    seen = []
    shrinker = Shrinker(
        case,
        lambda c: seen.append(c) or True,
        [],
        lambda c: (c.arrays["input_tensor"].shape[0],),
        contract.check,
        budget_s=10,
    )
    compact_rows(shrinker)
    shrunk = shrinker.current
    old, new = case.arrays["input_index"], shrunk.arrays["input_index"]
    assert shrunk.arrays["input_tensor"].shape[0] == np.unique(old).size
    np.testing.assert_array_equal(
        shrunk.arrays["input_tensor"][new.reshape(-1)], case.arrays["input_tensor"][old.reshape(-1)]
    )
