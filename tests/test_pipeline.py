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

from moefuzz.engine.campaign import CampaignConfig, auto_workers, run_campaign
from moefuzz.engine.generate import CaseSource, byte_stream
from moefuzz.model.registry import get_target
from moefuzz.model.target import Limits, default_limits
from moefuzz.runtime.generators import prepared_payload
from moefuzz.runtime.isolation import Request
from moefuzz.ui.cli import main
from moefuzz.ui.reports import percentiles
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
        "fake_sort", "abort-on-duplicate", 8, tmp_path, seed=3, device="cpu", workers=1, shrink_budget_s=1
    )
    status = run_campaign(config)
    assert [finding.signature for _, finding in status.findings] == ["crash:SIGABRT"]
    assert status.worker_restarts >= 1
    assert len(status.recovery_seconds) >= 1 and all(s > 0 for s in status.recovery_seconds)


def test_auto_workers_are_one_in_the_interpreter_two_per_gpu_with_generators_and_the_cores_else_half_the_cores():
    assert auto_workers("cpu", cpus=16) == 1
    assert auto_workers("cpu", devices=(0, 1), generators=4, cpus=16) == 1
    assert auto_workers("cuda", generators=4, cpus=16) == 2
    assert auto_workers("cuda", generators=4, cpus=8) == 1  # too few cores to feed a second
    assert auto_workers("cuda", devices=(0, 1), generators=4, cpus=16) == 2
    assert auto_workers("cuda", devices=(0, 1), generators=8, cpus=32) == 4
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


