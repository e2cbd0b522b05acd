"""The interpreter's out-of-bounds checker (moefuzz.execute.oob) on tiny Triton kernels.

CPU only: the checker hooks the Triton interpreter, which runs only without a GPU here.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from moefuzz.execute.inprocess import launch_kernel
from moefuzz.execute.oob import OutOfBoundsAccess, checked_memory, find_out_of_bounds
from moefuzz.model.case import Case
from moefuzz.model.outcome import Outcome, classify_crash_text
from moefuzz.model.target import OutputSpec

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the Triton interpreter (CPU)")

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")


@triton.jit
def shifted_copy(x_ptr, y_ptr, n, shift, BLOCK: tl.constexpr):
    """y[i] = x[i + shift] for i < n."""
    offs = tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs + shift, mask=offs < n), mask=offs < n)


@triton.jit
def store_at(y_ptr, n, shift, BLOCK: tl.constexpr):
    """y[i + shift] = i for i < n."""
    offs = tl.arange(0, BLOCK)
    tl.store(y_ptr + offs + shift, offs, mask=offs < n)


@triton.jit
def masked_far_load(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    """Lanes i >= n point 2**30 elements past x but are masked off: y[i] = x[i] for i < n."""
    offs = tl.arange(0, BLOCK)
    far = tl.where(offs < n, offs, offs + (1 << 30))
    tl.store(y_ptr + offs, tl.load(x_ptr + far, mask=offs < n, other=0), mask=offs < n)


@triton.jit
def add_at(counts_ptr, index):
    tl.atomic_add(counts_ptr + index, 1)


def refused(run) -> OutOfBoundsAccess:
    """The OutOfBoundsAccess that ``run()`` raised (the interpreter wraps it)."""
    with pytest.raises(Exception) as info:
        run()
    oob = find_out_of_bounds(info.value)
    assert oob is not None, f"not an out-of-bounds access: {info.value!r}"
    return oob


def test_a_load_one_element_past_an_input_is_reported_with_the_tensor_and_offset():
    x, y = torch.arange(8, dtype=torch.int32), torch.zeros(8, dtype=torch.int32)

    def run():
        with checked_memory(lambda: {"x": x, "y": y}):
            shifted_copy[(1,)](x, y, 8, 1, BLOCK=16)

    oob = refused(run)
    assert (oob.access.access, oob.access.kernel, oob.access.program_id) == ("load", "shifted_copy", (0, 0, 0))
    assert (oob.access.buffer.name, oob.access.offset, oob.access.lanes, oob.access.active) == ("x", 8, 1, 8)
    assert "out-of-bounds load in kernel shifted_copy" in str(oob)
    assert "the first is x[8], 1 element past its end (nearest buffer x: 8 x int32, kernel argument x_ptr" in str(oob)


def test_a_store_before_an_output_is_refused_before_it_writes():
    storage = torch.full((12,), -7, dtype=torch.int32)
    y = storage[4:]  # the kernel is given elements 4..11; 0..3 belong to no buffer it has

    def run():
        with checked_memory(lambda: {"y": y}):
            store_at[(1,)](y, 8, -2, BLOCK=8)

    oob = refused(run)
    assert (oob.access.access, oob.access.buffer.name, oob.access.offset, oob.access.lanes) == ("store", "y", -2, 2)
    assert "y[-2], 2 elements before its start" in str(oob)
    assert storage.tolist() == [-7] * 12, "the refused store wrote something"


def test_masked_off_lanes_are_not_reported():
    x, y = torch.arange(8, dtype=torch.int32), torch.zeros(16, dtype=torch.int32)
    with checked_memory(lambda: {"x": x, "y": y}) as session:
        masked_far_load[(1,)](x, y, 8, BLOCK=16)
    assert session is not None and session.accesses == 2
    assert y[:8].tolist() == list(range(8))


def test_an_in_bounds_kernel_runs_unchanged_and_the_interpreter_is_restored():
    import triton.runtime.interpreter as interpreter

    before = (interpreter._interpreter, vars(interpreter.GridExecutor)["__call__"])
    x = torch.arange(8, dtype=torch.int32)
    plain, checked = torch.zeros(8, dtype=torch.int32), torch.zeros(8, dtype=torch.int32)
    shifted_copy[(1,)](x, plain, 7, 1, BLOCK=8)
    with checked_memory(dict):
        shifted_copy[(1,)](x, checked, 7, 1, BLOCK=8)
    assert torch.equal(plain, checked) and checked[:7].tolist() == list(range(1, 8))
    assert (interpreter._interpreter, vars(interpreter.GridExecutor)["__call__"]) == before


def test_an_atomic_outside_every_buffer_is_an_out_of_bounds_atomic():
    counts = torch.zeros(4, dtype=torch.int32)

    def run():
        with checked_memory(dict):
            add_at[(1,)](counts, 4)

    oob = refused(run)
    assert (oob.access.access, oob.access.buffer.name, oob.access.offset) == ("atomic", "counts_ptr", 4)
    with checked_memory(dict):
        add_at[(1,)](counts, 3)
    assert counts.tolist() == [0, 0, 0, 1]


@triton.jit
def wide_load(x_ptr, y_ptr, index):
    """y[0] = int64 element ``index`` of the int32 buffer x."""
    tl.store(y_ptr, tl.load(x_ptr.to(tl.pointer_type(tl.int64)) + index))


def test_a_wide_load_that_starts_inside_a_buffer_but_crosses_its_end_is_reported():
    x, y = torch.arange(3, dtype=torch.int32), torch.zeros(1, dtype=torch.int64)
    with checked_memory(dict):
        wide_load[(1,)](x, y, 0)  # bytes 0..7 of 12
    assert y.item() == 1 << 32

    def run():
        with checked_memory(dict):
            wide_load[(1,)](x, y, 1)  # bytes 8..15 of 12

    oob = refused(run)
    assert (oob.access.buffer.name, oob.access.offset, oob.access.where) == ("x_ptr", 2, "overlapping its end")


def entry_store_before(ctx):
    """A kernel entry that stores 3 elements before its output."""
    store_at[(1,)](ctx.outputs["out"], 4, -3, BLOCK=4)


def entry_scratch_copy(ctx):
    """A kernel entry that copies through a scratch buffer, in bounds."""
    scratch = ctx.scratch((4,), torch.int32)
    shifted_copy[(1,)](ctx.inputs["x"], scratch, 4, 0, BLOCK=4)
    shifted_copy[(1,)](scratch, ctx.outputs["out"], 4, 0, BLOCK=4)


def test_launch_kernel_on_the_cpu_names_the_context_buffer_and_allows_scratch():
    case = Case({"x": np.arange(4, dtype=np.int32)}, {})
    specs = {"out": OutputSpec((4,), "int32")}
    cpu = torch.device("cpu")
    oob = refused(lambda: launch_kernel(entry_store_before, specs, case, cpu))
    assert "out[-3], 3 elements before its start (nearest buffer out: 4 x int32, kernel argument y_ptr" in str(oob)
    assert launch_kernel(entry_scratch_copy, specs, case, cpu)["out"].tolist() == [0, 1, 2, 3]


def test_a_triton_without_the_hook_runs_unchecked_and_warns_once(monkeypatch, caplog):
    import triton.runtime.interpreter as interpreter

    import moefuzz.execute.oob as oob

    class LoadStoreOnly:
        def __init__(self, inner):
            self.load, self.store = inner.load, inner.store

    monkeypatch.setattr(interpreter, "_interpreter", LoadStoreOnly(interpreter._interpreter))
    monkeypatch.setattr(oob, "_warned", set())
    x, y = torch.arange(8, dtype=torch.int32), torch.zeros(8, dtype=torch.int32)
    with caplog.at_level(logging.WARNING, logger="moefuzz.execute.oob"):
        for _ in range(2):
            with checked_memory(dict) as session:
                shifted_copy[(1,)](x, y, 8, 0, BLOCK=8)
            assert session is None
    assert torch.equal(x, y)
    assert [r.getMessage() for r in caplog.records] == [
        "moefuzz.execute.oob: triton.runtime.interpreter._interpreter lacks ['atomic_rmw', 'atomic_cas']: "
        "running unchecked"
    ]


def test_an_out_of_bounds_crash_is_classified_by_access_and_keeps_the_worker():
    text = "out-of-bounds store in kernel k, program (0, 0, 0): 1 of 4 active lanes outside every buffer"
    assert classify_crash_text(text) == "out-of-bounds-store"
    assert not Outcome("crash", "out-of-bounds-store").ends_worker
    assert Outcome("crash", "SIGSEGV").ends_worker and Outcome("crash", "illegal-memory-access").ends_worker
