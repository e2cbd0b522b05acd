"""Campaigns over a Ray cluster (``moefuzz run --ray``): a real local cluster on 127.0.0.1 with
two CPU actors in the Triton interpreter; what travels between driver and actors; Ray imported
only with ``--ray``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from moefuzz.cluster.data import actor_seed, finding_from_data, finding_to_data
from moefuzz.engine.campaign import CampaignConfig
from moefuzz.model.case import Case
from moefuzz.model.compare import Mismatch
from moefuzz.model.domain import Coverage
from moefuzz.store.corpus import Finding, load_finding

ROOT = Path(__file__).resolve().parent.parent


def test_importing_moefuzz_and_running_the_cli_without_ray_never_imports_ray(tmp_path, fake_targets):
    script = f"""
import sys
import moefuzz, moefuzz.ui.cli, moefuzz.ui.status, moefuzz.cluster.data, moefuzz.cluster.actor
from moefuzz.ui.cli import main
try:
    main(["run", "--target", "fake_sort", "--kernel", "correct", "--time", "1s", "--device", "cpu",
          "--corpus", {str(tmp_path / "corpus")!r}])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print("ray imported:", "ray" in sys.modules)
"""
    env = {**os.environ, "MOEFUZZ_TARGETS": fake_targets}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ray imported: False" in result.stdout


def test_a_finding_travels_as_arrays_and_plain_metadata_and_comes_back_equal():
    case = Case({"topk_ids": np.array([[1, 1], [0, 2]], dtype=np.int32)}, {"num_experts": 4, "name": "x"})
    mismatch = Mismatch("expert_first_token_offset", 3, 2, 1, 1, 5)
    finding = Finding(
        "three_step_sort", "bug-duplicate-topk", "divergence", "expert_first_token_offset", "m",
        case, case.replace(num_experts=8), mismatch, "why", {"torch": "2"}, {"seed": 3}, {"size": [2]},
    )  # fmt: skip
    data = finding_to_data(finding)

    def leaves(value):
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str)
                yield from leaves(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from leaves(item)
        else:
            yield value

    assert all(isinstance(leaf, (str, int, float, bool, type(None), np.ndarray)) for leaf in leaves(data))
    back = finding_from_data(data)
    assert back.finding_id == finding.finding_id and back.mismatch == finding.mismatch
    assert back.case.digest() == case.digest() and back.original_case.params["num_experts"] == 8
    assert (back.found, back.shrink, back.environment) == (finding.found, finding.shrink, finding.environment)


def test_actor_streams_differ_by_slot_and_by_restart():
    seeds = {actor_seed(0, slot, incarnation) for slot in range(4) for incarnation in range(3)}
    assert len(seeds) == 12 and all(0 <= seed < 2**63 for seed in seeds)
    assert actor_seed(0, 1, 0) == actor_seed(0, 1, 0) != actor_seed(1, 1, 0)


def test_the_driver_sums_skipped_counts_and_domain_coverage_over_actors_and_their_restarts():
    from moefuzz.cluster.actor import counters
    from moefuzz.cluster.data import ActorInfo, ClusterStatus
    from moefuzz.cluster.pool import ActorSlot, fold_counters
    from moefuzz.cluster.tally import sum_status
    from moefuzz.engine.campaign import CampaignStatus
    from moefuzz.model.domain import Dimension, Domain

    domain = Domain([Dimension("T", lambda case: case.params["T"], 1, 4, values=(2,))])  # T=1, T=4, T=2
    cases = {"a": [1, 1, 2], "b": [4, 2], "b_after_restart": [1]}
    reports = {}
    for name, tokens in cases.items():
        status = CampaignStatus("three_step_sort", "correct")
        status.coverage = Coverage(domain.points())
        for t in tokens:
            status.coverage.add(Case({}, {"T": t}))
        status.skipped_outside_domain, status.skipped_known_crashers = len(tokens), 10 * len(tokens)
        reports[name] = counters(status)
    a = ActorSlot(ActorInfo(0, state="done"), None, current=reports["a"])
    b = ActorSlot(ActorInfo(1, state="done"), None, current=reports["b"])
    fold_counters(b)  # b died; Ray started it again
    b.current = reports["b_after_restart"]
    total = ClusterStatus("three_step_sort", "correct")
    sum_status(total, [a, b], 0, {})
    assert total.skipped_outside_domain == 6 and total.skipped_known_crashers == 60
    assert total.coverage is not None
    assert total.coverage.to_json() == {"cases": 6, "hits": {"T=1 (min)": 3, "T=4 (max)": 1, "T=2": 2}, "missed": []}


def test_an_actors_counters_are_plain_data_and_coverage_is_none_without_a_domain():
    from moefuzz.cluster.actor import counters
    from moefuzz.cluster.data import ActorInfo, ClusterStatus
    from moefuzz.cluster.pool import ActorSlot
    from moefuzz.cluster.tally import sum_status
    from moefuzz.engine.campaign import CampaignStatus
    from moefuzz.model.domain import Point

    status = CampaignStatus("three_step_sort", "correct")
    assert counters(status)["coverage"] is None
    total = ClusterStatus("three_step_sort", "correct")
    sum_status(total, [ActorSlot(ActorInfo(0), None, current=counters(status))], 0, {})
    assert total.coverage is None
    status.coverage = Coverage([Point("E_local=max", lambda case: True)])  # a lambda: Ray could not send it
    status.coverage.add(Case({}, {}))
    sent = counters(status)["coverage"]
    assert sent == {"cases": 1, "hits": {"E_local=max": 1}} and type(sent["hits"]) is dict


@pytest.fixture(scope="module")
def local_cluster():
    """A Ray cluster of this machine alone, on 127.0.0.1, two CPUs: two CPU actors."""
    ray = pytest.importorskip("ray")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
        _node_ip_address="127.0.0.1",
    )
    yield ray
    ray.shutdown()


def bug_model_campaign(corpus: Path, duration_s: float, **kwargs) -> CampaignConfig:
    return CampaignConfig(
        "three_step_sort", "bug-duplicate-topk", duration_s, corpus, device="cpu", shrink_budget_s=2.0, **kwargs
    )


def test_two_cpu_actors_find_the_three_step_sort_bug_model_and_save_one_finding(tmp_path, local_cluster):
    from moefuzz.cluster.driver import RayOptions, run_ray_campaign
    from moefuzz.ui.reports import run_document

    corpus = tmp_path / "corpus"
    config = bug_model_campaign(corpus, 60.0, max_findings=1)
    status = run_ray_campaign(config, RayOptions("local", actors=2))
    saved = [p for p in (corpus / "three_step_sort").iterdir() if p.is_dir()]
    assert [p.name for p in saved] == ["bug-duplicate-topk--divergence-expert_first_token_offset"]
    assert [path for path, _ in status.findings] == saved
    finding = load_finding(saved[0])
    assert finding.found["actor"] in (0, 1) and finding.found["seed"] in {a.seed for a in status.actors}
    assert finding.shrink["original_size"] and "size" in finding.shrink  # shrunk on the actor, saved here
    assert status.nodes == 1 and [a.state for a in status.actors] == ["done", "done"]
    assert status.device_kind == "cpu" and status.execs >= 1 and status.actor_restarts == 0
    report = run_document(config, status, 0.0, 1.0)
    assert report["ray"]["nodes"] == 1 and [a["slot"] for a in report["ray"]["actors"]] == [0, 1]
    assert [f["id"] for f in report["findings"]] == [saved[0].name] and report["passed"] is False
    # each drawn case counted once in the domain coverage, summed over the actors as their execs are
    assert report["coverage"]["cases"] == status.execs + status.skipped_outside_domain
    assert report["coverage"]["hits"] and "skipped_known_crashers" in report


def test_an_actor_killed_mid_run_is_replaced_and_the_campaign_loses_nothing(tmp_path, local_cluster):
    from moefuzz.cluster.driver import RayOptions, run_ray_campaign

    corpus = tmp_path / "corpus"
    seen: dict[str, object] = {"killed": None, "execs": [], "after": set()}

    def on_status(status):
        seen["execs"].append(status.execs)
        if seen["killed"] is None:
            victim = next((a for a in status.actors if a.state == "fuzzing" and a.running and a.pid), None)
            if victim is not None:
                seen["killed"] = (victim.slot, victim.seed, status.execs, [p.name for p, _ in status.findings])
                os.kill(victim.pid, signal.SIGKILL)
        else:
            slot = seen["killed"][0]
            seen["after"].add(status.actors[slot].state)

    status = run_ray_campaign(bug_model_campaign(corpus, 8.0), RayOptions("local", actors=2), on_status)
    assert seen["killed"] is not None, "no actor was ever seen running a case"
    slot, old_seed, execs_at_kill, saved_before = seen["killed"]
    actor = status.actors[slot]
    assert actor.restarts == 1 and status.actor_restarts == 1 and actor.seed != old_seed
    assert "fuzzing" in seen["after"] and actor.state == "done"  # started again, fuzzed, ran out the budget
    execs = seen["execs"]
    assert execs == sorted(execs) and status.execs > execs_at_kill  # the dead actor's count is kept
    saved = {p.name for p in (corpus / "three_step_sort").iterdir()}
    assert set(saved_before) <= saved  # what was saved before the kill is still there
    blamed = load_finding(corpus / "three_step_sort" / "bug-duplicate-topk--crash-actor-died")
    assert status.blamed >= 1 and blamed.found["seed"] == old_seed and blamed.found["actor"] == slot
    assert "died" in blamed.message


def test_an_actor_reports_a_finding_before_shrinking_it_then_the_shrunk_case(fake_targets):
    # the actor as a plain object (no Ray): its campaign thread, outbox and counters
    from moefuzz.cluster.actor import FuzzActor

    actor = FuzzActor()
    spec = {
        "target": "fake_sort", "kernel": "miscount-duplicates", "duration_s": 4.0, "seed": 1, "device": "cpu",
        "shrink_budget_s": 30.0, "known": [], "env": {"MOEFUZZ_TARGETS": fake_targets},
    }  # fmt: skip
    reply = actor.start(spec)
    assert reply["error"] is None and reply["device_kind"] == "cpu" and reply["limits"]
    phases, polls = [], 0
    while True:
        polled = actor.poll()
        polls += 1
        phases += [(entry["phase"], finding_from_data(entry["finding"])) for entry in polled["findings"]]
        if polled["done"]:
            break
        assert polls < 600, "the actor's campaign never ended"
        time.sleep(0.1)
    assert polled["error"] is None and polled["counters"]["execs"] >= 1
    assert [phase for phase, _ in phases if phase != "shrinking"] == ["found", "shrunk"]
    (_, found), (_, shrunk) = phases[0], phases[-1]
    assert found.finding_id == shrunk.finding_id == "miscount-duplicates--divergence-expert_first_token_offset"
    assert found.case.digest() == found.original_case.digest()  # reported before any shrinking
    assert shrunk.case.arrays["token_selected_experts"].shape == (5, 2) and shrunk.shrink["complete"] is True
