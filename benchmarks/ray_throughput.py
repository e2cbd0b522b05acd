"""Throughput of one campaign through Ray (``--ray local``, one actor on the one GPU) against the
same campaign run natively, interleaved, in one process.

Both run ``run_campaign``'s defaults on the correct kernel of ``--target`` with the same limits
(``--max-tokens``) and seeds; the Ray campaign starts its local cluster and shuts it down each
time, as ``moefuzz run --ray local`` does. A native warm-up campaign first fills Triton's compile
cache. The rate compared is ``steady_execs_per_s`` (from the first case's outcome to the close:
start-up excluded on both sides; for Ray, the actor's own clock). Prints one JSON line per
campaign, then a summary line with the mean rates and ``ratio`` (Ray over native) and the ratio of
each pair.

    PYTHONPATH=$PWD python3 benchmarks/ray_throughput.py --target three_step_sort --seconds 20 \
        --max-tokens 1024 --pairs 3 --warmup 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def one(mode: str, target: str, seconds: float, seed: int, max_tokens: int | None, device: str = "cuda") -> dict:
    from moefuzz.engine.campaign import CampaignConfig, run_campaign
    from moefuzz.model.target import Limits

    limits = Limits(max_tokens=max_tokens) if max_tokens else None
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as corpus:
        config = CampaignConfig(target, None, seconds, Path(corpus), seed, device, limits=limits)
        if mode == "ray":
            from moefuzz.cluster.driver import RayOptions, run_ray_campaign

            status = run_ray_campaign(config, RayOptions("local"))
        else:
            status = run_campaign(config)
    steady = status.steady_execs_per_s
    return {
        "mode": mode,
        "seed": seed,
        "execs": status.execs,
        "execs_per_s": round(status.execs_per_s, 1),
        "steady_execs_per_s": None if steady is None else round(steady, 1),
        "workers": status.workers,
        "drawers": status.generators,
        "device": status.device,
        "findings": len(status.findings) + status.known,
        "wall_s": round(time.monotonic() - started, 1),
        **({"cluster": status.cluster_text} if hasattr(status, "cluster_text") else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="three_step_sort")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu to try the script without a GPU.")
    parser.add_argument("--warmup", type=float, default=15.0, help="Seconds of a native campaign first (0: none).")
    args = parser.parse_args()
    if args.warmup > 0:
        warmup = one("native", args.target, args.warmup, 99, args.max_tokens, args.device)
        print(json.dumps({"warmup": warmup}), flush=True)
    rates: dict[str, list[float]] = {"native": [], "ray": []}
    ratios = []
    for pair in range(args.pairs):
        order = ("native", "ray") if pair % 2 == 0 else ("ray", "native")  # neither always goes first
        results = {}
        for mode in order:
            result = one(mode, args.target, args.seconds, pair, args.max_tokens, args.device)
            results[mode] = result
            print(json.dumps(result), flush=True)
        native, ray = results["native"]["steady_execs_per_s"], results["ray"]["steady_execs_per_s"]
        if native and ray:
            rates["native"].append(native)
            rates["ray"].append(ray)
            ratios.append(round(ray / native, 3))
    if not ratios:
        sys.exit("no pair ran a case on both sides")
    native_mean, ray_mean = statistics.mean(rates["native"]), statistics.mean(rates["ray"])
    summary = {
        "target": args.target,
        "seconds": args.seconds,
        "max_tokens": args.max_tokens,
        "native_steady_execs_per_s": rates["native"],
        "ray_steady_execs_per_s": rates["ray"],
        "native_mean": round(native_mean, 1),
        "ray_mean": round(ray_mean, 1),
        "ratio": round(ray_mean / native_mean, 3),
        "pair_ratios": ratios,
    }
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
