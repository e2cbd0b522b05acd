"""Test doubles: a target with the three_step_sort contract whose "kernels" are plain Python.

They exist to pin the engine's behaviour (isolation, shrinking, corpus) fast and without Triton:
each one is correct except on the inputs its name says, where it aborts, segfaults, hangs or
writes a wrong offset. Loaded through ``MOEFUZZ_TARGETS`` (see ``moefuzz.model.registry``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import random
import signal
import sys
import time
import zlib
from pathlib import Path

import torch

from moefuzz.execute.launch import LaunchContext
from moefuzz.model.target import KernelSpec
from moefuzz.shrinking.routing import later_duplicates
from moefuzz_targets.three_step_sort import TARGET as THREE_STEP_SORT
from moefuzz_targets.three_step_sort.oracle import three_step_sort_torch

MODULE = __name__


def _has_local_duplicate(ctx: LaunchContext, min_tokens: int) -> bool:
    ids = ctx.inputs["token_selected_experts"].cpu().numpy()
    start, end = int(ctx.params["start_expert"]), int(ctx.params["end_expert"])
    local = (ids >= start) & (ids < end)
    return ids.shape[0] >= min_tokens and bool((later_duplicates(ids) & local).any())


def _write_oracle(ctx: LaunchContext) -> None:
    ref = three_step_sort_torch({n: t.cpu() for n, t in ctx.inputs.items()}, ctx.params)
    for name, out in ctx.outputs.items():
        out.copy_(ref[name].to(out.device))


def correct(ctx: LaunchContext) -> None:
    _write_oracle(ctx)


def abort_on_duplicate(ctx: LaunchContext) -> None:
    if _has_local_duplicate(ctx, 3):
        os.abort()
    _write_oracle(ctx)


#: Environment variable naming the launch counter file of ``abort-sometimes-on-duplicate``.
LAUNCH_COUNTER = "MOEFUZZ_FAKE_LAUNCH_COUNTER"
#: ``abort-sometimes-on-duplicate`` aborts in one of this many launches of a failing input.
FLAKY_PERIOD = 3


def abort_sometimes_on_duplicate(ctx: LaunchContext) -> None:
    """A flaky crash, as a race's: on a repeated local expert (T >= 3) it aborts in one launch of
    :data:`FLAKY_PERIOD`, and passes in the others. Launches of such inputs are counted in the
    file :data:`LAUNCH_COUNTER` names, across workers (every third one aborts: a deterministic
    stand-in for a rate of 1/3); without it, each launch aborts with probability 1/3."""
    if _has_local_duplicate(ctx, 3):
        counter = os.environ.get(LAUNCH_COUNTER)
        if counter is None:
            if random.random() < 1 / FLAKY_PERIOD:
                os.abort()
        else:
            path = Path(counter)
            launches = int(path.read_text() or 0) + 1 if path.exists() else 1
            path.write_text(str(launches))
            if launches % FLAKY_PERIOD == 0:
                os.abort()
    _write_oracle(ctx)


def illegal_address_sometimes_on_duplicate(ctx: LaunchContext) -> None:
    """A flaky illegal memory access, as a race's: on a repeated local expert (T >= 3), each
    launch stores far past an output with probability 1/:data:`FLAKY_PERIOD` (a real illegal
    memory access on a GPU; in the interpreter an out-of-bounds store refused before it
    happens), and passes otherwise. The GPU twin of ``abort-sometimes-on-duplicate``."""
    if _has_local_duplicate(ctx, 3) and random.random() < 1 / FLAKY_PERIOD:
        _poke_far(ctx.outputs["expert_first_token_offset"])
    _write_oracle(ctx)


def segfault_on_duplicate(ctx: LaunchContext) -> None:
    if _has_local_duplicate(ctx, 3):
        ctypes.string_at(0)
    _write_oracle(ctx)


def hang_on_duplicate(ctx: LaunchContext) -> None:
    if _has_local_duplicate(ctx, 3):
        time.sleep(3600)
    _write_oracle(ctx)


def raise_on_duplicate(ctx: LaunchContext) -> None:
    if _has_local_duplicate(ctx, 3):
        raise ValueError("launcher rejects this shape")
    _write_oracle(ctx)


def illegal_address_on_duplicate(ctx: LaunchContext) -> None:
    """A Triton store 2**36 elements past an output: a real illegal memory access on a GPU; in
    the interpreter, an out-of-bounds store that moefuzz.execute.oob refuses before it writes."""
    if _has_local_duplicate(ctx, 3):
        _poke_far(ctx.outputs["expert_first_token_offset"])
    _write_oracle(ctx)


def _poke_far(buffer) -> None:
    import triton
    import triton.language as tl

    @triton.jit
    def poke(ptr, offset):
        tl.store(ptr + offset, 1)

    poke[(1,)](buffer, 1 << 36)
    torch.cuda.synchronize()


def miscount_duplicates(ctx: LaunchContext) -> None:
    """Counts a repeated local expert once when T >= 5: the seed bug's shape, at a small T."""
    _write_oracle(ctx)
    if _has_local_duplicate(ctx, 5):
        ctx.outputs["expert_first_token_offset"][-1] -= 1


