"""moe_permute's contract: layout preconditions, derived params, output specs, masks, explanations."""

from __future__ import annotations

import numpy as np
import pytest

from moefuzz.errors import CaseError
from moefuzz.model.case import Case
from moefuzz_targets.moe_permute import contract
from moefuzz_targets.moe_permute.strategy import dispatched_case

# rank 0: t0 [3, 1], t1 [0, 3] | rank 1: t2 [1, 2], t3 padding; globals 1, 3 are local 0, 1.
# Worked out in test_moe_permute_oracle.py.
CASE = dispatched_case([[[3, 1], [0, 3]], [[1, 2]]], [-1, 0, -1, 1], sentinel=-1, hidden_size=2)
REF = {
    "expert_first_token_offset": np.array([0, 2, 4], dtype=np.int64),
    "permuted_idx": np.array([1, 4, 0, 3, -1, -1, -1, -1], dtype=np.int32),
    "inv_permuted_idx": np.array([2, 0, -1, 3, 1, -1, -1, -1], dtype=np.int32),
    "permuted_hidden_states": np.array(
        [[0, 1 / 256], [2, 2 + 1 / 256], [0, 1 / 256], [1, 1 + 1 / 256]] + [[0, 0]] * 4
    ).astype(np.float32),
}


def edit(case: Case, arrays=None, **params) -> Case:
    return case.replace(
        {name: np.asarray(value, dtype=case.arrays[name].dtype) for name, value in (arrays or {}).items()}, **params
    )


def test_hand_made_and_empty_cases_pass_check():
    contract.check(CASE)
    contract.check(dispatched_case([[], [], []], [0, -1, 1], sentinel=-1, top_k=8))  # T = 0
    contract.check(dispatched_case([[[0]]], [-1], sentinel=0))  # no local expert, valid non-local pad


@pytest.mark.parametrize(
    ("case", "names"),
    [
        (Case({"topk_ids": np.zeros((1, 1), np.int32)}, {}), "num_tokens_per_rank"),
        (CASE.replace({"expert_map": np.array([-1, 0, -1, 1], np.int64)}), "expert_map dtype='<i8', not int32"),
        (edit(CASE, {"expert_map": [-1, 0, -1, 2]}), "permutation of 0..1: sorted, they hold 2 where 1 belongs"),
        (edit(CASE, {"expert_map": [-2, 0, -1, 1]}), "expert_map[0]=-2"),
        (edit(CASE, num_local_experts=3), "num_local_experts=3"),
        (edit(CASE, num_experts=5), "num_experts=5"),
        (edit(CASE, max_tokens_per_rank=1), "max_tokens_per_rank=1"),
        (edit(CASE, {"num_tokens_per_rank": [3, 0]}), "num_tokens_per_rank=[3, 0]"),
        (edit(CASE, sentinel=3), "sentinel=3 is a local expert"),
        (edit(CASE, {"num_tokens_per_rank": [1, 1]}), "padded row 1 (rank 0, row 1)"),
        (edit(CASE, {"num_tokens_per_rank": [2, 0]}), "padded row 2 (rank 1, row 0)"),
        (CASE.replace({"hidden_states": np.zeros((3, 2), np.float32)}), "hidden_states shape=(3, 2)"),
        (CASE.replace({"topk_ids": np.zeros((4, 17), np.int32)}), "K=17"),
        (edit(CASE, sentinel=True), "sentinel=True"),
    ],
    ids=[
        "missing-array",
        "int64-map",
        "map-skips-a-local-id",
        "map-below-minus-one",
        "stale-local-count",
        "stale-expert-count",
        "rows-not-r-times-m",
        "count-above-m",
        "local-sentinel",
        "padding-not-whole-sentinel-rows",
        "real-token-after-padding",
        "hidden-row-count",
        "k-17",
        "bool-param",
    ],
)
def test_check_refuses_a_broken_precondition_and_names_the_value(case: Case, names: str):
    with pytest.raises(CaseError) as info:
        contract.check(case)
    assert names in str(info.value)
    assert "\n" not in str(info.value)


def test_derive_recomputes_the_params_the_arrays_fix():
    stale = CASE.replace(
        {"topk_ids": CASE.arrays["topk_ids"][:2], "hidden_states": CASE.arrays["hidden_states"][:2]},
        num_experts=9,
        num_local_experts=9,
        max_tokens_per_rank=9,
    ).replace({"num_tokens_per_rank": np.array([1, 0], np.int32), "expert_map": np.array([0, -1], np.int32)})
    derived = contract.derive(stale)
    assert (derived.params["num_experts"], derived.params["num_local_experts"]) == (2, 1)
    assert derived.params["max_tokens_per_rank"] == 1
    with pytest.raises(CaseError, match="T=3"):
        contract.derive(CASE.replace({"topk_ids": np.zeros((3, 2), np.int32)}))


def test_output_specs_follow_the_case_shape():
    specs = contract.output_specs(CASE)
    assert specs["expert_first_token_offset"].shape == (3,) and specs["expert_first_token_offset"].dtype == "int64"
    assert specs["permuted_idx"].shape == specs["inv_permuted_idx"].shape == (8,)
    assert specs["permuted_hidden_states"].shape == (8, 2)


def test_compare_skips_rows_past_n_and_items_that_are_not_local():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["permuted_idx"][4:] = 2147483605  # p >= N
    tri["inv_permuted_idx"][[2, 5, 6, 7]] = 2147483605  # a remote expert's items and the padding's
    tri["permuted_hidden_states"][4:] = np.nan
    assert contract.compare(CASE, tri, REF) is None


def test_compare_reports_offsets_first_and_an_unwritten_hidden_row():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["permuted_hidden_states"][3, 1] = np.nan
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None and (mismatch.output, mismatch.index) == ("permuted_hidden_states", 7)
    assert "permuted row p=3 belongs to item i=3 (token t=1, k=1; rank 0 row 1" in contract.explain(CASE, mismatch)
    tri["expert_first_token_offset"][2] = 6
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None and (mismatch.output, mismatch.index, mismatch.checked) == (
        "expert_first_token_offset",
        2,
        3,
    )


def test_explain_of_an_offset_names_the_padding_and_the_map_entry_a_minus_one_wraps_to():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["expert_first_token_offset"][2] = 6
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None
    text = contract.explain(CASE, mismatch)
    assert "the local item count N: ref counts 4 local items before it, the kernel 6" in text
    assert "1 padded row(s) hold sentinel -1" in text
    assert "expert_map[-1] would wrap to expert_map[3]=1" in text


def test_explain_of_an_item_names_its_rank_row_and_expert_map_entry():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["inv_permuted_idx"][4] = 2147483605
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None and mismatch.output == "inv_permuted_idx"
    text = contract.explain(CASE, mismatch)
    assert text == "item i=4 (token t=2, k=0; rank 1 row 0 (a real token)): expert 1, expert_map[1]=0 (local expert 0)"
