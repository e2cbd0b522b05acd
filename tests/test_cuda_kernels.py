"""CUDA C++ kernels: the build cache, what happens without a GPU or nvcc, and (on a GPU) the
built-in CUDA kernels and the load_inline example against their contracts."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moefuzz.errors import MoefuzzError
from moefuzz.execute.cuda_build import (
    NEEDS,
    BuildResult,
    CudaBuild,
    CudaUnavailable,
    build_directory,
    cache_root,
    cached,
    first_errors,
    prebuild_kernel,
    toolchain_problem,
)
from moefuzz.model.case import Case
from moefuzz.model.outcome import classify_crash_text
from moefuzz.model.registry import builtin_targets, get_target

ROOT = Path(__file__).resolve().parent.parent
CUDA_PROBLEM = toolchain_problem()
needs_cuda = pytest.mark.skipif(CUDA_PROBLEM is not None, reason=f"CUDA kernels {NEEDS} (here: {CUDA_PROBLEM})")
without_cuda = pytest.mark.skipif(CUDA_PROBLEM is None, reason="here CUDA kernels can be built and run")

#: Every built-in CUDA kernel: (target, kernel).
CUDA_KERNELS = [
    (target.name, kernel.name)
    for target in builtin_targets().values()
    for kernel in target.kernels
    if kernel.build is not None
]


def test_every_cuda_kernel_and_bug_model_of_the_issue_is_registered_with_its_source() -> None:
    assert set(CUDA_KERNELS) == {
        ("three_step_sort", "cuda"),
        ("three_step_sort", "bug-cuda-first-match"),
        ("moe_align_block_size", "cuda"),
        ("moe_align_block_size", "bug-cuda-negative-id"),
        ("moe_align_block_size", "bug-cuda-smem-experts"),
        ("page_table", "cuda"),
        ("page_table", "bug-cuda-trailing-entries"),
    }
    for target, kernel in CUDA_KERNELS:
        build = get_target(target).kernel(kernel).build
        assert build is not None and build.uses_cuda
        assert all(Path(source).is_file() and source.endswith(".cu") for source in build.sources)


def test_a_bug_model_is_the_same_source_with_a_define_and_hashes_apart() -> None:
    correct = get_target("moe_align_block_size").kernel("cuda").build
    bug = get_target("moe_align_block_size").kernel("bug-cuda-smem-experts").build
    assert correct is not None and bug is not None
    assert bug.sources == correct.sources and bug.defines == (("MOEFUZZ_BUG_SMEM_EXPERTS", "1"),)
    assert bug.source_hash != correct.source_hash and bug.module_name != correct.module_name
    assert "-DMOEFUZZ_BUG_SMEM_EXPERTS=1" in bug.flags()[1] and "-lineinfo" in bug.flags()[1]


def test_the_source_hash_follows_the_files_bytes(tmp_path: Path) -> None:
    source = tmp_path / "k.cu"
    source.write_text("__global__ void k() {}\n")
    build = CudaBuild.from_files("k", "k.cu", relative_to=tmp_path / "any.py")
    before = build.source_hash
    source.write_text("__global__ void k() { }\n")
    assert build.source_hash != before


def test_the_cache_moves_with_moefuzz_cache_and_hits_only_a_complete_entry(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MOEFUZZ_CACHE", str(tmp_path / "cache"))
    assert cache_root() == tmp_path / "cache"
    build = CudaBuild.inline("k", "void f();", "void f() {}", ("f",))
    key = {"torch": "2.11.0", "torch_cuda": "13.0", "archs": "9.0", "python": "cpython-312"}
    directory = build_directory(build, key)
    assert directory.parent == tmp_path / "cache" / "cuda"
    assert cached(build, key) is None and cached(build, None) is None
    directory.mkdir(parents=True)
    (directory / "build.json").write_text(json.dumps({"library": f"{build.module_name}.so", "seconds": 41.5}))
    assert cached(build, key) is None  # the record without its library is not a build
    (directory / f"{build.module_name}.so").write_bytes(b"")
    hit = cached(build, key)
    assert hit == BuildResult(directory, 41.5, cached=True)
    assert hit.describe() == "cached (compiled in 41.5 s)"
    assert cached(build, {**key, "archs": "8.0"}) is None  # another GPU: another entry


def test_first_errors_quotes_the_compilers_error_lines_not_ninjas() -> None:
    text = (
        "Error building extension 'x_1': [1/2] /usr/local/cuda/bin/nvcc -c k.cu -o k.cuda.o\n"
        "FAILED: k.cuda.o\n"
        '/src/k.cu(12): error: identifier "undefined_thing" is undefined\n'
        '1 error detected in the compilation of "/src/k.cu".\n'
        "ninja: build stopped: subcommand failed.\n"
    )
    quoted = first_errors(text).splitlines()
    assert quoted[0].strip() == '/src/k.cu(12): error: identifier "undefined_thing" is undefined'
    assert not any("ninja" in line or "FAILED" in line for line in quoted)


def test_a_launch_failure_is_its_own_crash_class() -> None:
    text = "RuntimeError: CUDA kernel launch failed: invalid argument (small_batch_kernel with 66568 bytes ...)"
    assert classify_crash_text(text) == "launch-failure"


def test_torchs_hint_about_device_side_assertions_does_not_make_a_launch_failure_an_assert() -> None:
    text = (
        "AcceleratorError: CUDA error: too many resources requested for launch\n"
        "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions."
    )
    assert classify_crash_text(text) == "launch-failure"
    assert classify_crash_text("CUDA error: device-side assert triggered") == "device-side-assert"


def test_a_cuda_kernel_on_the_cpu_device_is_refused_before_any_worker() -> None:
    kernel = get_target("three_step_sort").kernel("cuda")
    with pytest.raises(CudaUnavailable, match=NEEDS):
        prebuild_kernel("three_step_sort", kernel, device="cpu")
    assert prebuild_kernel("three_step_sort", get_target("three_step_sort").kernel("triton")) == ""


@without_cuda
def test_targets_lists_the_cuda_kernels_with_what_they_need() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "moefuzz", "targets"], capture_output=True, text=True, cwd=ROOT, check=True
    )
    lines = [line for line in done.stdout.splitlines() if NEEDS in line]
    assert {line.split()[0] for line in lines} == {kernel for _, kernel in CUDA_KERNELS}
    triton = [line for line in done.stdout.splitlines() if line.strip().startswith("triton ")]
    assert triton and not any(NEEDS in line for line in triton)


@without_cuda
def test_run_of_a_cuda_kernel_exits_2_with_what_it_needs(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "moefuzz", "run", "--target", "three_step_sort", "--kernel", "cuda"]
    done = subprocess.run(
        [*command, "--time", "5s", "--corpus", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 2
    assert f"kernel three_step_sort/cuda {NEEDS}" in done.stderr
    assert not any(tmp_path.iterdir())


# -- on a GPU with nvcc --------------------------------------------------------------------------
def _cases() -> dict[str, list[Case]]:
    """Hand-made cases each bug model fails on (and every correct kernel passes)."""
    duplicate = np.zeros((257, 2), np.int32)
    duplicate[:, 1] = 1
    duplicate[256] = [2, 2]
    sort = Case({"token_selected_experts": duplicate}, {"num_experts": 3, "start_expert": 0, "end_expert": 3})
    small_sort = Case(
        {"token_selected_experts": np.array([[1, 0], [0, 0]], np.int32)},
        {"num_experts": 2, "start_expert": 0, "end_expert": 2},
    )
    align = {"block_size": 16, "pad_sorted_ids": False}
    minus_one = Case({"topk_ids": np.array([[-1]], np.int32)}, {"num_experts": 4, **align})
    many_experts = Case({"topk_ids": np.array([[3, 200]], np.int32)}, {"num_experts": 256, **align})
    large = Case({"topk_ids": (np.arange(4096, dtype=np.int32) % 7).reshape(1024, 4)}, {"num_experts": 8, **align})
    return {"three_step_sort": [sort, small_sort], "moe_align_block_size": [minus_one, many_experts, large]}


def _run(target: str, kernel: str, case: Case):
    from moefuzz.runtime.worker import CaseRunner

    return CaseRunner(target, kernel, "cuda").run(case)


@needs_cuda
@pytest.mark.parametrize(("target", "kernel"), [pair for pair in CUDA_KERNELS if pair[1] == "cuda"])
def test_each_correct_cuda_kernel_agrees_with_the_oracle_on_drawn_cases(target: str, kernel: str) -> None:
    from moefuzz.engine.generate import CaseSource
    from moefuzz.model.target import Limits

    spec = get_target(target)
    prebuild_kernel(target, spec.kernel(kernel))
    source = CaseSource(spec.strategy(Limits(max_tokens=2048)), seed=7)
    for case in [*_cases().get(target, []), *(source.draw() for _ in range(40))]:
        outcome = _run(target, kernel, case)
        assert not outcome.failed, (outcome.signature, outcome.message)


@needs_cuda
def test_each_cuda_bug_model_fails_on_its_case() -> None:
    sort, _ = _cases()["three_step_sort"]
    minus_one, many_experts, _ = _cases()["moe_align_block_size"]
    for target, kernel, case, signature in (
        ("three_step_sort", "bug-cuda-first-match", sort, "divergence:"),
        ("moe_align_block_size", "bug-cuda-negative-id", minus_one, "divergence:"),
        ("moe_align_block_size", "bug-cuda-smem-experts", many_experts, "crash:launch-failure"),
    ):
        prebuild_kernel(target, get_target(target).kernel(kernel))
        assert _run(target, kernel, case).signature.startswith(signature), kernel


@needs_cuda
def test_the_load_inline_example_agrees_with_the_three_step_sort_oracle(monkeypatch) -> None:
    import torch

    from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
    from moefuzz.model.target import resolve_entry

    spec = importlib.util.spec_from_file_location("my_cuda_kernel", ROOT / "examples" / "my_cuda_kernel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "my_cuda_kernel", module)
    spec.loader.exec_module(module)
    prebuild_kernel("three_step_sort", module.TARGET.kernel("my-cuda-sort"))
    oracle = resolve_entry(module.TARGET.oracle)
    for case in _cases()["three_step_sort"]:
        tri = launch_kernel(module.my_cuda_sort, module.TARGET.output_specs(case), case, torch.device("cuda"))
        assert module.TARGET.compare(case, tri, oracle_outputs(oracle, case)) is None


def test_a_build_error_is_a_moefuzz_error_that_exits_2() -> None:
    from moefuzz.execute.cuda_build import BuildError

    assert issubclass(BuildError, MoefuzzError) and issubclass(CudaUnavailable, MoefuzzError)


def test_a_changed_cu_file_touches_its_cuda_kernel() -> None:
    from moefuzz.ui.changed import touched_kernels

    changed = [Path("moefuzz_targets/moe_align_block_size/cuda/moe_align_block_size.cu")]
    assert touched_kernels([get_target("moe_align_block_size")], changed, ROOT) == [("moe_align_block_size", "cuda")]


@without_cuda
def test_changed_leaves_out_a_cuda_kernel_a_cpu_runner_cannot_fuzz_and_says_why() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "moefuzz", "changed", "-"],
        input="moefuzz_targets/page_table/contract.py\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert done.stdout.split("\n")[0] == "page_table triton"
    assert "page_table cuda" not in done.stdout and f"kernel page_table/cuda {NEEDS}" in done.stderr
