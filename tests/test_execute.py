"""launch_kernel's packed outputs: one device block, the same poison, the same results.

On a CUDA device every output lives in one block (one copy there, one back); the interpreter
keeps separate buffers for its checker. These tests force the packed layout on the CPU, with the
checker off, and pin that a kernel sees what it would see in separate buffers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moefuzz.case import Case
from moefuzz.execute import PACK_ALIGN, launch_kernel
from moefuzz.launch import LaunchContext, poison_value
from moefuzz.perturb import POISONS
from moefuzz.target import OutputSpec
from targets.three_step_sort import contract
from targets.three_step_sort.kernels import three_step_sort_bug_duplicate_topk, three_step_sort_triton

CPU = torch.device("cpu")
SPECS = {
    "offsets": OutputSpec((5,), "int64"),
    "rows": OutputSpec((3, 7), "int32"),
    "flags": OutputSpec((2,), "bool"),
    "scores": OutputSpec((0,), "float32"),
    "weights": OutputSpec((4,), "float32"),
}


def untouched(ctx: LaunchContext) -> None:
    """Writes nothing: every output comes back as its poison."""


def record_layout(ctx: LaunchContext) -> None:
    """Writes each output's index into it and records the outputs' data pointers."""
    record_layout.pointers = {name: out.data_ptr() for name, out in ctx.outputs.items() if out.numel()}  # type: ignore[attr-defined]
    record_layout.views = [out._base is not None for out in ctx.outputs.values()]  # type: ignore[attr-defined]
    for index, out in enumerate(ctx.outputs.values()):
        out.fill_(index + 1)


@pytest.mark.parametrize("poison", [p for p in POISONS if p != "random"])
def test_packed_outputs_hold_each_outputs_own_poison_and_shape(poison):
    got = launch_kernel(untouched, SPECS, Case({}), CPU, poison=poison, check_memory=False, packed=True)
    for name, spec in SPECS.items():
        assert got[name].shape == spec.shape and got[name].dtype == np.dtype(spec.dtype)
        expected = poison_value(getattr(torch, spec.dtype), poison)
        np.testing.assert_array_equal(got[name], np.full(spec.shape, expected, dtype=spec.dtype))


def test_random_poison_is_the_same_packed_or_not():
    unpacked = launch_kernel(untouched, SPECS, Case({}), CPU, poison="random", seed=7, check_memory=False)
    packed = launch_kernel(untouched, SPECS, Case({}), CPU, poison="random", seed=7, check_memory=False, packed=True)
    for name in SPECS:
        np.testing.assert_array_equal(packed[name], unpacked[name])


def test_packed_outputs_start_on_allocator_boundaries_in_order_and_come_back_written():
    got = launch_kernel(record_layout, SPECS, Case({}), CPU, check_memory=False, packed=True)
    pointers = list(record_layout.pointers.values())  # type: ignore[attr-defined]
    assert pointers == sorted(pointers)
    assert all((p - pointers[0]) % PACK_ALIGN == 0 for p in pointers)
    for index, name in enumerate(SPECS):
        np.testing.assert_array_equal(got[name], np.full(SPECS[name].shape, index + 1, dtype=SPECS[name].dtype))


@pytest.mark.parametrize("kernel", [three_step_sort_triton, three_step_sort_bug_duplicate_topk])
def test_a_real_kernel_gives_the_same_outputs_packed_and_unpacked(kernel):
    rng = np.random.default_rng(3)
    ids = rng.integers(-1, 9, size=(300, 4)).astype(np.int32)
    ids[:, 1] = ids[:, 0]  # a repeated expert in every token's top-k: the bug model's trigger
    case = Case({"token_selected_experts": ids}, {"num_experts": 8, "start_expert": 2, "end_expert": 7})
    specs = contract.output_specs(case)
    unpacked = launch_kernel(kernel, specs, case, CPU, check_memory=False, packed=False)
    packed = launch_kernel(kernel, specs, case, CPU, check_memory=False, packed=True)
    assert sorted(packed) == sorted(unpacked)
    for name in unpacked:
        np.testing.assert_array_equal(packed[name], unpacked[name])


def test_the_interpreters_memory_checker_keeps_separate_outputs_and_a_cpu_launch_is_unpacked_by_default():
    launch_kernel(record_layout, SPECS, Case({}), CPU, check_memory=False, packed=True)
    assert all(record_layout.views)  # type: ignore[attr-defined]
    launch_kernel(record_layout, SPECS, Case({}), CPU, check_memory=True, packed=True)
    assert not any(record_layout.views)  # type: ignore[attr-defined]
    launch_kernel(record_layout, SPECS, Case({}), CPU, check_memory=False)
    assert not any(record_layout.views)  # type: ignore[attr-defined]
