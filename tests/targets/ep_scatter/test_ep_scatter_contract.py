"""ep_scatter's contract: preconditions, derived counts, set-wise comparison and explanations."""

from __future__ import annotations

import numpy as np
import pytest

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz_targets.ep_scatter import contract
from moefuzz_targets.ep_scatter.strategy import make_case

POISON = 0x7FFFFFFF - 0x2A

# t0: [1, -1]  t1: [0, 1]  t2: [1, 1], E = 3 (worked out in test_ep_scatter_oracle.py)
CASE = make_case(np.array([[1, -1], [0, 1], [1, 1]], np.int32), num_experts=3, hidden=2, dtype="bf16", seed=0)


def reference() -> dict[str, np.ndarray]:
    x = CASE.arrays["recv_x"]
    output = np.full((256, 2), np.nan, np.float32)
    output[[0, 128, 129, 130, 131]] = x[[1, 0, 1, 2, 2]]
    return {
        "output_tensor": output,
        "output_tensor_scale": np.zeros((256, 0), np.float32),
        "m_indices": np.repeat(np.arange(2, dtype=np.int32), 128),
        "output_index": np.array([[128, -1], [0, 129], [130, 131]], np.int32),
        "expert_start_loc": np.array([1, 132, 256], np.int32),
    }


def test_strategy_cases_and_edge_shapes_pass_check():
    contract.check(CASE)
    contract.check(make_case(np.zeros((0, 8), np.int32), num_experts=1024, hidden=129, dtype="fp8", seed=1))
    contract.check(make_case(np.full((3, 2), -1, np.int32), num_experts=1, hidden=1, dtype="bf16", seed=2))


def broken(**changes) -> Case:
    arrays = {k: v for k, v in changes.items() if isinstance(v, np.ndarray)}
    params = {k: v for k, v in changes.items() if not isinstance(v, np.ndarray)}
    return CASE.replace(arrays, **params)


@pytest.mark.parametrize(
    ("case", "names"),
    [
        (Case({}, {"num_experts": 3, "dtype": "bf16"}), "recv_x"),
        (broken(recv_topk=CASE.arrays["recv_topk"].astype(np.int64)), "dtype='<i8'"),
        (broken(recv_x=CASE.arrays["recv_x"].reshape(-1)), "ndim=1"),
        (broken(dtype="fp16"), "dtype='fp16'"),
        (broken(num_experts=2000), "num_experts=2000"),
        (broken(recv_topk=np.zeros((3, 9), np.int32)), "K=9"),
        (broken(recv_x=np.zeros((3, 0), np.float32)), "H=0"),
        (broken(recv_x=np.zeros((4, 2), np.float32)), "(4, 3, 3)"),
        (broken(recv_x_scale=np.ones((3, 1), np.float32)), "S=1"),
        (broken(recv_topk=np.array([[1, -2], [0, 1], [1, 1]], np.int32)), "id=-2"),
        (broken(recv_topk=np.array([[3, -1], [0, 1], [1, 1]], np.int32)), "id=3"),
        (broken(num_recv_tokens_per_expert=np.array([128, 128], np.int32)), "length=2"),
        (broken(num_recv_tokens_per_expert=np.array([1, 4, 0], np.int32)), "num_recv_tokens_per_expert[0]=1"),
        (broken(num_recv_tokens_per_expert=np.array([128, 256, 0], np.int32)), "num_recv_tokens_per_expert[1]=256"),
        (broken(recv_x=np.full((3, 2), 0.1, np.float32)), "recv_x[0, 0]=0.1"),
    ],
    ids=[
        "no-arrays",
        "int64-ids",
        "1-d-rows",
        "unknown-dtype",
        "too-many-experts",
        "k-9",
        "no-hidden",
        "token-count-mismatch",
        "bf16-with-scales",
        "id-below-minus-one",
        "id-past-experts",
        "counts-length",
        "counts-not-aligned",
        "counts-not-derived",
        "value-not-bf16",
    ],
)
def test_check_refuses_a_broken_precondition_and_names_the_value(case: Case, names: str):
    with pytest.raises(CaseError) as info:
        contract.check(case)
    assert names in str(info.value)
    assert "\n" not in str(info.value)


