"""Cases fed ahead to workers, drawn in the workers from bytes, on several workers at once.

The parent's share of a case must stay small, so it sends each worker the bytes of its next cases
two ahead and the worker draws them; these tests pin that nothing is lost on the way: a crash or
hang is blamed on the case that ran, the cases queued behind it run on the next worker, and the
parent draws the same case from the same bytes.
"""

import json
import time

import numpy as np
import pytest
from click.testing import CliRunner

from moefuzz.campaign import CampaignConfig, auto_workers, run_campaign
from moefuzz.cli import main
from moefuzz.generate import CaseSource, byte_stream
from moefuzz.isolation import Request
from moefuzz.registry import get_target
from moefuzz.reports import percentiles
from moefuzz.target import Limits, default_limits
from tests.test_isolation import DUPLICATE, PLAIN


def collect_all(executor, count, timeout=60.0):
    done, started = [], time.perf_counter()
    while len(done) < count and time.perf_counter() - started < timeout:
        done += executor.collect() + executor.expire()
        time.sleep(0.01)
    return done


def test_a_crash_is_blamed_on_the_case_that_ran_and_the_case_queued_behind_it_runs_on_the_next_worker(executor_of):
    executor = executor_of("abort-on-duplicate")
    executor.submit(Request(case=DUPLICATE, index=0))
    executor.submit(Request(case=PLAIN, index=1))
    done = collect_all(executor, 2)
    assert [(request.index, outcome.signature) for request, outcome in done] == [(0, "crash:SIGABRT"), (1, "pass")]
    assert executor.replacements == 1
    assert len(executor.recovery_seconds) == 1 and executor.recovery_seconds[0] > 0


def test_a_hang_is_blamed_on_the_case_that_ran_and_the_case_queued_behind_it_still_runs(executor_of):
    executor = executor_of("hang-on-duplicate", case_timeout_s=2.0)
    executor.submit(Request(case=DUPLICATE, index=0))
    executor.submit(Request(case=PLAIN, index=1))
    done = collect_all(executor, 2)
    assert [(request.index, outcome.signature) for request, outcome in done] == [(0, "hang"), (1, "pass")]
    assert 2.0 <= done[0][1].seconds < 30


def test_run_refuses_while_cases_are_in_flight(executor_of):
    from moefuzz.errors import WorkerError

    executor = executor_of("correct")
    executor.submit(Request(case=PLAIN))
    with pytest.raises(WorkerError, match="in flight"):
        executor.run(PLAIN)
    assert collect_all(executor, 1)[0][1].kind == "pass"


def test_a_worker_draws_a_failing_case_from_bytes_and_sends_back_the_case_the_parent_draws_from_them(executor_of):
    executor = executor_of("miscount-duplicates")
    source = CaseSource(get_target("fake_sort").strategy(default_limits("cpu")), seed=0)
    buffers = byte_stream(7)
    for index in range(40):
        buffer = next(buffers)
        outcome = executor.run_request(Request(buffer=buffer, index=index))
        if outcome.failed:
            assert outcome.signature == "divergence:expert_first_token_offset"
            assert outcome.case is not None and outcome.case.digest() == source.from_bytes(buffer).digest()
            return
        assert outcome.kind in ("pass", "rejected") and outcome.case is None
    pytest.fail("no case of 40 drawn repeated a local expert")


def test_the_same_bytes_draw_the_same_case_in_every_process_of_a_campaign():
    limits = Limits(max_tokens=1024)
    first = CaseSource(get_target("three_step_sort").strategy(limits), seed=0)
    second = CaseSource(get_target("three_step_sort").strategy(limits), seed=99)
    for buffer, _ in zip(byte_stream(3), range(30), strict=False):
        one, two = first.from_bytes(buffer), second.from_bytes(buffer)
        assert (one is None) == (two is None)
        assert one is None or one.digest() == two.digest()


def test_a_campaign_on_two_workers_finds_the_bug_and_counts_every_case_once(fake_targets, tmp_path):
    config = CampaignConfig("fake_sort", "miscount-duplicates", 6, tmp_path, seed=3, device="cpu", workers=2)
    status = run_campaign(config)
    assert status.workers == 2
    assert [finding.signature for _, finding in status.findings] == ["divergence:expert_first_token_offset"]
    assert status.known >= 1  # later failures of the same signature, from either worker, are matched
    assert status.execs > 20