#: The poison patterns under which ``stale-read-on-duplicate`` fails: 2 of the 5 that a
#: perturbation plan cycles through, never the plain launch's.
STALE_POISONS = ("max", "random")


def stale_read_on_duplicate(ctx: LaunchContext) -> None:
    """A deterministic stand-in for a race: on a repeated local expert (T >= 5), the count is
    read back from a scratch buffer as if another warp had not stored it yet, which shows only
    when the scratch's fill is one of :data:`STALE_POISONS`; a plain launch always passes."""
    _write_oracle(ctx)
    if _has_local_duplicate(ctx, 5) and ctx.poison in STALE_POISONS:
        ctx.outputs["expert_first_token_offset"][-1] -= 1


#: Environment variable naming the marker file of ``slow-first-compile``.
FIRST_COMPILE_MARKER = "MOEFUZZ_FAKE_FIRST_COMPILE_MARKER"


def slow_first_compile(ctx: LaunchContext) -> None:
    """A kernel whose first launch on a case with a repeated local expert (T >= 3) takes an hour,
    like a Triton compile stuck behind many others, and whose later launches, in any process,
    are instant (the marker file stands for the shared compile cache)."""
    marker = os.environ[FIRST_COMPILE_MARKER]
    if _has_local_duplicate(ctx, 3) and not os.path.exists(marker):
        with open(marker, "w"):
            pass
        time.sleep(3600)
    _write_oracle(ctx)


#: What a CUDA illegal access looks like on a worker's stderr before c10 aborts (the error, then
#: a C++ backtrace whose last line is what a signal's label used to be built from).
CUDA_ABORT_TEXT = (
    "terminate called after throwing an instance of 'c10::AcceleratorError'\n"
    "  what():  CUDA error: an illegal memory access was encountered\n"
    "Exception raised from c10_cuda_check_implementation at /pytorch/c10/cuda/CUDAException.cpp:42\n"
    "frame #0: c10::Error::Error(...) + 0x98 (0x7f3a2c0a1b28 in libc10.so)\n"
    "frame #24: _start + 0x25 (0x657a05 in python3)\n"
)


def cuda_error_then_abort_on_duplicate(ctx: LaunchContext) -> None:
    """On a repeated local expert (T >= 3): prints what c10 prints for a CUDA illegal memory
    access (:data:`CUDA_ABORT_TEXT`) on stderr, then aborts, as a GPU worker does."""
    if _has_local_duplicate(ctx, 3):
        os.write(2, CUDA_ABORT_TEXT.encode())
        os.abort()
    _write_oracle(ctx)


class KernelPanic(BaseException):
    """Not an ``Exception``: escapes every handler of the worker, as a kernel's ``SystemExit``
    or a binding's ``BaseException`` would."""


def _panic() -> None:
    raise KernelPanic("the launcher gave up")


def escape_on_duplicate(ctx: LaunchContext) -> None:
    """On a repeated local expert (T >= 3) raises :class:`KernelPanic`, which ends the worker
    with a Python traceback."""
    if _has_local_duplicate(ctx, 3):
        _panic()
    _write_oracle(ctx)


def realtime_signal_on_duplicate(ctx: LaunchContext) -> None:
    """On a repeated local expert (T >= 3) the worker takes ``SIGRTMIN + 3`` (default action:
    it dies)."""
    if _has_local_duplicate(ctx, 3):
        os.kill(os.getpid(), signal.SIGRTMIN + 3)
        time.sleep(5)
    _write_oracle(ctx)