def test_fp8_rows_must_be_exact_in_e4m3():
    case = make_case(np.zeros((2, 1), np.int32), num_experts=1, hidden=3, dtype="fp8", seed=0)
    contract.check(case)
    rows = case.arrays["recv_x"].copy()
    rows[1, 2] = 449.0
    with pytest.raises(CaseError, match=r"recv_x\[1, 2\]=449.0"):
        contract.check(case.replace({"recv_x": rows}))


def test_derive_recomputes_the_aligned_counts_after_a_pass_drops_tokens():
    shrunk = CASE.replace({"recv_topk": CASE.arrays["recv_topk"][:1], "recv_x": CASE.arrays["recv_x"][:1]})
    derived = contract.derive(shrunk.replace({"recv_x_scale": np.zeros((1, 0), np.float32)}))
    assert derived.arrays["num_recv_tokens_per_expert"].tolist() == [0, 128, 0]
    contract.check(derived)


def test_output_specs_follow_the_aligned_counts():
    specs = contract.output_specs(CASE)
    assert specs["output_tensor"].shape == (256, 2) and specs["output_tensor"].dtype == "float32"
    assert specs["output_tensor_scale"].shape == (256, 0)
    assert specs["m_indices"].shape == (256,)
    assert specs["output_index"].shape == (3, 2)
    assert specs["expert_start_loc"].shape == (3,)


def test_compare_accepts_any_order_inside_a_segment_and_skips_unspecified_entries():
    tri = reference()
    # Atomics took expert 1's rows in another order: swap the rows of (0,0) and (2,1).
    tri["output_index"][0, 0], tri["output_index"][2, 1] = 131, 128
    tri["output_tensor"][[128, 131]] = tri["output_tensor"][[131, 128]]
    tri["output_index"][0, 1] = POISON  # a -1 slot: untouched
    tri["output_tensor"][1:128] = 7.0  # padding rows
    assert contract.compare(CASE, tri, reference()) is None


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ((0, 0), 132, ("output_index", 0, 132)),  # past expert 1's real rows
        ((0, 0), 0, ("output_index", 0, 0)),  # in expert 0's segment
        ((2, 1), 130, ("output_index", 5, 130)),  # the row of (2,0) too
        ((1, 0), POISON, ("output_index", 2, POISON)),  # never written
    ],
    ids=["past-real-rows", "other-expert", "shared-row", "unwritten"],
)
def test_compare_reports_an_output_index_outside_its_rows_or_shared(where, value, expected):
    tri = reference()
    tri["output_index"][where] = value
    mismatch = contract.compare(CASE, tri, reference())
    assert mismatch is not None
    assert (mismatch.output, mismatch.index, mismatch.tri) == expected


def test_compare_checks_each_row_holds_its_items_token_through_the_kernels_index():
    tri = reference()
    tri["output_tensor"][130] = tri["output_tensor"][128]  # (2,0) reads token 0's row
    mismatch = contract.compare(CASE, tri, reference())
    assert mismatch is not None and (mismatch.output, mismatch.index) == ("output_tensor", 260)
    assert "row 130, column 0: expert 1's segment is rows [128, 256), its 4 items take rows [128, 132)" in (
        contract.explain(CASE, mismatch)
    )


def test_compare_reports_an_unwritten_row_and_m_indices_before_the_rows():
    tri = reference()
    tri["output_tensor"][129] = np.nan
    assert contract.compare(CASE, tri, reference()).output == "output_tensor"
    tri["m_indices"][200] = POISON
    mismatch = contract.compare(CASE, tri, reference())
    assert (mismatch.output, mismatch.index) == ("m_indices", 200)
    assert "row 200: expert 1's segment is rows [128, 256)" in contract.explain(CASE, mismatch)


def test_explain_names_the_expert_of_a_wrong_cursor_and_the_item_of_a_wrong_row():
    tri = reference()
    tri["expert_start_loc"][1] = 128
    mismatch = contract.compare(CASE, tri, reference())
    assert (mismatch.output, mismatch.index, mismatch.ref) == ("expert_start_loc", 1, 132)
    assert "expert 1's segment is rows [128, 256), its 4 items take rows [128, 132)" in contract.explain(CASE, mismatch)
    tri = reference()
    tri["output_index"][1, 1] = 0
    text = contract.explain(CASE, contract.compare(CASE, tri, reference()))
    assert text.startswith("token t=1, k=1, local expert 1: expert 1's segment")
    assert text.endswith("the kernel gave row 0")
