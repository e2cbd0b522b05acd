"""conventional_target: a target folder's modules found by their conventional names."""

from __future__ import annotations

import numpy as np
import pytest

from moefuzz.model.compare import compare_close
from moefuzz.model.convention import conventional_target, kernel, kernel_entry
from moefuzz.model.registry import builtin_targets
from moefuzz.model.target import resolve_entry
from moefuzz.shrinking.routing import routing_passes
from moefuzz_targets.page_table import contract as page_table_contract
from moefuzz_targets.three_step_sort.strategy import LAYOUT


def test_kernel_entry_is_target_underscore_kernel_name_in_the_kernels_module():
    assert kernel_entry("moefuzz_targets.page_table", "bug-trailing-entries") == (
        "moefuzz_targets.page_table.kernels:page_table_bug_trailing_entries"
    )


def test_every_builtin_kernel_and_oracle_entry_resolves():
    for target in builtin_targets().values():
        assert callable(resolve_entry(target.oracle)), target.oracle
        for spec in target.kernels:
            assert callable(resolve_entry(spec.entry)), spec.entry


def test_explicit_kernel_entry_is_kept():
    target = conventional_target(
        "moefuzz_targets.three_step_sort", summary="s", source="src", kernels=(kernel("mine", "x", entry="m:f"),)
    )
    assert [spec.entry for spec in target.kernels] == ["m:f"]


def test_contract_functions_are_taken_when_the_contract_defines_them():
    target = builtin_targets()["page_table"]
    assert target.explain_crash is page_table_contract.explain_crash
    assert target.compare is page_table_contract.compare
    sort = builtin_targets()["three_step_sort"]
    assert sort.derive.__module__ == "moefuzz.model.target"  # the identity default: no contract.derive


def test_target_without_shrink_module_shrinks_by_its_routing_layout():
    target = builtin_targets()["three_step_sort"]
    assert [p.name for p in target.shrink_passes] == [p.name for p in routing_passes(LAYOUT)]


def test_overrides_replace_the_convention():
    size = lambda case: (0,)  # noqa: E731
    target = conventional_target(
        "moefuzz_targets.three_step_sort", summary="s", source="src", kernels=(), shrink_passes=(), size=size
    )
    assert target.shrink_passes == () and target.size is size


def test_missing_strategy_module_raises_import_error():
    with pytest.raises(ImportError):
        conventional_target("moefuzz_targets.shared", summary="s", source="src", kernels=())


def test_compare_close_reports_the_first_entry_outside_rtol_and_atol():
    ref = np.array([1.0, 2.0, 4.0, 8.0], dtype=np.float32)
    tri = np.array([1.0, 2.0 + 1e-3, 4.5, 9.0], dtype=np.float32)
    mismatch = compare_close("o", tri, ref, rtol=1e-2, atol=0.0)
    assert mismatch is not None and (mismatch.index, mismatch.count, mismatch.checked) == (2, 2, 4)
    assert mismatch.tri == 4.5 and mismatch.ref == 4.0


def test_compare_close_takes_one_atol_per_entry():
    ref = np.zeros(3)
    tri = np.array([0.5, 0.5, 0.5])
    assert compare_close("x", tri, ref, rtol=0.0, atol=np.array([1.0, 1.0, 1.0])) is None
    mismatch = compare_close("x", tri, ref, rtol=0.0, atol=np.array([1.0, 0.1, 1.0]))
    assert mismatch is not None and mismatch.index == 1


def test_compare_close_never_accepts_nan():
    ref = np.array([np.nan, 1.0])
    assert compare_close("x", np.array([np.nan, 1.0]), ref, rtol=1.0, atol=1.0).index == 0


def test_compare_close_reports_different_entry_counts_at_index_minus_one():
    mismatch = compare_close("x", np.zeros(2), np.zeros(3), rtol=0.0, atol=0.0)
    assert mismatch is not None and (mismatch.index, mismatch.tri, mismatch.ref) == (-1, 2, 3)
