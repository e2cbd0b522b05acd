"""paged_decode's contract: preconditions, output spec, the tolerance of compare, explanations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moefuzz.engine.generate import CaseSource
from moefuzz.errors import CaseError
from moefuzz.execute.inprocess import oracle_outputs
from moefuzz.model.case import Case
from moefuzz.model.target import INTERPRETER_LIMITS
from moefuzz.strategies import build_paged_kv_state
from moefuzz_targets.paged_decode import contract
from moefuzz_targets.paged_decode.oracle import paged_decode_torch
from moefuzz_targets.paged_decode.strategy import cases, decode_case, paged_case


def drawn_state(**fields):
    structure = dict(
        page_size=4,
        prefix_lens=[5, 0, 3],
        seq_lens=[9, 0, 4],
        spare_pages=2,
        other_pages=1,
        pool_gaps=1,
        extra_context=0,
        free_order="shuffled",
        garbage="wild",
        window="none",
        seed=1,
    )
    structure.update(fields)
    return build_paged_kv_state(**structure)


# B = 3 (L = 9, 0, 4), page_size 4, Hkv = 2, G = 2, D = 8, one extra garbage column
CASE = decode_case(drawn_state(), num_kv_heads=2, group_size=2, head_dim=8, extra_columns=1, seed=2)


def edit(case: Case, arrays=None, **params) -> Case:
    return case.replace(
        {name: np.asarray(value, dtype=case.arrays[name].dtype) for name, value in (arrays or {}).items()}, **params
    )


def set_entry(case: Case, name: str, index: tuple, value) -> Case:
    array = case.arrays[name].copy()
    array[index] = value
    return case.replace({name: array})


def test_drawn_hand_made_and_empty_cases_pass_check():
    contract.check(CASE)
    contract.check(CASE.replace(sliding_window=3))
    contract.check(
        paged_case(np.zeros((0, 4, 16)), np.zeros((1, 16, 2, 16)), np.zeros((1, 16, 2, 16)), np.zeros((0, 0)), [])
    )
    source = CaseSource(cases(INTERPRETER_LIMITS), seed=7)
    for _ in range(20):
        contract.check(source.draw())


def test_the_drawn_case_has_garbage_past_every_requests_pages_and_nan_pages():
    table, seqlens = CASE.arrays["page_table"], CASE.arrays["cache_seqlens"]
    used = contract.pages_used(seqlens, 4)
    assert used.tolist() == [3, 0, 1] and table.shape == (3, 4)
    owned = {int(p) for i in range(3) for p in table[i, : used[i]]}
    assert 0 not in owned
    assert np.isnan(CASE.arrays["k_cache"][0]).all()  # the reserved page
    unowned = [p for p in range(CASE.arrays["k_cache"].shape[0]) if p not in owned]
    assert np.isnan(CASE.arrays["v_cache"][unowned]).all()
    assert np.isfinite(CASE.arrays["k_cache"][sorted(owned)]).all()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (Case({"q": np.zeros((1, 1, 1), np.float32)}, {}), "case has no array k_cache"),
        (CASE.replace({"page_table": CASE.arrays["page_table"].astype(np.int64)}), "page_table dtype='<i8'"),
        (
            CASE.replace({"v_cache": CASE.arrays["v_cache"][:, :, :1]}),
            "v_cache shape=(8, 4, 1, 8) differs from k_cache's (8, 4, 2, 8)",
        ),
        (CASE.replace({"cache_seqlens": CASE.arrays["cache_seqlens"][:2]}), "cache_seqlens entries=2"),
        (CASE.replace({"q": CASE.arrays["q"][:, :3]}), "Hq=3 must be a multiple of Hkv=2"),
        (CASE.replace({"q": CASE.arrays["q"][:, :, :4]}), "head dim D=4 (k_cache's 8)"),
        (edit(CASE, {"cache_seqlens": [9, 0, 17]}), "cache_seqlens[2]=17 outside 0..max_pages * page_size=16"),
        (edit(CASE, {"cache_seqlens": [9, -1, 4]}), "cache_seqlens[1]=-1"),
        (set_entry(CASE, "page_table", (0, 2), 13), "page_table[0, 2]=13 is one of request 0's pages (L=9)"),
        (set_entry(CASE, "page_table", (2, 0), -1), "page_table[2, 0]=-1"),
        (edit(CASE, sliding_window=-1), "param sliding_window=-1 outside 0..None"),
        (edit(CASE, sliding_window=2.0), "param sliding_window=2.0 is not an int"),
        (edit(CASE, sm_scale=0.0), "param sm_scale=0.0 is not a finite float > 0"),
        (edit(CASE, sm_scale=float("inf")), "sm_scale=inf"),
        (set_entry(CASE, "q", (1, 3, 0), np.nan), "q has a non-finite value at [1, 3, 0]"),
        (set_entry(CASE, "k_cache", (CASE.arrays["page_table"][0, 2], 0, 1, 5), np.inf), "request 0 position 8"),
    ],
    ids=[
        "missing-array",
        "int64-page-table",
        "v-cache-shape",
        "batch-mismatch",
        "hq-not-multiple-of-hkv",
        "head-dim-mismatch",
        "length-past-the-row",
        "negative-length",
        "used-page-past-the-cache",
        "used-page-negative",
        "negative-window",
        "float-window",
        "zero-scale",
        "infinite-scale",
        "nan-query",
        "infinite-attended-key",
    ],
)
def test_check_rejects_a_contract_violation_naming_the_value(case: Case, message: str):
    with pytest.raises(CaseError) as error:
        contract.check(case)
    assert message in str(error.value)


def test_check_accepts_nan_in_slots_no_attended_position_holds():
    # request 0: L=9, W=3 attends positions 6..8; position 0 (page_table[0, 0], slot 0) is outside
    case = set_entry(CASE.replace(sliding_window=3), "k_cache", (CASE.arrays["page_table"][0, 0], 0), np.nan)
    contract.check(case)
    with pytest.raises(CaseError, match="k_cache at request 0 position 0"):
        contract.check(case.replace(sliding_window=0))


def test_output_spec_is_o_shaped_like_q():
    spec = contract.output_specs(CASE)
    assert list(spec) == ["o"] and spec["o"].shape == (3, 4, 8) and spec["o"].dtype == "float32"


def reference(case: Case) -> dict[str, np.ndarray]:
    return oracle_outputs(paged_decode_torch, case)


def test_compare_accepts_rounding_within_the_tolerance():
    ref = reference(CASE)
    noise = (contract.ATOL / 2) * np.sign(np.random.default_rng(0).standard_normal(ref["o"].shape))
    assert contract.compare(CASE, {"o": (ref["o"] + noise).astype(np.float32)}, ref) is None


def test_compare_reports_the_first_entry_beyond_the_tolerance():
    ref = reference(CASE)
    tri = ref["o"].copy()
    tri[2, 1, 5] += 3 * (contract.ATOL + contract.RTOL * abs(tri[2, 1, 5]))
    tri[2, 3, 0] += 0.5
    mismatch = contract.compare(CASE, {"o": tri}, ref)
    assert mismatch is not None
    assert (mismatch.output, mismatch.index, mismatch.count, mismatch.checked) == ("o", 2 * 32 + 1 * 8 + 5, 2, 96)
    assert mismatch.tri == pytest.approx(float(tri[2, 1, 5])) and mismatch.ref == pytest.approx(
        float(ref["o"][2, 1, 5])
    )


def test_compare_counts_nan_and_never_written_poison_as_mismatches():
    ref = reference(CASE)
    poisoned = np.full_like(ref["o"], np.nan)
    mismatch = contract.compare(CASE, {"o": poisoned}, ref)
    assert mismatch is not None and mismatch.index == 0 and mismatch.count == 96
    assert contract.compare(CASE, {"o": ref["o"][:2]}, ref).index == -1  # type: ignore[union-attr]


def test_empty_requests_must_output_zero():
    ref = reference(CASE)
    assert (ref["o"][1] == 0).all()  # L = 0
    tri = ref["o"].copy()
    tri[1] = 1e-3
    assert contract.compare(CASE, {"o": tri}, ref).index == 32  # type: ignore[union-attr]


def test_explain_names_the_request_head_window_and_first_position_outside_it():
    case = CASE.replace(sliding_window=3)
    ref = reference(case)
    tri = ref["o"].copy()
    tri[0, 3, 2] += 0.25
    text = contract.explain(case, contract.compare(case, {"o": tri}, ref))  # type: ignore[arg-type]
    table = case.arrays["page_table"][0].tolist()
    assert text.splitlines()[0] == "request 0 head 3 (kv head 1) dim 2: |tri-ref|=0.25 " + (
        f"(tri_o={tri[0, 3, 2]:.6g}, ref_o={ref['o'][0, 3, 2]:.6g})"
    )
    assert f"request 0: L=9, page_size=4, page_table[0] = {table[:3]} | garbage [" in text
    assert "window W=3 of L=9 attends positions 6..8" in text
    assert f"position 5 (page_table[0, 1]={table[1]}, slot 1) is the first outside it" in text


def test_explain_says_which_garbage_lies_outside_the_cache_or_on_a_nan_page():
    case = paged_case([[[1.0]]], [[[[np.nan]]], [[[0.5]]]], [[[[np.nan]]], [[[0.25]]]], [[1, 0, 2**31 - 1, -1]], [1])
    mismatch = contract.compare(case, {"o": np.full((1, 1, 1), np.nan, np.float32)}, reference(case))
    text = contract.explain(case, mismatch)  # type: ignore[arg-type]
    assert "request 0 head 0 (kv head 0) dim 0: tri_o is NaN: the kernel read a slot no attended position holds" in text
    assert "page_table[0] = [1] | garbage [0 (NaN page), 2147483647 (outside pages 0..1), -1 (outside" in text
    assert "no window: attends positions 0..0" in text
    assert torch.isnan(torch.tensor(mismatch.tri))  # type: ignore[union-attr]
