"""Which stage of a campaign's pipeline sets its pace: drawers, the parent, or the worker.

Three measurements of a target's correct kernel at one size limit, each alone:

- ``drawers``: a :class:`moefuzz.drawers.DrawerPool` of ``--drawers`` processes kept
  :data:`~moefuzz.drawers.DRAW_AHEAD` buffers ahead, nothing else: cases drawn (with their
  oracle outputs) per second.
- ``worker``: one :class:`moefuzz.isolation.Executor` fed drawn payloads prepared beforehand
  (``("prepared", ...)`` requests, ``--depth`` in flight): what a worker and its pipe sustain,
  with its summed case seconds over the wall time (``busy``) and the mean case seconds.
- ``campaign``: ``run_campaign`` with moefuzz's defaults, with ``busy`` likewise and how often
  the parent found no drawn case when a worker had room (``starved``).

Prints one JSON object.

    PYTHONPATH=. python3 benchmarks/pipeline_probe.py --target three_step_sort --max-tokens 1024
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def drawer_rate(target: str, limits, count: int, seconds: float) -> dict:
    from moefuzz.drawers import DRAW_AHEAD, DrawerPool
    from moefuzz.generate import byte_stream
    from moefuzz.isolation import worker_context

    pool = DrawerPool(worker_context(), target, limits, count)
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

    from moefuzz.drawers import prepared_payload
    from moefuzz.execute import oracle_outputs
    from moefuzz.generate import CaseSource
    from moefuzz.isolation import Executor, Request
    from moefuzz.registry import get_target
    from moefuzz.target import resolve_entry

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


def campaign_probe(target: str, limits, device: str, seconds: float, drawers: int | None) -> dict:
    from moefuzz import campaign as campaign_module
    from moefuzz.campaign import CampaignConfig, run_campaign

    counts = {"asked": 0, "starved": 0}
    original = campaign_module._Feed.next_request

    def next_request(self):
        request = original(self)
        counts["asked"] += 1
        counts["starved"] += request is None
        return request

    campaign_module._Feed.next_request = next_request  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as corpus:
            config = CampaignConfig(target, None, seconds, Path(corpus), device=device, limits=limits, drawers=drawers)
            status = run_campaign(config)
    finally:
        campaign_module._Feed.next_request = original  # type: ignore[method-assign]
    return {
        "execs_per_s": round(status.execs_per_s, 1),
        "drawers": status.drawers,
        "busy": round(status.exec_seconds / seconds, 3),
        "mean_case_ms": round(1e3 * status.exec_seconds / max(status.execs, 1), 4),
        "starved": round(counts["starved"] / max(counts["asked"], 1), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="three_step_sort")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--drawers", default="2,8")
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args()
    from moefuzz.target import Limits
    from moefuzz.worker import choose_device

    device = choose_device(args.device)
    limits = Limits(max_tokens=args.max_tokens)
    result = {
        "target": args.target,
        "max_tokens": args.max_tokens,
        "worker": worker_rate(args.target, limits, device, args.depth, args.seconds),
        "drawers": [drawer_rate(args.target, limits, int(n), args.seconds) for n in args.drawers.split(",")],
        "campaign": campaign_probe(args.target, limits, device, args.seconds, None),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
