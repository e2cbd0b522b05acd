"""moe_align_block_size's contract: preconditions, buffer sizes, set-per-segment compare, explain."""

from __future__ import annotations

import numpy as np
import pytest

from moefuzz.errors import CaseError
from moefuzz.execute.launch import INT_POISON
from moefuzz.model.case import Case
from moefuzz_targets.moe_align_block_size import contract


def make_case(ids, num_experts: int = 4, block_size: int = 2, pad=False, expert_map=None, dtype=np.int32) -> Case:
    arrays = {"topk_ids": np.array(ids, dtype=dtype)}
    if expert_map is not None:
        arrays["expert_map"] = np.array(expert_map, dtype=np.int32)
    return Case(arrays, {"num_experts": num_experts, "block_size": block_size, "pad_sorted_ids": pad})


# t=0: [0, -1], t=1: [3, 2], t=2: [5, 0] under expert_map [1, -1, 0, -1]; worked out in
# test_moe_align_block_size_oracle.py
CASE = make_case([[0, -1], [3, 2], [5, 0]], expert_map=[1, -1, 0, -1])
REF = {
    "sorted_token_ids": np.array([3, 6, 0, 5, 6, 6, 6, 6, 6, 6], dtype=np.int32),
    "expert_ids": np.array([0, 1, -1, -1, -1], dtype=np.int32),
    "num_tokens_post_padded": np.array([4], dtype=np.int32),
}


def test_a_valid_case_passes_check():
    contract.check(CASE)
    contract.check(make_case(np.zeros((0, 8)), num_experts=1024, block_size=1024, pad=True))
    contract.check(make_case([[-1, 7]], num_experts=1, expert_map=[-1]))


@pytest.mark.parametrize(
    ("case", "names"),
    [
        (Case({}, {"num_experts": 4, "block_size": 2, "pad_sorted_ids": False}), "topk_ids"),
        (make_case([[1, 2]], dtype=np.int64), "dtype='<i8'"),
        (make_case([1, 2]), "ndim=1"),
        (make_case(np.zeros((2, 9))), "K=9"),
        (make_case(np.zeros((65537, 1))), "M=65537"),
        (make_case([[0, -2]]), "min=-2"),
        (make_case([[0]], num_experts=0), "num_experts=0"),
        (make_case([[0]], num_experts=1025), "num_experts=1025"),
        (make_case([[0]], block_size=0), "block_size=0"),
        (make_case([[0]], block_size=True), "block_size=True"),
        (make_case([[0]], pad=1), "pad_sorted_ids=1"),
        (make_case([[0]], expert_map=[0, 1, 2]), "(3,)"),
        (make_case([[0]], expert_map=[0, 2, -1, -1]), "[0, 2]"),
        (make_case([[0]], expert_map=[0, 0, -1, 1]), "[0, 0, 1]"),
    ],
    ids=[
        "no-array",
        "int64",
        "1-d",
        "k-9",
        "too-many-tokens",
        "id-below-minus-one",
        "no-experts",
        "too-many-experts",
        "zero-block",
        "bool-block",
        "int-pad-flag",
        "map-too-short",
        "map-local-ids-with-a-gap",
        "map-local-id-twice",
    ],
)
def test_check_refuses_a_broken_precondition_and_names_the_value(case: Case, names: str):
    with pytest.raises(CaseError) as info:
        contract.check(case)
    assert names in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("numel", "num_experts", "block_size", "pad", "length"),
    [
        (12, 5, 4, False, 27),  # M*K + E*(B-1)
        (12, 5, 4, True, 28),  # rounded up to whole blocks
        (1, 8, 16, False, 16),  # M*K < E: capped at M*K*B
        (3, 8, 16, True, 48),  # the cap applies after the rounding
        (0, 3, 16, False, 0),
        (5, 5, 7, False, 35),  # M*K == E: no cap
    ],
    ids=["plain", "padded", "capped", "capped-after-padding", "no-items", "numel-equals-experts"],
)
def test_buffer_length_follows_vllm(numel: int, num_experts: int, block_size: int, pad: bool, length: int):
    assert contract.max_num_tokens_padded(numel, num_experts, block_size, pad) == length
    specs = contract.output_specs(make_case(np.zeros((numel, 1)), num_experts, block_size, pad))
    assert specs["sorted_token_ids"].shape == (length,)
    assert specs["expert_ids"].shape == (-(-length // block_size),)
    assert specs["num_tokens_post_padded"].shape == (1,)
    assert {spec.dtype for spec in specs.values()} == {"int32"}


def test_the_order_inside_a_segment_is_free():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["sorted_token_ids"][:4] = [6, 3, 5, 0]
    assert contract.compare(CASE, tri, REF) is None


def test_an_item_in_another_experts_segment_is_a_mismatch():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["sorted_token_ids"][:4] = [0, 6, 3, 5]
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None
    assert (mismatch.output, mismatch.index, mismatch.tri, mismatch.ref) == ("sorted_token_ids", 0, 0, 3)
    assert contract.explain(CASE, mismatch) == (
        "slot 0 of sorted_token_ids, in expert 0's segment [0, 2) (compared sorted): ref 3, kernel 0 = "
        "token t=0, k=0 (id 0, local expert 1)"
    )


def test_an_unwritten_tail_slot_is_a_mismatch():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["sorted_token_ids"][9] = INT_POISON
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None and (mismatch.output, mismatch.index, mismatch.checked) == ("sorted_token_ids", 9, 10)
    text = contract.explain(CASE, mismatch)
    assert "past the segments (num_tokens_post_padded=4)" in text
    assert "neither an item nor the sentinel M*K=6" in text


def test_outputs_are_compared_total_first_then_blocks():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["expert_ids"][4] = 0
    tri["sorted_token_ids"][7] = 1
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None and (mismatch.output, mismatch.index) == ("expert_ids", 4)
    assert "block 4 (slots [8, 10)) belongs to no expert (-1)" in contract.explain(CASE, mismatch)
    tri["num_tokens_post_padded"][0] = 6
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None and mismatch.output == "num_tokens_post_padded"


def test_explain_counts_the_skipped_items_and_names_the_first_minus_one():
    tri = {name: value.copy() for name, value in REF.items()}
    tri["num_tokens_post_padded"][0] = 6
    mismatch = contract.compare(CASE, tri, REF)
    assert mismatch is not None
    assert contract.explain(CASE, mismatch).splitlines() == [
        "ref pads the 3 kept items to 4 slots (block_size=2), the kernel to 6",
        "skipped items: 1 ids -1, 1 ids >= num_experts, 1 of other ranks; "
        "first -1 at token t=0, k=1 (id -1, the -1 sentinel: skipped)",
    ]
