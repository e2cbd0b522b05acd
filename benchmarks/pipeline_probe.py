"""Which stage of a campaign's pipeline sets its pace: drawers, the parent, or the worker.

Three measurements of a target's correct kernel at one size limit, each alone:

- ``drawers``: a :class:`moefuzz.runtime.generators.GeneratorPool` of ``--drawers`` processes kept
  :data:`~moefuzz.runtime.generators.DRAW_AHEAD` buffers ahead, nothing else: cases drawn (with their
  oracle outputs) per second.
- ``worker``: one :class:`moefuzz.runtime.isolation.Executor` fed drawn payloads prepared beforehand
  (``("prepared", ...)`` requests, ``--depth`` in flight): what a worker and its pipe sustain,
  with its summed case seconds over the wall time (``busy``) and the mean case seconds.
- ``campaign``: a campaign with moefuzz's defaults, ``--repeats`` times in a row, each with
  ``busy`` likewise, how often the parent found no drawn case when a worker had room
  (``starved``), its rate over the whole window and from its first case on (``steady``), the
  cases slower than :data:`SLOW_CASE_S` (kernel variants compiled or loaded inside the window),
  the worker process's CPU and preemptions (``/proc``), the parent's CPU, and execs/s in each
  second (``per_step``): what tells a slow campaign from a fast one of the same configuration.

Prints one JSON object (``campaign``: a list, one entry a repeat).

    PYTHONPATH=. python3 benchmarks/pipeline_probe.py --target three_step_sort --max-tokens 1024
    PYTHONPATH=. python3 benchmarks/pipeline_probe.py --modes campaign --repeats 4 --campaign-seconds 30
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

#: A case slower than this (worker seconds) counts as ``slow``: a kernel variant compiled or
#: loaded inside the window, or the worker descheduled; a T <= 1024 case runs in ~0.4 ms.
SLOW_CASE_S = 0.005
#: Seconds between two points of a campaign's timeline (``per_step``: execs/s in each step).
TIMELINE_STEP_S = 1.0


def drawer_rate(target: str, limits, count: int, seconds: float) -> dict:
    from moefuzz.engine.generate import byte_stream
    from moefuzz.runtime.generators import DRAW_AHEAD, GeneratorPool
    from moefuzz.runtime.isolation import worker_context

    pool = GeneratorPool(worker_context(), target, limits, count)
    buffers, index, drawn = byte_stream(1), 0, 0
    try:
        while len(pool.hungry()) < count:  # all started
            pool.collect()
            time.sleep(0.01)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            for drawer in pool.hungry():
                while len(drawer.pending) < DRAW_AHEAD:
                    pool.submit(drawer, index, next(buffers))
                    index += 1
            drawn += len(pool.collect())
            time.sleep(0.0002)
        elapsed = time.perf_counter() - started
    finally:
        pool.close()
    return {"drawers": count, "drawn_per_s": round(drawn / elapsed, 1)}


def worker_rate(target: str, limits, device: str, depth: int, seconds: float) -> dict:
    from multiprocessing.connection import wait

    from moefuzz.engine.generate import CaseSource
    from moefuzz.execute.inprocess import oracle_outputs
    from moefuzz.model.registry import get_target
    from moefuzz.model.target import resolve_entry
    from moefuzz.runtime.generators import prepared_payload
    from moefuzz.runtime.isolation import Executor, Request

    spec = get_target(target)
    source = CaseSource(spec.strategy(limits), 2)
    oracle = resolve_entry(spec.oracle)
    payloads = []
    for _ in range(300):
        case = source.draw()
        expected = oracle_outputs(oracle, case)
        payloads.append(prepared_payload(case, expected))
    executor = Executor(target, None, device, limits=limits)
    executor.start()
    try:
        for payload in payloads[:100]:  # warm-up
            executor.run_request(Request(payload=payload))
        done, busy, at = 0, 0.0, 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            while executor.in_flight < depth:
                executor.submit(Request(payload=payloads[at % len(payloads)], index=at))
                at += 1
            wait([executor.connection], timeout=1.0)
            for _, outcome in executor.collect():
                done += 1
                busy += outcome.seconds
        elapsed = time.perf_counter() - started
        while executor.in_flight:
            executor.collect()
    finally:
        executor.close()
    return {
        "depth": depth,
        "execs_per_s": round(done / elapsed, 1),
        "busy": round(busy / elapsed, 3),
        "mean_case_ms": round(1e3 * busy / max(done, 1), 4),
    }


def _proc_counters(pid: int) -> dict:
    """CPU seconds (user + system, every thread) and context switches of process ``pid`` so
    far, from ``/proc`` (empty where there is none)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "cpu_s": (int(stat[11]) + int(stat[12])) / ticks,
        "cpu": int(stat[36]),  # the core it last ran on
        "preempted": int(fields["nonvoluntary_ctxt_switches"]),
        "yielded": int(fields["voluntary_ctxt_switches"]),
    }


