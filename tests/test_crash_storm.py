"""Crash storms: a known crash recurring in about one case in ten does not stop the campaign;
it is saved once, its recurrences are counted, workers are replaced (more spares while crashes
come fast), and the region of sizes like a known crasher's is skipped once most of its cases
crash, never for a crash spread evenly over every size."""

import os
import signal

from moefuzz.engine import storm
from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.engine.storm import PROBE_PERIOD, STORM_SPARES, CrashRegions, avoided, spares_wanted
from moefuzz.model.target import Limits
from moefuzz.runtime.generators import GeneratorPool
from moefuzz.runtime.isolation import worker_context
from tests.fake_targets import WIDE_EXPERTS_ENV

IMA = "crash:illegal-memory-access"


def small_campaign(tmp_path, kernel: str, seconds: float, shrink_budget_s: float) -> CampaignConfig:
    """A one-worker CPU campaign of ``fake_sort``'s ``kernel`` on small cases (T <= 16, E <= 8)."""
    return CampaignConfig(
        "fake_sort", kernel, seconds, tmp_path / "corpus", seed=1, device="cpu", workers=1,
        shrink_budget_s=shrink_budget_s, limits=Limits(max_tokens=16, max_topk=3, max_experts=8),
    )  # fmt: skip


def test_a_crash_in_one_case_in_ten_keeps_the_campaign_running_and_is_saved_once(fake_targets, tmp_path):
    config = small_campaign(tmp_path, "crash-one-in-ten", 8, shrink_budget_s=1)
    status = run_campaign(config)
    assert [finding.signature for _, finding in status.findings] == [IMA]
    assert status.known >= 1  # it recurred, and was counted, not saved again
    assert status.worker_restarts >= 2
    assert len(status.recovery_seconds) >= 1
    assert status.execs > 2 * (status.known + 1)  # most cases passed: fuzzing went on between crashes
    assert status.skipped_known_crashers == 0  # a crash by CRC: no region of sizes is like it


def test_cases_like_an_input_shaped_crasher_are_skipped_once_it_keeps_recurring(fake_targets, tmp_path, monkeypatch):
    monkeypatch.setenv(WIDE_EXPERTS_ENV, "8")  # crashes on E = 8: about one case in five here
    monkeypatch.setattr(storm, "SKIP_AFTER", 2)
    config = small_campaign(tmp_path, "crash-on-wide-experts", 12, shrink_budget_s=3)
    status = run_campaign(config)
    [(_, finding)] = status.findings
    assert finding.signature == IMA and int(finding.case.params["num_experts"]) == 8
    assert status.skipped_known_crashers > 0


def test_spares_grow_with_the_crash_rate_up_to_a_cap():
    assert spares_wanted([], 100.0) == 1
    assert spares_wanted([1.0, 2.0, 3.0], 100.0) == 1  # long ago
    assert 1 < spares_wanted([98.0, 99.0, 99.5], 100.0) < STORM_SPARES
    assert spares_wanted([99.0 + i / 100 for i in range(50)], 100.0) == STORM_SPARES


def test_a_region_is_skipped_once_most_cases_like_its_crasher_crash_with_its_signature():
    regions = CrashRegions(skip_after=3, skip_rate=0.5)
    assert not regions.lower_corner(IMA, (300, 2, 8))
    for _ in range(20):
        regions.ran((100, 4, 64), IMA)  # crashes below the corner: not like it
        regions.ran((400, 2, 8), "")
    assert regions.skipped == frozenset()
    changed = [regions.ran((300 + i, 3, 9), IMA) for i in range(20)]
    assert regions.skipped == {(300, 2, 8)}
    assert changed.count(True) == 1


def test_a_crash_spread_over_every_size_never_skips_its_region():
    regions = CrashRegions(skip_after=3, skip_rate=0.5)
    regions.lower_corner(IMA, (1, 1, 1))
    for i in range(500):
        regions.ran((1 + i % 97, 1 + i % 3, 1 + i % 7), IMA if i % 10 == 0 else "")
    assert regions.skipped == frozenset()


def test_a_skipped_region_whose_probes_stop_crashing_is_run_again():
    regions = CrashRegions(skip_after=3, skip_rate=0.5, window=16)
    regions.lower_corner(IMA, (4, 1))
    for i in range(6):
        regions.ran((4 + i, 1), IMA)
    assert regions.skipped
    for i in range(16):
        regions.ran((40 + i, 1), "")  # the kernel was fixed, or the crash needed more than size
    assert regions.skipped == frozenset()


def test_a_corner_set_after_its_crashes_is_scored_from_the_cases_already_run():
    regions = CrashRegions(skip_after=3, skip_rate=0.5)
    for i in range(10):
        regions.ran((50 + i, 2), IMA)
        regions.ran((1 + i, 1), "")
    assert regions.lower_corner(IMA, (50, 2))
    assert regions.skipped == {(50, 2)}


def test_the_corner_is_the_smallest_crash_in_every_entry_the_shrunk_one_included():
    regions = CrashRegions()
    regions.crashed(IMA, (90, 4, 30), None, scored=True)
    regions.crashed(IMA, (60, 6, 1024), None, scored=True)
    assert regions.corners[IMA] == (60, 4, 30)
    regions.crashed(IMA, (700, 8, 1024), (5, 7, 1024), scored=True)
    assert regions.corners[IMA] == (5, 4, 30)


def test_an_input_shaped_crash_is_skipped_from_its_unshrunk_recurrences_alone():
    regions = CrashRegions(skip_after=3, skip_rate=0.5)
    for t in (900, 40, 300, 7, 2000, 55):  # crashes at E = 1024 whatever T is
        regions.crashed(IMA, (t, 1 + t % 8, 1024), None, scored=False)
        regions.ran((t, 2, 512), "")
    assert regions.corners[IMA] == (7, 1, 1024)
    assert regions.skipped == {(7, 1, 1024)}


def test_one_case_in_the_probe_period_of_a_skipped_region_still_runs():
    sizes = [(t, k, 8) for t in range(1, 200) for k in range(1, 9)]
    ran = [size for size in sizes if not avoided(size, {(1, 1, 8)})]
    assert abs(len(ran) - len(sizes) / PROBE_PERIOD) < len(sizes) / PROBE_PERIOD / 2
    assert all(not avoided(size, {(1, 1, 9)}) for size in sizes)  # outside the region: all run


def test_a_dead_generator_is_replaced_and_its_buffers_drawn_again(fake_targets):
    pool = GeneratorPool(worker_context(), "fake_sort", Limits(max_tokens=8, max_topk=2, max_experts=4), 1)
    try:
        while not pool.hungry():
            pool.collect()
        [generator] = pool.hungry()
        os.kill(generator.process.pid, signal.SIGKILL)
        generator.process.join(5)
        pool.submit(generator, 7, bytes(range(64)) * 8)
        drawn = []
        while not drawn:
            drawn = pool.collect()
        assert pool.restarts == 1
        assert [g.index for g in drawn] == [7]
    finally:
        pool.close()


def test_a_refused_launch_is_found_and_shrunk_without_replacing_a_worker(fake_targets, tmp_path):
    config = small_campaign(tmp_path, "launch-failure-on-duplicate", 6, shrink_budget_s=3)
    status = run_campaign(config)
    [(_, finding)] = status.findings
    assert finding.signature == "crash:launch-failure"
    assert finding.case.arrays["token_selected_experts"].shape[0] == 3  # the hand minimum's T
    assert status.worker_restarts == 0 and status.known >= 1
