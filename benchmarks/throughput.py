"""Throughput of a moefuzz campaign beside the in-process floor, in one run.

The floor is the same kernel, oracle and comparison (moefuzz.worker.CaseRunner) called in a
tight Python loop on pre-drawn cases: no generation, no worker, no pipe. The campaign is
``run_campaign`` with the same seed and size mix: generation, isolation and all. Both first run
a warm-up so Triton's compile cache is hot. Prints one JSON object.

    python benchmarks/throughput.py --target three_step_sort --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def floor(target: str, kernel: str | None, device: str, seconds: float, seed: int, max_tokens: int) -> dict:
    from moefuzz.generate import CaseSource
    from moefuzz.registry import get_target
    from moefuzz.target import Limits
    from moefuzz.worker import CaseRunner

    runner = CaseRunner(target, kernel, device)
    source = CaseSource(get_target(target).strategy(Limits(max_tokens=max_tokens)), seed)
    pool = [source.draw() for _ in range(1000)]
    for case in pool[:200]:  # warm-up: compiles every variant the pool needs
        runner.run(case)
    execs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        outcome = runner.run(pool[execs % len(pool)])
        if outcome.failed:
            raise SystemExit(f"floor: correct kernel failed: {outcome.signature} {outcome.message}")
        execs += 1
    elapsed = time.perf_counter() - started
    return {"execs": execs, "seconds": round(elapsed, 2), "execs_per_s": round(execs / elapsed, 1)}


def campaign(target: str, kernel: str | None, device: str, seconds: float, seed: int, max_tokens: int) -> dict:
    from moefuzz.campaign import CampaignConfig, run_campaign
    from moefuzz.target import Limits

    with tempfile.TemporaryDirectory() as corpus:
        config = CampaignConfig(
            target, kernel, seconds, Path(corpus), seed, device, limits=Limits(max_tokens=max_tokens)
        )
        status = run_campaign(config)
    return {
        "execs": status.execs,
        "seconds": round(seconds, 2),
        "execs_per_s": round(status.execs_per_s, 1),
        "findings": len(status.findings) + status.known,
        "device": status.device,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="three_step_sort")
    parser.add_argument("--kernel", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=16384)
    args = parser.parse_args()
    from moefuzz.worker import choose_device

    args.device = choose_device(args.device)  # before triton is imported: it may set TRITON_INTERPRET
    import torch
    import triton

    result = {
        "target": args.target,
        "max_tokens": args.max_tokens,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": sys.version.split()[0],
        "campaign": campaign(args.target, args.kernel, args.device, args.seconds, args.seed, args.max_tokens),
        "floor": floor(args.target, args.kernel, args.device, args.seconds, args.seed, args.max_tokens),
    }
    result["ratio"] = round(result["campaign"]["execs_per_s"] / max(result["floor"]["execs_per_s"], 1e-9), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