def test_a_campaign_whose_kernel_crashes_records_how_long_each_recovery_took(fake_targets, tmp_path):
    config = CampaignConfig(
        "fake_sort", "abort-on-duplicate", 6, tmp_path, seed=3, device="cpu", workers=1, shrink_budget_s=5
    )
    status = run_campaign(config)
    assert [finding.signature for _, finding in status.findings] == ["crash:SIGABRT"]
    assert status.worker_restarts >= 1
    assert len(status.recovery_seconds) >= 1 and all(s > 0 for s in status.recovery_seconds)


def test_auto_workers_are_one_in_the_interpreter_one_per_gpu_with_drawers_else_half_the_cores():
    assert auto_workers("cpu", cpus=16) == 1
    assert auto_workers("cpu", devices=(0, 1), drawers=4, cpus=16) == 1
    assert auto_workers("cuda", drawers=4, cpus=16) == 1
    assert auto_workers("cuda", devices=(0, 1), drawers=4, cpus=16) == 2
    assert auto_workers("cuda", cpus=16) == 8
    assert auto_workers("cuda", cpus=64) == 8
    assert auto_workers("cuda", cpus=2) == 1
    assert auto_workers("cuda", devices=(0, 1), cpus=2) == 2


def test_percentiles_are_nearest_rank_and_none_without_values():
    assert percentiles([]) == {"p50": None, "p95": None, "n": 0}
    assert percentiles([0.4, 0.1, 0.3, 0.2]) == {"p50": 0.2, "p95": 0.4, "n": 4}


@pytest.mark.parametrize("devices", ["a", "0,0", "0,-1", ""])
def test_bad_devices_are_one_line_usage_errors(devices):
    result = CliRunner().invoke(main, ["run", "--target", "three_step_sort", "--time", "1s", "--devices", devices])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "devices" in result.output


def test_the_run_report_says_how_many_workers_ran_and_how_fast_they_recovered(fake_targets, tmp_path):
    report = tmp_path / "run.json"
    args = ["run", "--target", "fake_sort", "--kernel", "correct", "--time", "3s", "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "--corpus", str(tmp_path), "--workers", "2", "--json", str(report)])
    assert result.exit_code == 0, result.output
    document = json.loads(report.read_text())
    assert document["workers"] == 2
    assert document["worker_recovery_s"] == {"p50": None, "p95": None, "n": 0}
    assert np.isfinite(document["execs_per_s"]) and document["execs"] > 0


def test_a_campaign_with_max_findings_ends_once_its_first_finding_is_shrunk(fake_targets, tmp_path):
    config = CampaignConfig(
        "fake_sort", "miscount-duplicates", 120, tmp_path, seed=3, device="cpu", workers=1, max_findings=1
    )
    status = run_campaign(config)
    assert len(status.findings) == 1
    assert status.elapsed < 60


def test_drawers_draw_in_their_own_processes_the_cases_the_parent_draws_from_the_same_bytes():
    from moefuzz.drawers import DrawerPool
    from moefuzz.isolation import worker_context

    limits = Limits(max_tokens=512)
    source = CaseSource(get_target("three_step_sort").strategy(limits), seed=0)
    pool = DrawerPool(worker_context(), "three_step_sort", limits, 2)
    try:
        buffers = dict(zip(range(12), byte_stream(5), strict=False))
        drawn, started = [], time.perf_counter()
        while len(drawn) < len(buffers) and time.perf_counter() - started < 120:
            for drawer in pool.hungry():
                for index in [i for i in buffers if i not in {d.index for d in drawn}][:1]:
                    if all(index not in other.pending for other in pool._drawers):
                        pool.submit(drawer, index, buffers[index])
            drawn += pool.collect()
            time.sleep(0.01)
    finally:
        pool.close()
    assert sorted(d.index for d in drawn) == list(range(12))
    for result in drawn:
        expected = source.from_bytes(buffers[result.index])
        assert result.error == ""
        assert (result.case is None) == (expected is None)
        assert result.case is None or result.case.digest() == expected.digest()


def test_a_campaign_fed_by_drawers_finds_the_bug_and_saves_the_case_a_crash_killed_its_worker_on(
    fake_targets, tmp_path
):
    config = CampaignConfig(
        "fake_sort", "abort-on-duplicate", 8, tmp_path, seed=3, device="cpu", drawers=2, shrink_budget_s=5
    )
    status = run_campaign(config)
    assert status.drawers == 2
    assert [finding.signature for _, finding in status.findings] == ["crash:SIGABRT"]
    _, finding = status.findings[0]
    ids = finding.original_case.arrays["token_selected_experts"]
    assert ids.shape[0] >= 3  # the test double aborts only on T >= 3 with a repeated local expert
    assert status.execs > status.known + 1  # it went on fuzzing after the crash
