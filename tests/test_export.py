"""`moefuzz export`'s parts: inline literals, checks read off contracts, the import scan, the
script's own comparison. (Running exported scripts end to end: test_export_script.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moefuzz.errors import UsageError
from moefuzz.execute.inprocess import oracle_outputs
from moefuzz.model.case import Case
from moefuzz.model.registry import builtin_targets, get_target
from moefuzz.model.target import resolve_entry
from moefuzz.store.corpus import load_finding
from moefuzz.ui.export import export_finding
from moefuzz.ui.export.checks import derive_checks
from moefuzz.ui.export.importscan import moefuzz_imports
from moefuzz.ui.export.runtime import compare_output
from moefuzz.ui.export.script import inline_literal

ROOT = Path(__file__).resolve().parent.parent
THREE_STEP_FINDING = ROOT / "corpus" / "three_step_sort" / "bug-duplicate-topk--divergence-expert_first_token_offset"


def checks_of(target_name: str, case: Case):
    target = get_target(target_name)
    ref = oracle_outputs(resolve_entry(target.oracle), case)
    return derive_checks(target.compare, case, ref)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int32).reshape(3, 4),
        np.array([-(2**63), 2**63 - 1], dtype=np.int64),
        np.array([True, False, True]),
        np.array([0.1, -0.0, float("nan"), float("inf"), -float("inf"), 1e-45], dtype=np.float32),
        np.array([1 / 3, 2.0**-1074], dtype=np.float64),
        np.array(7, dtype=np.uint8),
        np.zeros((0, 8), dtype=np.int32),
    ],
    ids=["int32-2d", "int64-extremes", "bool", "float32-specials", "float64-subnormal", "0-d", "empty"],
)
def test_an_inline_literal_rebuilds_the_array_bit_for_bit(array):
    literal = inline_literal(array)
    assert literal is not None
    rebuilt = eval(literal, {"np": np, "nan": float("nan"), "inf": float("inf")})
    assert rebuilt.dtype == array.dtype and rebuilt.shape == array.shape
    assert rebuilt.tobytes() == array.tobytes()


def test_a_nan_with_a_payload_is_not_inlined():
    payload = np.array([0x7FC00001], dtype=np.uint32).view(np.float32)
    assert inline_literal(payload) is None


def test_three_step_sort_checks_cover_only_the_local_rows_the_contract_specifies():
    checks = checks_of("three_step_sort", load_finding(THREE_STEP_FINDING).case)
    # T=257, K=2, local expert 2 only in token 256 (twice): N=2 permuted rows, u = k*T + t.
    assert checks["expert_first_token_offset"].entries is None
    assert checks["permuted_row_to_unpermuted_row"].entries == ((0, 2),)
    assert checks["permuted_token_selected_experts"].entries == ((0, 2),)
    assert checks["unpermuted_row_to_permuted_row"].entries == ((256, 257), (513, 514))
    assert not any(c.any_order or c.rtol for c in checks.values())


def test_moe_align_sorted_token_ids_are_checked_in_any_order_and_the_rest_exactly():
    case = Case(
        {"topk_ids": np.array([[0], [0], [1]], dtype=np.int32)},
        {"num_experts": 2, "block_size": 4, "pad_sorted_ids": False},
    )
    checks = checks_of("moe_align_block_size", case)
    assert checks["sorted_token_ids"].any_order is True
    assert checks["sorted_token_ids"].entries is None
    assert checks["expert_ids"].any_order is False
    assert checks["num_tokens_post_padded"].entries is None


def test_ep_gather_tolerance_is_read_as_about_one_bf16_ulp():
    case = Case(
        {
            "input_tensor": np.array([[1.0, 2.0], [0.5, -4.0]], dtype=np.float32),
            "recv_topk": np.array([[0, -1], [1, 0]], dtype=np.int32),
            "recv_topk_weight": np.array([[0.5, 0.25], [0.25, 2.0]], dtype=np.float32),
            "input_index": np.array([[1, 0], [0, 1]], dtype=np.int32),
        },
        {"num_experts": 2},
    )
    check = checks_of("ep_gather", case)["output_tensor"]
    assert check.entries is None and not check.any_order
    assert 2.0**-8 <= check.rtol <= 2.0**-6  # the contract's RTOL is 2**-7 plus an absolute part


def test_no_built_in_kernel_or_oracle_imports_moefuzz_when_imported():
    for target in builtin_targets().values():
        entries = [kernel.entry for kernel in target.kernels] + [target.oracle]
        assert moefuzz_imports(entries) == [], target.name


def test_the_import_scan_sees_moefuzz_imported_by_a_kernel_module(tmp_path, monkeypatch):
    package = tmp_path / "mykernels"
    package.mkdir()
    (package / "__init__.py").write_text("import moefuzz.model.target\n")  # bound bare by the script: not run
    (package / "ops.py").write_text(
        "from typing import TYPE_CHECKING\nfrom mykernels import helpers\n"
        "if TYPE_CHECKING:\n    from moefuzz.execute.launch import LaunchContext\n"
        "def run(ctx):\n    import moefuzz.errors\n"
    )
    (package / "helpers.py").write_text("import numpy\nfrom moefuzz.model.case import Case\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = moefuzz_imports(["mykernels.ops:run"])
    assert [(f.module, f.line, f.name) for f in found] == [("mykernels.helpers", 2, "moefuzz.model.case")]


def test_the_scripts_comparison_reports_the_first_entries_as_tri_and_ref():
    ref = np.array([[1, 2], [3, 4]], dtype=np.int32)
    tri = np.array([[1, 9], [3, 7]], dtype=np.int32)
    lines = compare_output("offsets", tri, ref, {"entries": None})
    assert lines[0] == "offsets: 2 of 4 checked entries differ"
    assert lines[1] == "  offsets[0, 1]: tri_offsets=9 ref_offsets=2"
    assert compare_output("offsets", tri, ref, {"entries": [[0, 1], [2, 3]]}) == []


def test_the_scripts_comparison_honours_order_and_tolerance_and_never_matches_nan():
    ref = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert compare_output("x", ref[::-1].copy(), ref, {"any_order": True}) == []
    assert compare_output("x", ref[::-1].copy(), ref, {}) != []
    assert compare_output("x", ref * (1 + 2**-9), ref, {"rtol": 2**-7}) == []
    assert compare_output("x", ref * (1 + 2**-6), ref, {"rtol": 2**-7}) != []
    assert compare_output("x", np.full(3, np.nan, np.float32), ref, {"rtol": 1.0}) != []


def test_export_refuses_an_output_that_is_not_a_python_file(tmp_path):
    with pytest.raises(UsageError, match=r"output='.*repro.txt' must name a \.py file"):
        export_finding(THREE_STEP_FINDING, tmp_path / "repro.txt")


def test_the_cli_exports_with_one_error_line_for_a_missing_finding(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "moefuzz.ui.cli", "export", str(tmp_path / "nothing"), "-o", str(tmp_path / "r.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("moefuzz: error: no finding at path=")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.py").exists()


def test_exporting_a_finding_of_a_target_file_warns_of_its_moefuzz_imports_and_unimportable_module(
    tmp_path, fake_targets
):
    from moefuzz.store.corpus import Finding, save_finding

    original = load_finding(THREE_STEP_FINDING)
    finding = Finding("fake_sort", "miscount-duplicates", "divergence", "x", "m", original.case, original.case)
    exported = export_finding(save_finding(tmp_path / "corpus", finding), tmp_path / "repro.py")
    # tests/fake_targets.py, named by path in MOEFUZZ_TARGETS, is loaded under a made-up module name
    assert exported.unimportable == ["moefuzz_user_targets_fake_targets"]
    assert exported.kernel.entry.startswith("moefuzz_user_targets_fake_targets:")
    assert {f.name for f in exported.moefuzz_imports} >= {"moefuzz.execute.launch", "moefuzz.model.target"}


def test_the_script_runtime_restates_moefuzz_int_poison():
    from moefuzz.execute.poison import INT_POISON
    from moefuzz.ui.export import runtime

    assert runtime.INT_POISON == INT_POISON
