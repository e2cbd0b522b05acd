"""Throughput of moefuzz campaigns beside the in-process floor and a plain ``@given`` test, in one run.

For each target, on its correct kernel:

- ``floor``: the same kernel, oracle and comparison (:class:`moefuzz.worker.CaseRunner`) called in
  a tight Python loop on cases drawn beforehand: no generation, no worker, no pipe.
- ``campaign_1``: ``run_campaign`` with one worker: generation in the worker, isolation, the pipe,
  everything, with the same size limits.
- ``campaign_n``: the same with ``--workers`` workers (default: moefuzz's own choice).
- ``campaign_d``: one worker fed by ``--drawers`` CPU-only drawer processes (default 4;
  ``--drawers 0`` skips it): the draw leaves the worker's critical path.
- ``given``: the target's plain ``@given`` baseline (:mod:`benchmarks.baselines`: sizes as
  integers, arrays element by element) running the same runner in this process; its size mix is
  its own.

Each first runs a warm-up so Triton's compile cache is hot; campaign rates count from the first
worker's start (:attr:`CampaignStatus.execs_per_s`). Prints one JSON object per target.

    PYTHONPATH=. python3 benchmarks/throughput.py --targets three_step_sort --seconds 20 --max-tokens 1024
    PYTHONPATH=. python3 benchmarks/throughput.py --targets all --seconds 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

#: Size keywords of the targets whose limits take ``--max-tokens`` (routing tables).
TOKEN_TARGETS = ("three_step_sort", "moe_align_block_size", "moe_permute", "ep_scatter", "ep_gather")


def limits_of(target: str, max_tokens: int | None, device: str):
    from moefuzz.target import Limits, default_limits

    if max_tokens and target in TOKEN_TARGETS:
        return Limits(max_tokens=max_tokens)
    return default_limits(device)


def floor(runner, target: str, limits, seconds: float, seed: int) -> dict:
    from moefuzz.generate import CaseSource
    from moefuzz.registry import get_target

    source = CaseSource(get_target(target).strategy(limits), seed)
    pool = [source.draw() for _ in range(500)]
    for case in pool[:100]:  # warm-up: compiles the variants the pool needs
        runner.run(case)
    execs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        outcome = runner.run(pool[execs % len(pool)])
        if outcome.failed:
            raise SystemExit(f"floor: correct kernel failed: {outcome.signature} {outcome.message}")
        execs += 1
    elapsed = time.perf_counter() - started
    return {"execs": execs, "seconds": round(elapsed, 2), "execs_per_s": round(execs / elapsed, 1)}


def campaign(
    target: str, device: str, limits, seconds: float, seed: int, workers: int | None, drawers: int = 0
) -> dict:
    from moefuzz.campaign import CampaignConfig, run_campaign

    with tempfile.TemporaryDirectory() as corpus:
        config = CampaignConfig(
            target, None, seconds, Path(corpus), seed, device, limits=limits, workers=workers, drawers=drawers
        )
        status = run_campaign(config)
    return {
        "execs": status.execs,
        "seconds": round(seconds, 2),
        "execs_per_s": round(status.execs_per_s, 1),
        "workers": status.workers,
        "drawers": status.drawers,
        "findings": len(status.findings) + status.known,
    }


def given(runner, target: str, seconds: float, seed: int, max_tokens: int | None) -> dict | None:
    from benchmarks.baselines import all_baselines, run_given

    baselines = all_baselines().get(target)
    if baselines is None:
        return None
    sizes = {"max_tokens": max_tokens} if max_tokens and target in TOKEN_TARGETS else {}
    run_given(baselines, runner, None, min(2.0, seconds), seed, **sizes)  # warm-up
    result = run_given(baselines, runner, None, seconds, seed + 1, **sizes)
    if result["detected"]:
        raise SystemExit(f"given: correct kernel failed: {result.get('signature')}")
    return {"execs": result["cases"], "seconds": result["seconds"], "execs_per_s": round(result["cases"] / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default="three_step_sort", help="comma-separated, or 'all'")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=None, help="token limit of routing targets' cases")
    parser.add_argument("--workers", type=int, default=None, help="workers of campaign_n (default: moefuzz's)")
    parser.add_argument("--drawers", type=int, default=4, help="drawers of campaign_d (0: skip it)")
    args = parser.parse_args()
    from moefuzz.worker import CaseRunner, choose_device

    device = choose_device(args.device)  # before triton is imported: it may set TRITON_INTERPRET
    import torch
    import triton

    from moefuzz.registry import builtin_targets

    names = sorted(builtin_targets()) if args.targets == "all" else args.targets.split(",")
    for target in names:
        limits = limits_of(target, args.max_tokens, device)
        runner = CaseRunner(target, None, device)
        result = {
            "target": target,
            "max_tokens": limits.max_tokens,
            "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (Triton interpreter)",
            "torch": torch.__version__,
            "triton": triton.__version__,
            "python": sys.version.split()[0],
            "floor": floor(runner, target, limits, args.seconds, args.seed),
            "campaign_1": campaign(target, device, limits, args.seconds, args.seed, 1),
            "campaign_n": campaign(target, device, limits, args.seconds, args.seed, args.workers),
            "campaign_d": campaign(target, device, limits, args.seconds, args.seed, 1, args.drawers)
            if args.drawers
            else None,
            "given": given(runner, target, args.seconds, args.seed, args.max_tokens),
        }
        rates = [result[k]["execs_per_s"] for k in ("campaign_1", "campaign_n", "campaign_d") if result[k]]
        best = max(rates)
        result["ratio_1"] = round(result["campaign_1"]["execs_per_s"] / max(result["floor"]["execs_per_s"], 1e-9), 3)
        result["ratio_n"] = round(best / max(result["floor"]["execs_per_s"], 1e-9), 3)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