def cuda_oom_on_duplicate(ctx: LaunchContext) -> None:
    """On a repeated local expert (T >= 3) raises ``torch.cuda.OutOfMemoryError``."""
    if _has_local_duplicate(ctx, 3):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
    _write_oracle(ctx)


#: What CUDA says of a launch it refused for its configuration (the context stays usable).
LAUNCH_REFUSED_TEXT = "CUDA error: too many resources requested for launch"


def launch_failure_on_duplicate(ctx: LaunchContext) -> None:
    """On a repeated local expert (T >= 3) raises the error of a launch the driver refused for
    its configuration (as a kernel asking for more shared memory than a block may have): nothing
    ran, the device context still works."""
    if _has_local_duplicate(ctx, 3):
        raise RuntimeError(LAUNCH_REFUSED_TEXT)
    _write_oracle(ctx)


def launch_failure_breaking_context_on_duplicate(ctx: LaunchContext) -> None:
    """As ``launch-failure-on-duplicate``, but the worker's check of its device context fails
    afterwards (the check is replaced in this worker process: a fault injected)."""
    if _has_local_duplicate(ctx, 3):
        sys.modules["moefuzz.runtime.worker"].context_works = lambda device: False  # type: ignore[attr-defined]
        raise RuntimeError(LAUNCH_REFUSED_TEXT)
    _write_oracle(ctx)


#: ``crash-one-in-ten`` crashes on inputs whose CRC-32 is 0 modulo this.
CRASH_PERIOD = 10


def crash_one_in_ten(ctx: LaunchContext) -> None:
    """A crash storm's bug model: on about one input in :data:`CRASH_PERIOD` (by a CRC-32 of its
    routing table, so the same input always crashes) it prints a CUDA illegal access and aborts
    (:data:`CUDA_ABORT_TEXT`)."""
    ids = ctx.inputs["token_selected_experts"].cpu().numpy()
    if zlib.crc32(ids.tobytes()) % CRASH_PERIOD == 0:
        os.write(2, CUDA_ABORT_TEXT.encode())
        os.abort()
    _write_oracle(ctx)


#: Environment variable overriding :data:`WIDE_EXPERTS` (tests draw few experts).
WIDE_EXPERTS_ENV = "MOEFUZZ_FAKE_WIDE_EXPERTS"
#: ``crash-on-wide-experts`` crashes on cases of at least this many experts: about one case in
#: twelve of the default strategy on a GPU.
WIDE_EXPERTS = 1024


def _wide(ctx: LaunchContext) -> bool:
    return int(ctx.params["num_experts"]) >= int(os.environ.get(WIDE_EXPERTS_ENV, WIDE_EXPERTS))


def crash_on_wide_experts(ctx: LaunchContext) -> None:
    """An input-shaped crash storm's bug model: on every case of at least :data:`WIDE_EXPERTS`
    experts (a per-expert table one entry short) it prints a CUDA illegal access and aborts."""
    if _wide(ctx):
        os.write(2, CUDA_ABORT_TEXT.encode())
        os.abort()
    _write_oracle(ctx)


def _triton_sort(ctx: LaunchContext) -> None:
    """The three-step sort's own Triton kernel (its target's default)."""
    from moefuzz.model.target import resolve_entry

    resolve_entry(THREE_STEP_SORT.default_kernel.entry)(ctx)


def triton(ctx: LaunchContext) -> None:
    """The three-step sort's Triton kernel, unchanged: the crash-free twin of
    ``triton-crash-one-in-ten``."""
    _triton_sort(ctx)


def triton_crash_one_in_ten(ctx: LaunchContext) -> None:
    """The three-step sort's Triton kernel, crashing on about one input in :data:`CRASH_PERIOD`
    (by CRC-32, as ``crash-one-in-ten``): on a GPU with a real illegal memory access (a Triton
    store far past an output), in the interpreter with :data:`CUDA_ABORT_TEXT` and an abort."""
    ids = ctx.inputs["token_selected_experts"].cpu().numpy()
    if zlib.crc32(ids.tobytes()) % CRASH_PERIOD == 0:
        _illegal_access_or_abort(ctx)
    _triton_sort(ctx)