def test_the_run_report_says_how_many_workers_ran_how_soon_and_how_fast_they_recovered(fake_targets, tmp_path):
    report = tmp_path / "run.json"
    args = ["run", "--target", "fake_sort", "--kernel", "correct", "--time", "3s", "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "--corpus", str(tmp_path), "--workers", "2", "--json", str(report)])
    assert result.exit_code == 0, result.output
    document = json.loads(report.read_text())
    assert document["workers"] == 2
    assert document["worker_recovery_s"] == {"p50": None, "p95": None, "n": 0}
    assert 0 < document["startup_s"] <= document["first_case_s"] < document["duration_s"]
    assert np.isfinite(document["execs_per_s"]) and document["execs"] > 0


def test_a_campaign_with_max_findings_ends_once_its_first_finding_is_shrunk(fake_targets, tmp_path):
    config = CampaignConfig(
        "fake_sort", "miscount-duplicates", 120, tmp_path, seed=3, device="cpu", workers=1, max_findings=1
    )
    status = run_campaign(config)
    assert len(status.findings) == 1
    assert status.elapsed < 60


def test_generators_draw_in_their_own_processes_the_cases_the_parent_draws_from_the_same_bytes():
    from moefuzz.runtime.generators import GeneratorPool
    from moefuzz.runtime.isolation import worker_context

    limits = Limits(max_tokens=512)
    source = CaseSource(get_target("three_step_sort").strategy(limits), seed=0)
    pool = GeneratorPool(worker_context(), "three_step_sort", limits, 2)
    try:
        buffers = dict(zip(range(12), byte_stream(5), strict=False))
        drawn, started = [], time.perf_counter()
        while len(drawn) < len(buffers) and time.perf_counter() - started < 120:
            for drawer in pool.hungry():
                for index in [i for i in buffers if i not in {d.index for d in drawn}][:1]:
                    if all(index not in other.pending for other in pool._generators):
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


def test_a_campaign_fed_by_generators_finds_the_bug_and_saves_the_case_a_crash_killed_its_worker_on(
    fake_targets, tmp_path
):
    config = CampaignConfig(
        "fake_sort", "abort-on-duplicate", 8, tmp_path, seed=3, device="cpu", generators=2, shrink_budget_s=5
    )
    status = run_campaign(config)
    assert status.generators == 2
    assert [finding.signature for _, finding in status.findings] == ["crash:SIGABRT"]
    _, finding = status.findings[0]
    ids = finding.original_case.arrays["token_selected_experts"]
    assert ids.shape[0] >= 3  # the test double aborts only on T >= 3 with a repeated local expert
    assert status.execs > status.known + 1  # it went on fuzzing after the crash


def test_generators_send_the_oracle_outputs_of_each_case_they_draw():
    from moefuzz.execute.inprocess import oracle_outputs
    from moefuzz.runtime.generators import GeneratorPool
    from moefuzz.runtime.isolation import worker_context
    from moefuzz_targets.three_step_sort.oracle import three_step_sort_torch

    limits = Limits(max_tokens=512)
    pool = GeneratorPool(worker_context(), "three_step_sort", limits, 1)
    try:
        buffers = dict(zip(range(4), byte_stream(9), strict=False))
        drawn, started = [], time.perf_counter()
        while len(drawn) < len(buffers) and time.perf_counter() - started < 120:
            for drawer in pool.hungry():
                for index, buffer in buffers.items():
                    if index not in drawer.pending and index not in {d.index for d in drawn}:
                        pool.submit(drawer, index, buffer)
            drawn += pool.collect()
            time.sleep(0.01)
    finally:
        pool.close()
    cases = [d for d in drawn if d.case is not None]
    assert cases
    for result in cases:
        reference = oracle_outputs(three_step_sort_torch, result.case)
        assert sorted(result.expected) == sorted(reference)
        for name, array in reference.items():
            np.testing.assert_array_equal(result.expected[name], array)


def test_a_worker_given_the_oracle_outputs_compares_the_kernel_with_them_instead_of_running_the_oracle(
    fake_targets,
):
    from moefuzz.execute.inprocess import oracle_outputs
    from moefuzz.execute.perturb import Perturbation
    from moefuzz.runtime.worker import CaseRunner
    from moefuzz_targets.three_step_sort.oracle import three_step_sort_torch

    runner = CaseRunner("fake_sort", "correct", "cpu")
    expected = oracle_outputs(three_step_sort_torch, PLAIN)
    assert runner.run_plan(PLAIN, [Perturbation({})], expected).kind == "pass"
    wrong = dict(expected, expert_first_token_offset=expected["expert_first_token_offset"] + 1)
    outcome = runner.run_plan(PLAIN, [Perturbation({})], wrong)
    assert outcome.signature == "divergence:expert_first_token_offset"


def test_auto_generators_are_none_in_the_interpreter_and_the_spare_cores_on_a_gpu_at_most_eight():
    from moefuzz.engine.sizing import auto_generators

    assert auto_generators("cpu", cpus=16) == 0
    assert auto_generators("cuda", cpus=16) == 8
    assert auto_generators("cuda", cpus=8) == 5
    assert auto_generators("cuda", cpus=2) == 1
    assert auto_generators("cuda", devices=(0, 1, 2, 3), cpus=12) == 3


class _InstantDrawers:
    """A GeneratorPool stand-in that draws every buffer at once (drawers far faster than workers)."""

    def __init__(self):
        self.pending = {}

    @property
    def outstanding(self):
        return len(self.pending)

    def hungry(self):
        return [self]

    def submit(self, drawer, index, buffer):
        self.pending[index] = buffer

    def collect(self):
        from moefuzz.runtime.generators import Generated

        payload = prepared_payload(PLAIN, None)
        drawn = [Generated(i, b, payload, "") for i, b in self.pending.items()]
        self.pending = {}
        return drawn


def test_generators_faster_than_the_workers_never_get_more_than_max_drawn_ahead_cases_ahead():
    from moefuzz.engine.feed import MAX_DRAWN_AHEAD, Feed
    from moefuzz.execute.perturb import Perturbation

    feed = Feed(byte_stream(0), _InstantDrawers(), lambda index: [Perturbation({})])
    for _ in range(200):
        assert feed.draw() == ""
    assert len(feed._drawn) == MAX_DRAWN_AHEAD
    indices = [feed.next_request().index for _ in range(3)]
    assert indices == [0, 1, 2]
    feed.draw()
    assert len(feed._drawn) == MAX_DRAWN_AHEAD


class _StartingDrawer(_InstantDrawers):
    """A drawer whose "ready" message is read by the first ``collect``: not hungry before it."""

    def __init__(self):
        super().__init__()
        self.ready = False

    def hungry(self):
        return [self] if self.ready else []

    def collect(self):
        if not self.ready:
            self.ready = True
            return []
        return super().collect()


def test_a_generator_gets_its_first_buffers_in_the_same_draw_that_reads_it_is_ready():
    from moefuzz.engine.feed import Feed
    from moefuzz.execute.perturb import Perturbation
    from moefuzz.runtime.generators import DRAW_AHEAD

    drawer = _StartingDrawer()
    feed = Feed(byte_stream(0), drawer, lambda index: [Perturbation({})])
    assert feed.draw() == ""
    # else it idles until the campaign's next wait returns: a second at the start
    assert sorted(drawer.pending) == list(range(DRAW_AHEAD))


@pytest.mark.parametrize("drawers", [0, 1])
def test_a_strategy_that_draws_cases_its_contract_rejects_ends_the_campaign_with_one_line(
    fake_targets, tmp_path, drawers
):
    config = CampaignConfig(
        "fake_sort_broken_strategy", "correct", 60, tmp_path, seed=0, device="cpu", workers=1, generators=drawers
    )
    from moefuzz.errors import MoefuzzError

    with pytest.raises(MoefuzzError) as caught:
        run_campaign(config)
    message = str(caught.value)
    assert "fake_sort_broken_strategy" in message and "contract rejects" in message
    assert "start_expert" in message or "local range" in message
    assert len(message.splitlines()) == 1
    assert not list(tmp_path.rglob("finding.json"))


def test_a_strategy_that_draws_cases_its_contract_rejects_is_a_one_line_cli_error(fake_targets, tmp_path):
    args = ["run", "--target", "fake_sort_broken_strategy", "--kernel", "correct", "--time", "60s", "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "--corpus", str(tmp_path)])
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert any("contract rejects" in line for line in lines)
    assert "Traceback" not in result.output


def test_generators_started_before_the_limits_are_known_draw_once_configured_and_close_cleanly_unconfigured():
    from moefuzz.runtime.generators import GeneratorPool
    from moefuzz.runtime.isolation import worker_context

    idle = GeneratorPool(worker_context(), "three_step_sort", None, 2)
    processes = [d.process for d in idle._generators]
    idle.close()
    assert all(not p.is_alive() for p in processes)

    limits = Limits(max_tokens=64)
    pool = GeneratorPool(worker_context(), "three_step_sort", None, 1)
    try:
        pool.configure(limits)
        with pytest.raises(Exception, match="limits already"):
            pool.configure(limits)
        buffer = next(byte_stream(4))
        drawn, started = [], time.perf_counter()
        while not drawn and time.perf_counter() - started < 120:
            for drawer in pool.hungry():
                if not drawer.pending:
                    pool.submit(drawer, 0, buffer)
            drawn += pool.collect()
            time.sleep(0.01)
    finally:
        pool.close()
    expected = CaseSource(get_target("three_step_sort").strategy(limits), seed=0).from_bytes(buffer)
    assert drawn and (drawn[0].case is None) == (expected is None)
    assert drawn[0].case is None or drawn[0].case.digest() == expected.digest()


def test_generators_started_for_a_gpu_the_worker_does_not_have_are_stopped_and_the_campaign_runs_without(
    fake_targets, tmp_path, monkeypatch
):
    from moefuzz.engine import scheduler

    monkeypatch.setattr(scheduler, "likely_device", lambda requested: "cuda")
    config = CampaignConfig("fake_sort", "correct", 2, tmp_path, seed=0, device="cpu", workers=1)
    status = run_campaign(config)
    assert status.generators == 0 and status.execs > 0 and not status.findings


def test_the_parent_guesses_the_device_it_was_told_and_auto_from_the_drivers_control_device(monkeypatch):
    from moefuzz.engine import sizing
    from moefuzz.engine.sizing import likely_device

    assert likely_device("cpu") == "cpu" and likely_device("cuda") == "cuda"
    monkeypatch.setattr(sizing.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    assert likely_device("auto") == "cuda"
    monkeypatch.setattr(sizing.os.path, "exists", lambda path: False)
    assert likely_device("auto") == "cpu"


def test_each_generator_runs_the_oracle_on_one_torch_thread(fake_targets):
    from moefuzz.runtime.generators import GeneratorPool
    from moefuzz.runtime.isolation import worker_context

    pool = GeneratorPool(worker_context(), "fake_sort_oracle_threads", Limits(max_tokens=64), 1)
    try:
        drawn, started, buffers = [], time.perf_counter(), byte_stream(0)
        while not any(d.case is not None for d in drawn) and time.perf_counter() - started < 120:
            for drawer in pool.hungry():
                if not drawer.pending:
                    pool.submit(drawer, len(drawn), next(buffers))
            drawn += pool.collect()
            time.sleep(0.01)
    finally:
        pool.close()
    expected = next(d.expected for d in drawn if d.case is not None)
    assert expected["torch_threads"].tolist() == [1]
