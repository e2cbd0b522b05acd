"""Crash storms: a known crash recurring in about one case in ten does not stop the campaign;
it is saved once, its recurrences are counted, workers are replaced (more spares while crashes
come fast), and a size class where a known crash keeps recurring is skipped."""

import os
import signal

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.engine.storm import STORM_SPARES, KnownCrashers, fingerprint, spares_wanted
from moefuzz.model.target import Limits
from moefuzz.runtime.generators import GeneratorPool
from moefuzz.runtime.isolation import worker_context


def test_a_crash_in_one_case_in_ten_keeps_the_campaign_running_and_is_saved_once(fake_targets, tmp_path):
    config = CampaignConfig(
        "fake_sort", "crash-one-in-ten", 8, tmp_path / "corpus", seed=1, device="cpu", workers=1,
        shrink_budget_s=1, limits=Limits(max_tokens=16, max_topk=3, max_experts=8),
    )  # fmt: skip
    status = run_campaign(config)
    assert [finding.signature for _, finding in status.findings] == ["crash:illegal-memory-access"]
    assert status.known >= 1  # it recurred, and was counted, not saved again
    assert status.worker_restarts >= 2
    assert len(status.recovery_seconds) >= 1
    assert status.execs > 2 * (status.known + 1)  # most cases passed: fuzzing went on between crashes


def test_spares_grow_while_crashes_are_frequent():
    assert spares_wanted([], 100.0) == 1
    assert spares_wanted([1.0, 2.0, 3.0], 100.0) == 1  # long ago
    assert spares_wanted([98.0, 99.0, 99.5], 100.0) == STORM_SPARES


def test_a_size_class_is_skipped_only_where_a_known_crash_keeps_recurring():
    crashers = KnownCrashers(skip_after=3, skip_rate=0.5)
    often, rarely = fingerprint((300, 2, 8)), fingerprint((3000, 2, 8))
    assert fingerprint((300, 2, 8)) == fingerprint((400, 2, 8)) != rarely
    for _ in range(4):
        crashers.ran(often)
    for _ in range(40):
        crashers.ran(rarely)
    assert [crashers.recurred(often) for _ in range(3)] == [False, False, True]
    assert not any(crashers.recurred(rarely) for _ in range(5))  # 5 of 40: a crash spread over sizes
    assert crashers.avoided == {often}


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
