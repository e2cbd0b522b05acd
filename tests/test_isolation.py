"""Kernels that abort, segfault, hang or raise kill only a worker; the executor goes on."""

import numpy as np
import pytest

from moefuzz.model.case import Case
from moefuzz.runtime import spawner
from moefuzz.runtime.isolation import Executor

DUPLICATE = Case(
    {"token_selected_experts": np.array([[0, 0], [1, 2], [2, 3]], dtype=np.int32)},
    {"num_experts": 4, "start_expert": 0, "end_expert": 4},
)
PLAIN = Case(
    {"token_selected_experts": np.array([[0, 1], [1, 2], [2, 3]], dtype=np.int32)},
    {"num_experts": 4, "start_expert": 0, "end_expert": 4},
)


@pytest.mark.parametrize(
    ("kernel", "signature"),
    [("abort-on-duplicate", "crash:SIGABRT"), ("segfault-on-duplicate", "crash:SIGSEGV")],
)
def test_a_dying_worker_is_recorded_as_a_crash_and_replaced(executor_of, kernel, signature):
    executor = executor_of(kernel)
    outcome = executor.run(DUPLICATE)
    assert outcome.signature == signature
    assert executor.replacements == 1
    assert executor.run(PLAIN).kind == "pass"


def test_an_out_of_bounds_store_under_the_interpreter_is_a_crash_and_the_worker_lives(executor_of):
    executor = executor_of("illegal-address-on-duplicate")
    outcome = executor.run(DUPLICATE)
    assert outcome.signature == "crash:out-of-bounds-store"
    assert outcome.message.startswith("out-of-bounds store in kernel poke, program (0, 0, 0): 1 of 1 active lanes")
    assert executor.replacements == 0
    assert executor.run(PLAIN).kind == "pass"


def test_a_refused_launch_that_left_the_context_working_keeps_the_worker(executor_of):
    executor = executor_of("launch-failure-on-duplicate")
    worker = executor.connection
    outcome = executor.run(DUPLICATE)
    assert outcome.signature == "crash:launch-failure" and outcome.context_intact
    assert executor.replacements == 0 and executor.connection is worker
    assert executor.run(PLAIN).kind == "pass"


def test_a_refused_launch_whose_context_check_fails_retires_the_worker(executor_of):
    executor = executor_of("launch-failure-breaking-context-on-duplicate")
    outcome = executor.run(DUPLICATE)
    assert outcome.signature == "crash:launch-failure" and not outcome.context_intact
    assert executor.replacements == 1
    assert executor.run(PLAIN).kind == "pass"


def test_a_hanging_case_is_killed_after_its_timeout_and_recorded(executor_of):
    executor = executor_of("hang-on-duplicate", case_timeout_s=2.0)
    outcome = executor.run(DUPLICATE)
    assert outcome.signature == "hang"
    assert 2.0 <= outcome.seconds < 30
    assert executor.run(PLAIN).kind == "pass"


def test_a_python_exception_from_the_kernel_is_an_error_finding_and_the_worker_lives(executor_of):
    executor = executor_of("raise-on-duplicate")
    outcome = executor.run(DUPLICATE)
    assert outcome.signature == "error:ValueError"
    assert "launcher rejects" in outcome.message
    assert executor.replacements == 0
    assert executor.run(PLAIN).kind == "pass"


def test_a_wrong_output_is_a_divergence_naming_the_output(executor_of):
    executor = executor_of("miscount-duplicates")
    wide = Case(
        {"token_selected_experts": np.array([[0, 0]] + [[1, 2]] * 5, dtype=np.int32)},
        {"num_experts": 4, "start_expert": 0, "end_expert": 4},
    )
    outcome = executor.run(wide)
    assert outcome.signature == "divergence:expert_first_token_offset"
    assert outcome.mismatch is not None and outcome.mismatch.index == 4


def test_the_worker_reports_its_device_and_versions(executor_of):
    environment = executor_of("correct").environment
    assert environment["device"] == "cpu"
    assert "TRITON_INTERPRET=1" in environment["device_name"]
    assert {"torch", "triton", "numpy", "python"} <= set(environment)


def test_workers_see_target_modules_named_after_the_fork_server_started(monkeypatch, fake_targets):
    monkeypatch.delenv("MOEFUZZ_TARGETS")
    with Executor("three_step_sort", "triton", "cpu", spare=False):
        pass  # the fork server is up now, without MOEFUZZ_TARGETS
    monkeypatch.setenv("MOEFUZZ_TARGETS", fake_targets)
    with Executor("fake_sort", "correct", "cpu", spare=False) as executor:
        assert executor.run(PLAIN).kind == "pass"


def test_a_warm_up_case_that_crashes_a_spare_is_left_out_of_every_later_one(fake_targets):
    # abort-on-duplicate aborts on a repeated local expert (T >= 3): seed 0 draws no token, and
    # seeds 2 and 4 draw a repeat (tests.fake_targets; moefuzz.runtime.warmup.warm_up_bytes).
    with Executor("fake_sort", "abort-on-duplicate", "cpu", warm_up=(0, 2, 4)) as executor:
        assert executor.warm_up_seeds == [0, 2, 4]  # the first worker ran seed 0 only
        assert executor.run(DUPLICATE).signature == "crash:SIGABRT"  # promotes the spare, which died in seed 2
        assert executor.run(PLAIN).kind == "pass"
        assert executor.warm_up_seeds == [0] and executor.replacements == 1


def test_a_warm_up_case_that_hangs_a_promoted_spare_is_left_out_after_the_startup_timeout(fake_targets, monkeypatch):
    monkeypatch.setattr(spawner, "STARTUP_TIMEOUT_S", 8.0)  # hang-on-duplicate sleeps an hour on seed 2's case
    with Executor("fake_sort", "hang-on-duplicate", "cpu", case_timeout_s=2.0, warm_up=(0, 2)) as executor:
        assert executor.run(DUPLICATE).signature == "hang"  # promotes the spare, still in seed 2
        assert executor.run(PLAIN).kind == "pass"
        assert executor.warm_up_seeds == [0]


def test_a_retired_worker_is_reaped_and_its_log_removed_by_the_next_replacement_or_close(executor_of):
    executor = executor_of("abort-on-duplicate")
    retired = []
    for _ in range(2):
        retired.append(executor._active)
        assert executor.run(DUPLICATE).signature == "crash:SIGABRT"
    assert not retired[0].process.is_alive() and not retired[0].log_path.exists()  # by the second replacement
    executor.close()
    assert all(worker.process.exitcode is not None and not worker.log_path.exists() for worker in retired)


def test_two_workers_started_with_the_same_crashing_warm_up_case_both_come_up_without_it(fake_targets):
    spawner_ = spawner.Spawner("fake_sort", "abort-on-duplicate", warm_up=(0, 2))  # seed 2 draws a repeat
    first, second = spawner_.spawn("cpu"), spawner_.spawn("cpu")
    ready = [spawner_.ready(first, "cpu"), spawner_.ready(second, "cpu")]  # the second fails on a seed already out
    try:
        assert all(worker.environment is not None for worker in ready)
        assert spawner_.warm_up_seeds == [0]
    finally:
        for worker in ready:
            worker.stop()
