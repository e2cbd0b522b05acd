"""A crash's label is stable and names its cause: the first CUDA error before a signal, the
exception type and kernel frame of an escaping exception (never the worker's number), a
real-time signal by name; harness errors and OOMs are never kernel crashes."""

import signal

import numpy as np

from moefuzz.model.case import Case
from moefuzz.runtime.deaths import classify_death, signal_label

DUPLICATE = Case(
    {"token_selected_experts": np.array([[0, 0], [1, 2], [2, 3]], dtype=np.int32)},
    {"num_experts": 4, "start_expert": 0, "end_expert": 4},
)
PLAIN = Case(
    {"token_selected_experts": np.array([[0, 1], [1, 2], [2, 3]], dtype=np.int32)},
    {"num_experts": 4, "start_expert": 0, "end_expert": 4},
)


def test_an_abort_after_a_cuda_error_is_labelled_with_the_cuda_error(executor_of):
    executor = executor_of("cuda-error-then-abort-on-duplicate", spare=False)
    outcome = executor.run(DUPLICATE)
    assert outcome.signature == "crash:illegal-memory-access"
    assert "CUDA error: an illegal memory access was encountered" in outcome.message
    assert "SIGABRT" in outcome.message  # how it died is still said, in the message


def test_an_escaping_exception_is_labelled_by_type_and_kernel_frame_whatever_the_worker(executor_of):
    executor = executor_of("escape-on-duplicate", spare=False)
    first = executor.run(DUPLICATE)
    second = executor.run(DUPLICATE)  # another worker, another number
    assert first.signature == second.signature == "crash:KernelPanic@fake_targets.py:_panic"
    assert "worker" not in first.detail
    assert executor.run(PLAIN).kind == "pass"


def test_a_real_time_signal_is_named_not_raised(executor_of):
    executor = executor_of("realtime-signal-on-duplicate", spare=False)
    outcome = executor.run(DUPLICATE)
    assert outcome.signature == "crash:SIGRTMIN+3"


def test_a_cuda_out_of_memory_is_a_resource_outcome_not_a_kernel_failure(executor_of):
    executor = executor_of("cuda-oom-on-duplicate", spare=False)
    outcome = executor.run(DUPLICATE)
    assert outcome.signature == "resource:cuda-oom"
    assert not outcome.failed
    assert executor.run(PLAIN).kind == "pass"


def test_a_raising_compare_is_a_harness_outcome_not_a_kernel_failure(fake_targets):
    from moefuzz.runtime.isolation import Executor

    with Executor("fake_sort_broken_compare", "correct", "cpu", spare=False) as executor:
        outcome = executor.run(DUPLICATE)
    assert outcome.signature == "harness:compare-KeyError"
    assert "compare raised KeyError" in outcome.message
    assert not outcome.failed


def test_sigkill_is_a_host_oom_only_with_the_oom_killer_as_evidence():
    kill = -int(signal.SIGKILL)
    assert classify_death(kill, "", {}, 5, 6)[:2] == ("resource", "host-oom")
    assert classify_death(kill, "", {}, 5, 5)[:2] == ("crash", "SIGKILL")
    assert classify_death(kill, "", {}, None, None)[:2] == ("crash", "SIGKILL")


def test_signal_labels_never_raise():
    assert signal_label(int(signal.SIGSEGV)) == "SIGSEGV"
    assert signal_label(int(signal.SIGRTMIN)) == "SIGRTMIN+0"
    assert signal_label(int(signal.SIGRTMAX)) == "SIGRTMAX-0"
    assert signal_label(200) == "signal-200"


def test_a_traceback_in_the_log_names_the_exception_not_the_process_line():
    log = (
        "Process moefuzz-worker-7:\n"
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.11/multiprocessing/process.py", line 314, in _bootstrap\n'
        '  File "/src/my_kernels.py", line 12, in scatter\n'
        "ZeroDivisionError: division by zero\n"
    )
    assert classify_death(1, log, {}, None, None)[:2] == ("crash", "ZeroDivisionError@my_kernels.py:scatter")