def _illegal_access_or_abort(ctx: LaunchContext) -> None:
    """On a GPU a real illegal memory access (a Triton store far past an output); then, and
    in the interpreter, :data:`CUDA_ABORT_TEXT` and an abort."""
    if ctx.outputs["expert_first_token_offset"].is_cuda:
        _poke_far(ctx.outputs["expert_first_token_offset"])
    os.write(2, CUDA_ABORT_TEXT.encode())
    os.abort()


def triton_crash_on_wide_experts(ctx: LaunchContext) -> None:
    """The three-step sort's Triton kernel, crashing on every case of at least
    :data:`WIDE_EXPERTS` experts (as ``crash-on-wide-experts``): on a GPU with a real illegal
    memory access, in the interpreter with :data:`CUDA_ABORT_TEXT` and an abort."""
    if _wide(ctx):
        _illegal_access_or_abort(ctx)
    _triton_sort(ctx)


def _spec(name: str) -> KernelSpec:
    function = name.replace("-", "_")
    return KernelSpec(name, f"{MODULE}:{function}", f"test double: {name}")


def broken_cases(limits):
    """The three-step sort's strategy with a bug of its own: every case of T >= 4 tokens has its
    local range reversed (start_expert > end_expert), which the contract's check rejects."""
    from moefuzz_targets.three_step_sort.strategy import cases

    def break_range(case):
        if case.arrays["token_selected_experts"].shape[0] < 4:
            return case
        return case.replace(start_expert=int(case.params["num_experts"]) + 1, end_expert=0)

    return cases(limits).map(break_range)


TARGET = dataclasses.replace(
    THREE_STEP_SORT,
    name="fake_sort",
    summary="three_step_sort contract with Python test-double kernels",
    source="tests/fake_targets.py",
    kernels=tuple(
        _spec(n)
        for n in (
            "correct",
            "abort-on-duplicate",
            "abort-sometimes-on-duplicate",
            "illegal-address-sometimes-on-duplicate",
            "segfault-on-duplicate",
            "hang-on-duplicate",
            "raise-on-duplicate",
            "miscount-duplicates",
            "illegal-address-on-duplicate",
            "stale-read-on-duplicate",
            "slow-first-compile",
            "cuda-error-then-abort-on-duplicate",
            "escape-on-duplicate",
            "realtime-signal-on-duplicate",
            "cuda-oom-on-duplicate",
            "launch-failure-on-duplicate",
            "launch-failure-breaking-context-on-duplicate",
            "crash-one-in-ten",
            "crash-on-wide-experts",
            "triton",
            "triton-crash-one-in-ten",
            "triton-crash-on-wide-experts",
        )
    ),
)


#: ``fake_sort`` whose strategy draws cases its contract rejects (:func:`broken_cases`).
BROKEN_TARGET = dataclasses.replace(
    TARGET,
    name="fake_sort_broken_strategy",
    summary="fake_sort with a strategy that breaks the contract's preconditions",
    strategy=broken_cases,
)


def threads_oracle(inputs, params):
    """The three-step sort's oracle, plus the torch threads of the process that ran it."""
    return {**three_step_sort_torch(inputs, params), "torch_threads": torch.tensor([torch.get_num_threads()])}


#: ``fake_sort`` whose oracle also says how many torch threads ran it (:func:`threads_oracle`).
THREADS_TARGET = dataclasses.replace(
    TARGET,
    name="fake_sort_oracle_threads",
    summary="fake_sort whose oracle reports its torch threads",
    oracle=f"{MODULE}:threads_oracle",
)


def compare_raising_on_duplicate(case, actual, expected):
    """The three-step sort's comparison, with a bug of its own: it raises on a repeated local
    expert (T >= 3)."""
    ids = case.arrays["token_selected_experts"]
    if ids.shape[0] >= 3 and bool(later_duplicates(ids).any()):
        raise KeyError("expert_first_token_offset")
    return THREE_STEP_SORT.compare(case, actual, expected)


#: ``fake_sort`` whose comparison raises on some cases (:func:`compare_raising_on_duplicate`).
BROKEN_COMPARE_TARGET = dataclasses.replace(
    TARGET,
    name="fake_sort_broken_compare",
    summary="fake_sort whose compare raises",
    compare=compare_raising_on_duplicate,
)

TARGETS = (BROKEN_TARGET, THREADS_TARGET, BROKEN_COMPARE_TARGET)
