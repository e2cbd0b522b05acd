"""Time to first finding and shrink time of a bug model, over several seeds, from empty corpora.

Runs ``moefuzz run`` once per seed (``--jobs`` at a time, each with its own corpus), then reads every
saved finding.json. Times count from the campaign's start, worker start-up and Triton compiles
included. Prints one JSON object.

    python benchmarks/time_to_bug.py --target three_step_sort --kernel bug-duplicate-topk --runs 5
    python benchmarks/time_to_bug.py --engine atheris --jobs 1 ...   # one run at a time (few cores)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


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
    parser.add_argument("--engine", default="hypothesis", choices=["hypothesis", "atheris"])
    parser.add_argument("--jobs", type=int, default=0, help="campaigns at a time (default: all seeds at once)")
    args = parser.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ttb-"))
    procs = []
    for seed in range(args.first_seed, args.first_seed + args.runs):
        corpus = root / f"seed-{seed}"
        command = [
            sys.executable, "-m", "moefuzz.cli", "run", "--target", args.target, "--kernel", args.kernel,
            "--time", args.time, "--shrink-time", args.shrink_time, "--seed", str(seed),
            "--corpus", str(corpus), "--device", args.device, "--perturb", str(args.perturb),
            "--engine", args.engine,
        ]  # fmt: skip
        if args.jobs and len(procs) >= args.jobs:
            procs[-args.jobs][2].wait()
        procs.append((seed, corpus, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
        time.sleep(0.5)
    runs = []
    for seed, corpus, proc in procs:
        output = proc.communicate()[0].decode(errors="replace")
        findings = [json.loads(p.read_text()) for p in sorted(corpus.rglob("finding.json"))]
        first = min(findings, key=lambda f: f["found"]["elapsed_s"]) if findings else None
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
                "tail": output.strip().splitlines()[-3:],
            }
        )
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
        "runs": runs,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
