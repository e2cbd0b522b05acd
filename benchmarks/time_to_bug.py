"""Time to first finding and shrink time of a bug model, over several seeds, from empty corpora.

Runs ``moefuzz run`` once per seed (``--jobs`` at a time, each with its own corpus), then reads every
saved finding.json and the run's JSON report. Times count from the campaign's start, worker
start-up and Triton compiles included. Prints one JSON object. Sent SIGTERM (a ``timeout`` around
it), it starts no more campaigns, passes the signal on to those running (each writes its report and
exits) and prints the object for what ran, ``"interrupted": true`` (levels left out).

Magma's levels for moefuzz: the campaign's cases are the seed's byte stream drawn through the
target's strategy (:func:`moefuzz.engine.generate.byte_stream`), so they are drawn again here, on the CPU,
and :mod:`benchmarks.bug_models` says which buffer first reached the bug's path and first
triggered it (``reached_index``, ``triggered_index``; the first finding's ``stream_index`` is the
buffer it came from). The shrunk size is compared with the bug model's hand-made minimum.

    python benchmarks/time_to_bug.py --target three_step_sort --kernel bug-duplicate-topk --runs 5
    python benchmarks/time_to_bug.py --engine atheris --jobs 1 ...   # one run at a time (few cores)
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


#: Most buffers of a stream drawn again for the levels (a few ms each on the CPU).
LEVEL_BUFFERS = 3000


def levels(target: str, kernel: str, seed: int, first: dict | None, report: dict, args: argparse.Namespace) -> dict:
    """Magma's reached / triggered for one campaign: the first buffer of its stream whose case
    reaches or triggers the bug (``None`` if none within the buffers the campaign ran, at most
    :data:`LEVEL_BUFFERS`); the known minimum size beside the shrunk one."""
    from benchmarks.bug_models import bug_model
    from moefuzz.engine.generate import CaseSource, byte_stream
    from moefuzz.model.registry import get_target
    from moefuzz.model.target import Limits, default_limits

    try:
        bug = bug_model(target, kernel)
    except KeyError:
        return {}
    device = (report.get("environment") or {}).get("device", "cuda")
    limits = Limits(max_tokens=args.max_tokens) if args.max_tokens else default_limits(device)
    spec = get_target(target)
    source = CaseSource(spec.strategy(limits), 0)
    ran = (first or {}).get("found", {}).get("stream_index")
    count = min(LEVEL_BUFFERS, (ran + 1) if ran is not None else int(report.get("execs") or LEVEL_BUFFERS))
    result: dict = {"reached_index": None, "triggered_index": None, "minimum_size": list(spec.size(bug.minimum_case))}
    for index, buffer in zip(range(count), byte_stream(seed), strict=False):
        case = source.from_bytes(buffer)
        if case is None:
            continue
        for level in ("reached", "triggered"):
            if result[f"{level}_index"] is None and getattr(bug, level)(case):
                result[f"{level}_index"] = index
        if result["triggered_index"] is not None:
            break
    shrunk = first["shrink"].get("size") if first else None
    result["at_minimum"] = shrunk is not None and list(shrunk) <= result["minimum_size"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="three_step_sort")
    parser.add_argument("--kernel", default="bug-duplicate-topk")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--time", default="60s")
    parser.add_argument("--shrink-time", default="120s")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--perturb", type=int, default=1, help="launches per case (schedule perturbation)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="copy the corpora here")
    parser.add_argument("--engine", default="random", choices=["random", "atheris"])
    parser.add_argument("--jobs", type=int, default=0, help="campaigns at a time (default: all seeds at once)")
    parser.add_argument("--workers", type=int, default=None, help="workers of each campaign (default: moefuzz's)")
    parser.add_argument("--drawers", type=int, default=None, help="drawers of each campaign (default: moefuzz's)")
    parser.add_argument("--max-tokens", type=int, default=None, help="the campaigns' size limit, for the levels")
    args = parser.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ttb-"))
    procs: list[tuple[int, Path, subprocess.Popen]] = []
    stopped: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopped.append(signum)
        for _, _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for seed in range(args.first_seed, args.first_seed + args.runs):
        if stopped:
            break
        corpus = root / f"seed-{seed}"
        command = [
            sys.executable, "-m", "moefuzz.ui.cli", "run", "--target", args.target, "--kernel", args.kernel,
            "--time", args.time, "--shrink-time", args.shrink_time, "--seed", str(seed),
            "--corpus", str(corpus), "--device", args.device, "--perturb", str(args.perturb),
            "--engine", args.engine, "--json", str(root / f"run-{seed}.json"), "--max-findings", "1",
        ]  # fmt: skip
        if args.workers:
            command += ["--workers", str(args.workers)]
        if args.drawers is not None:
            command += ["--generators", str(args.drawers)]
        if args.jobs and len(procs) >= args.jobs:
            procs[-args.jobs][2].wait()
        if stopped:
            break
        procs.append((seed, corpus, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
        time.sleep(0.5)
    runs = []
    for seed, corpus, proc in procs:
        output = proc.communicate()[0].decode(errors="replace")
        findings = [json.loads(p.read_text()) for p in sorted(corpus.rglob("finding.json"))]
        first = min(findings, key=lambda f: f["found"]["elapsed_s"]) if findings else None
        report = _read_json(root / f"run-{seed}.json")
        runs.append(
            {
                "seed": seed,
                "exit": proc.returncode,
                "found": bool(findings),
                "signatures": sorted(f["signature"] for f in findings),
                "time_to_first_s": first["found"]["elapsed_s"] if first else None,
                "execs_to_first": first["found"]["execs"] if first else None,
                "shrink_s": first["shrink"].get("seconds") if first else None,
                "shrunk_size": first["shrink"].get("size") if first else None,
                "original_size": first["shrink"].get("original_size") if first else None,
                "device": first["environment"].get("device_name") if first else None,
                "rate": f"{first['found'].get('failures', 1)}/{first['found'].get('runs', 1)}" if first else None,
                "shrunk_rate": first["shrink"].get("rate") if first else None,
                "explanation": (first.get("explanation") or "").splitlines()[:2] if first else None,
                "stream_index": first["found"].get("stream_index") if first else None,
                "execs": report.get("execs"),
                "execs_per_s": report.get("execs_per_s"),
                "workers": report.get("workers"),
                "drawers": report.get("drawers"),
                "startup_s": report.get("startup_s"),
                "first_case_s": report.get("first_case_s"),
                "worker_restarts": report.get("worker_restarts"),
                "worker_recovery_s": report.get("worker_recovery_s"),
                "tail": output.strip().splitlines()[-3:],
            }
        )
        if not stopped:
            runs[-1].update(levels(args.target, args.kernel, seed, first, report, args))
    times = [r["time_to_first_s"] for r in runs if r["found"]]
    shrinks = [r["shrink_s"] for r in runs if r["found"] and r["shrink_s"] is not None]
    summary = {
        "target": args.target,
        "kernel": args.kernel,
        "engine": args.engine,
        "found": f"{len(times)}/{len(runs)}",
        "median_time_to_first_s": statistics.median(times) if times else None,
        "max_time_to_first_s": max(times) if times else None,
        "median_shrink_s": statistics.median(shrinks) if shrinks else None,
        "reached": sum(r.get("reached_index") is not None for r in runs),
        "triggered": sum(r.get("triggered_index") is not None for r in runs),
        "at_minimum": sum(bool(r.get("at_minimum")) for r in runs),
        "interrupted": bool(stopped),
        "runs": runs,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