def campaign_probe(
    target: str, limits, device: str, seconds: float, drawers: int | None, workers: int | None = None
) -> dict:
    """One campaign with moefuzz's defaults (or ``drawers``), driven here so that its worker
    can be watched: the rates, how the worker's time went, and a timeline."""
    from moefuzz.engine import feed as feed_module
    from moefuzz.engine.campaign import Campaign, CampaignConfig
    from moefuzz.runtime import isolation

    counts = {"asked": 0, "starved": 0, "slow": 0, "slow_s": 0.0}
    original_next, original_collect = feed_module.Feed.next_request, isolation.Executor.collect

    def next_request(self):
        request = original_next(self)
        counts["asked"] += 1
        counts["starved"] += request is None
        return request

    def collect(self):
        answered = original_collect(self)
        for _, outcome in answered:
            if outcome.seconds > SLOW_CASE_S:
                counts["slow"] += 1
                counts["slow_s"] += outcome.seconds
        return answered

    timeline: list[tuple[float, int, float]] = []

    def on_status(status) -> None:
        if status.fuzzing_since is None:
            return
        at = time.monotonic() - status.fuzzing_since
        if not timeline or at - timeline[-1][0] >= TIMELINE_STEP_S:
            timeline.append((at, status.execs, status.exec_seconds))

    feed_module.Feed.next_request = next_request  # type: ignore[method-assign]
    isolation.Executor.collect = collect  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as corpus:
            config = CampaignConfig(
                target, None, seconds, Path(corpus), device=device, limits=limits, generators=drawers, workers=workers
            )
            campaign = Campaign(config, on_status)
            try:
                campaign.start()
                worker = campaign.executor._active
                pid = worker.process.pid if worker is not None else None
                before, parent_before = _proc_counters(pid) if pid else {}, os.times()
                campaign.fuzz()
                after, parent_after = _proc_counters(pid) if pid else {}, os.times()
            finally:
                closing = time.monotonic()
                campaign.close()
                closing = time.monotonic() - closing
    finally:
        feed_module.Feed.next_request = original_next  # type: ignore[method-assign]
        isolation.Executor.collect = original_collect  # type: ignore[method-assign]
    status = campaign.status
    window = status.fuzzing_until - status.fuzzing_since
    first = status.first_case_at - status.fuzzing_since if status.first_case_at else window
    steady = status.steady_execs_per_s
    per_s = [round((b[1] - a[1]) / (b[0] - a[0])) for a, b in itertools.pairwise(timeline) if b[0] - a[0] > 0]
    result = {
        "execs_per_s": round(status.execs_per_s, 1),
        "steady_execs_per_s": None if steady is None else round(steady, 1),
        "first_case_s": round(first, 3),
        "close_s": round(closing, 3),
        "drawers": status.generators,
        "busy": round(status.exec_seconds / window, 3),
        "mean_case_ms": round(1e3 * status.exec_seconds / max(status.execs, 1), 4),
        "slow_cases": counts["slow"],
        "slow_s": round(counts["slow_s"], 3),
        "starved": round(counts["starved"] / max(counts["asked"], 1), 3),
        "parent_cpu": round(
            (parent_after.user + parent_after.system - parent_before.user - parent_before.system) / window, 3
        ),
        "per_step": per_s,
    }
    if before and after:
        result["worker"] = {
            "cpu": round((after["cpu_s"] - before["cpu_s"]) / window, 3),
            "preempted_per_s": round((after["preempted"] - before["preempted"]) / window, 1),
            "yielded_per_s": round((after["yielded"] - before["yielded"]) / window, 1),
            "core": [before["cpu"], after["cpu"]],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="three_step_sort")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--drawers", default="2,8")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--modes", default="worker,drawers,campaign", help="which measurements, comma-separated")
    parser.add_argument("--workers", type=int, default=None, help="a campaign's workers (default moefuzz's)")
    parser.add_argument("--campaign-drawers", type=int, default=None, help="a campaign's drawers (default moefuzz's)")
    parser.add_argument("--repeats", type=int, default=1, help="campaigns in a row (the campaign's noise)")
    parser.add_argument("--campaign-seconds", type=float, default=None, help="a campaign's budget (default --seconds)")
    args = parser.parse_args()
    from moefuzz.model.target import Limits
    from moefuzz.runtime.worker import choose_device

    device = choose_device(args.device)
    limits = Limits(max_tokens=args.max_tokens)
    modes = args.modes.split(",")
    result: dict = {"target": args.target, "max_tokens": args.max_tokens}
    if "worker" in modes:
        result["worker"] = worker_rate(args.target, limits, device, args.depth, args.seconds)
    if "drawers" in modes:
        result["drawers"] = [drawer_rate(args.target, limits, int(n), args.seconds) for n in args.drawers.split(",")]
    if "campaign" in modes:
        seconds = args.campaign_seconds or args.seconds
        result["campaign"] = [
            campaign_probe(args.target, limits, device, seconds, args.campaign_drawers, args.workers)
            for _ in range(args.repeats)
        ]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
