"""Sanitizer escalation: reading compute-sanitizer's reports, and a clear word when it cannot run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from moefuzz.execute.sanitize import ERROR_EXIT_CODE, SanitizerReport, format_table, parse_report

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
REPRODUCER = next(CORPUS.glob("three_step_sort/*/finding.json")).parent

MEMCHECK = """\
========= COMPUTE-SANITIZER
========= Invalid __global__ read of size 4 bytes
=========     at _scatter_kernel+0x1a0 in kernels.py:88
=========     by thread (3,0,0) in block (2,0,0)
=========     Address 0x7f2a00000ffc is out of bounds
=========     Saved host backtrace up to driver entry point at kernel launch time
=========         Host Frame: cuLaunchKernel [0x2cf5a6] in libcuda.so.1
moefuzz-sanitize: crash:illegal-memory-access AcceleratorError: CUDA error: unspecified launch failure
========= ERROR SUMMARY: 1 error
"""

RACECHECK_CLEAN = """\
========= COMPUTE-SANITIZER
moefuzz-sanitize: divergence:expert_start_loc expert_start_loc[3]: tri=2147483605 ref=384
========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)
"""


def test_a_memcheck_report_gives_the_error_count_and_the_first_access() -> None:
    report = parse_report("memcheck", MEMCHECK, ERROR_EXIT_CODE, 4.2)
    assert report.errors == 1
    assert report.first == (
        "Invalid __global__ read of size 4 bytes",
        "at _scatter_kernel+0x1a0 in kernels.py:88",
        "by thread (3,0,0) in block (2,0,0)",
    )
    assert report.outcome.startswith("crash:illegal-memory-access")


def test_a_clean_racecheck_run_reports_zero_hazards_and_the_reproducers_own_outcome() -> None:
    report = parse_report("racecheck", RACECHECK_CLEAN, 0, 1.0)
    assert report.errors == 0 and report.first == ()
    assert report.outcome.startswith("divergence:expert_start_loc")


def test_a_tool_that_died_before_its_summary_has_unknown_errors() -> None:
    report = parse_report("initcheck", "========= COMPUTE-SANITIZER\nKilled\n", -9, 600.0)
    assert report.errors is None


def test_the_table_has_one_row_per_tool() -> None:
    reports = [
        parse_report("memcheck", MEMCHECK, ERROR_EXIT_CODE, 4.2),
        SanitizerReport("racecheck", 0, 0, (), 1.0, ""),
    ]
    lines = format_table(reports).splitlines()
    assert lines[0].split()[:4] == ["tool", "errors", "exit", "seconds"]
    assert lines[1].split()[:3] == ["memcheck", "1", str(ERROR_EXIT_CODE)] and "Invalid __global__ read" in lines[1]
    assert lines[2].split()[:2] == ["racecheck", "0"] and lines[2].rstrip().endswith("-")


@pytest.mark.skipif(
    torch.cuda.is_available() and shutil.which("compute-sanitizer") is not None, reason="here the sanitizer can run"
)
def test_sanitize_without_a_gpu_or_the_tool_says_why_and_exits_0(tmp_path: Path) -> None:
    copy = tmp_path / REPRODUCER.name
    shutil.copytree(REPRODUCER, copy)
    before = (copy / "finding.json").read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "moefuzz.ui.cli", "sanitize", str(copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "no sanitizer table made" in result.stdout and "Traceback" not in result.stderr
    assert (copy / "finding.json").read_bytes() == before


def test_sanitize_of_a_path_without_a_finding_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "moefuzz.ui.cli", "sanitize", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


MEMCHECK_CUDA = """\
========= COMPUTE-SANITIZER
========= Invalid __global__ read of size 8 bytes
=========     at page_table_kernel(const int *, bool, int *, long)+0x2f0 in /src/page_table/cuda/page_table.cu:58
=========     by thread (1,0,0) in block (0,0,0)
moefuzz-sanitize: crash:illegal-memory-access AcceleratorError: CUDA error: an illegal memory access was encountered
========= ERROR SUMMARY: 1 error
"""


def test_a_memcheck_report_of_a_cuda_kernel_names_its_source_file_and_line() -> None:
    report = parse_report("memcheck", MEMCHECK_CUDA, ERROR_EXIT_CODE, 3.0)
    assert report.source == "page_table.cu:58"
    assert "at page_table.cu:58" in format_table([report])
    assert parse_report("memcheck", MEMCHECK, ERROR_EXIT_CODE, 4.2).source == "kernels.py:88"
