"""Throughput of moefuzz campaigns beside the in-process floor and a plain ``@given`` test, in one run.

For each target, on its correct kernel:

- ``floor``: the same kernel, oracle and comparison (:class:`moefuzz.runtime.worker.CaseRunner`) called in
  a tight Python loop on cases drawn beforehand: no generation, no worker, no pipe.
- ``floor_kernel``: the same loop with the oracle's outputs computed beforehand too: the kernel
  and the comparison alone, which is what a worker fed by drawers does a case.
- ``campaign``: ``run_campaign`` with moefuzz's defaults (on a GPU: one worker, drawers drawing
  the cases and running the oracle) and the same size limits: isolation, the pipes, everything.
- ``campaign_1``: one worker and no drawers: the worker draws, runs the oracle and the kernel.
- ``campaign_n``: ``--workers`` workers (default: moefuzz's choice without drawers), no drawers.
- ``campaign_d``: one worker fed by each drawer count of ``--drawers`` (default ``2,4``; ``0``
  skips it).
- ``given``: the target's plain ``@given`` baseline (:mod:`benchmarks.baselines`: sizes as
  integers, arrays element by element) running the same runner in this process; its size mix is
  its own.

Each first runs a warm-up so Triton's compile cache is hot; campaign rates count from the first
worker's start to the campaign's close (:attr:`CampaignStatus.execs_per_s`); ``steady_execs_per_s``
counts from the first case's outcome (``first_case_s`` after that start: the drawers' start-up
and the first kernel load), the rate a long campaign converges to. Prints one JSON object per target.

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
    from moefuzz.model.target import Limits, default_limits

    if max_tokens and target in TOKEN_TARGETS:
        return Limits(max_tokens=max_tokens)
    return default_limits(device)


def floor(runner, target: str, limits, seconds: float, seed: int, oracle_ahead: bool = False) -> dict:
    """Cases drawn beforehand, run in a tight loop by ``runner``; with ``oracle_ahead`` their
    oracle outputs are computed beforehand too (the kernel and the comparison alone)."""
    from moefuzz.engine.generate import CaseSource
    from moefuzz.execute.inprocess import oracle_outputs
    from moefuzz.execute.perturb import Perturbation
    from moefuzz.model.registry import get_target

    name = "floor_kernel" if oracle_ahead else "floor"
    source = CaseSource(get_target(target).strategy(limits), seed)
    pool = [source.draw() for _ in range(500)]
    expected = [oracle_outputs(runner.oracle, case) if oracle_ahead else None for case in pool]
    plan = [Perturbation({})]
    for case, ref in zip(pool[:100], expected[:100], strict=True):  # warm-up: compiles the pool's variants
        runner.run_plan(case, plan, ref)
    execs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        at = execs % len(pool)
        outcome = runner.run_plan(pool[at], plan, expected[at])
        if outcome.failed:
            raise SystemExit(f"{name}: correct kernel failed: {outcome.signature} {outcome.message}")
        execs += 1
    elapsed = time.perf_counter() - started
    return {"execs": execs, "seconds": round(elapsed, 2), "execs_per_s": round(execs / elapsed, 1)}


def campaign(
    target: str, device: str, limits, seconds: float, seed: int, workers: int | None, drawers: int | None = 0
) -> dict:
    from moefuzz.engine.campaign import CampaignConfig, run_campaign

    with tempfile.TemporaryDirectory() as corpus:
        config = CampaignConfig(
            target, None, seconds, Path(corpus), seed, device, limits=limits, workers=workers, generators=drawers
        )
        status = run_campaign(config)
    first = status.first_case_at - status.fuzzing_since if status.first_case_at and status.fuzzing_since else None
    steady = status.steady_execs_per_s
    return {
        "execs": status.execs,
        "seconds": round(seconds, 2),
        "execs_per_s": round(status.execs_per_s, 1),
        "first_case_s": None if first is None else round(first, 3),
        "steady_execs_per_s": None if steady is None else round(steady, 1),
        "workers": status.workers,
        "drawers": status.generators,
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


MODES = ("floor", "floor_kernel", "campaign", "campaign_1", "campaign_n", "campaign_d", "given")


def measure(mode: str, runner, target: str, device: str, limits, args: argparse.Namespace):
    """One of :data:`MODES` for ``target`` (see the module doc)."""
    seconds, seed = args.seconds, args.seed
    if mode == "floor":
        return floor(runner, target, limits, seconds, seed)
    if mode == "floor_kernel":
        return floor(runner, target, limits, seconds, seed, oracle_ahead=True)
    if mode == "campaign":
        return campaign(target, device, limits, seconds, seed, None, None)
    if mode == "campaign_1":
        return campaign(target, device, limits, seconds, seed, 1)
    if mode == "campaign_n":
        return campaign(target, device, limits, seconds, seed, args.workers)
    if mode == "campaign_d":
        counts = [int(n) for n in str(args.drawers).split(",") if int(n) > 0]
        return [campaign(target, device, limits, seconds, seed, 1, n) for n in counts] or None
    if mode == "given":
        return given(runner, target, seconds, seed, args.max_tokens)
    raise SystemExit(f"unknown mode {mode!r} (known: {', '.join(MODES)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default="three_step_sort", help="comma-separated, or 'all'")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=None, help="token limit of routing targets' cases")
    parser.add_argument("--workers", type=int, default=None, help="workers of campaign_n (default: moefuzz's)")
    parser.add_argument("--drawers", default="2,4", help="drawer counts of campaign_d, comma-separated (0: skip it)")
    parser.add_argument("--modes", default="all", help="comma-separated subset of the measurements, or 'all'")
    args = parser.parse_args()
    from moefuzz.runtime.worker import CaseRunner, choose_device

    device = choose_device(args.device)  # before triton is imported: it may set TRITON_INTERPRET
    import torch
    import triton

    from moefuzz.model.registry import builtin_targets

    names = sorted(builtin_targets()) if args.targets == "all" else args.targets.split(",")
    for target in names:
        limits = limits_of(target, args.max_tokens, device)
        runner = CaseRunner(target, None, device)
        modes = list(MODES) if args.modes == "all" else args.modes.split(",")
        result: dict = {
            "target": target,
            "max_tokens": limits.max_tokens,
            "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (Triton interpreter)",
            "torch": torch.__version__,
            "triton": triton.__version__,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        }
        for mode in modes:
            result[mode] = measure(mode, runner, target, device, limits, args)
        floor_rate = (result.get("floor") or {}).get("execs_per_s")
        if floor_rate:
            for mode in ("campaign", "campaign_1", "campaign_n"):
                if result.get(mode):
                    result[f"ratio_{mode}"] = round(result[mode]["execs_per_s"] / floor_rate, 3)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
