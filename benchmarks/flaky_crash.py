"""A flaky crash on the device: found, saved once, shrunk to its hand minimum.

Campaigns of the test-double target ``fake_sort`` (``tests/fake_targets.py``) with default
settings, each on a fresh corpus, ``--jobs`` at a time: the kernel
``illegal-address-sometimes-on-duplicate`` stores far past an output (a real illegal memory
access on a GPU) in about one launch in three of any input with a repeated local expert and
T >= 3, and passes in the others. Each campaign runs its whole ``--time`` (no
``--max-findings``), so that a second finding of the same bug (an abort that follows the CUDA
error, say) would show. Prints one JSON line per campaign, then a summary line: findings saved,
their signatures, the launch rate the finding was saved with, the shrunk size and whether it is
the hand minimum :data:`HAND_MINIMUM` (three tokens, one of them ``[0, 0]``, one local expert).

    PYTHONPATH=. python3 benchmarks/flaky_crash.py --runs 4 --jobs 4 --time 30s --shrink-time 120s
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: ``fake_sort``'s size of the smallest input of the bug: T = 3, K = 2, E = 1, one repeat, two
#: distinct rows, one local expert, ids summing to 2.
HAND_MINIMUM = [3, 2, 1, 1, 2, 1, 2]


def summarise(seed: int, corpus: Path, report: Path, exit_code: int, output: str = "") -> dict:
    """One campaign's figures, read from its corpus and JSON report (and, when it exited with
    neither 0 nor 1, the last lines of its ``output``)."""
    findings = [json.loads(p.read_text()) for p in sorted(corpus.rglob("finding.json"))]
    first = min(findings, key=lambda f: f["found"]["elapsed_s"]) if findings else None
    try:
        run = json.loads(report.read_text())
    except (OSError, ValueError):
        run = {}
    shrunk = first["shrink"].get("size") if first else None
    return {
        "seed": seed,
        "exit": exit_code,
        "findings": len(findings),
        "signatures": sorted(f["signature"] for f in findings),
        "time_to_first_s": first["found"]["elapsed_s"] if first else None,
        "launch_rate": first["found"].get("launch_rate") if first else None,
        "original_size": first["shrink"].get("original_size") if first else None,
        "shrunk_size": shrunk,
        "shrink_complete": first["shrink"].get("complete") if first else None,
        "shrink_s": first["shrink"].get("seconds") if first else None,
        "shrunk_rate": first["shrink"].get("rate") if first else None,
        "at_hand_minimum": shrunk == HAND_MINIMUM,
        "execs": run.get("execs"),
        "worker_restarts": run.get("worker_restarts"),
        "device": run.get("device"),
        **({"tail": output.strip().splitlines()[-3:]} if exit_code not in (0, 1) else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel", default="illegal-address-sometimes-on-duplicate")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--time", default="30s")
    parser.add_argument("--shrink-time", default="120s")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    env = {**os.environ, "MOEFUZZ_TARGETS": str(ROOT / "tests" / "fake_targets.py")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    root = Path(tempfile.mkdtemp(prefix="moefuzz-flaky-"))
    running: list[tuple[int, subprocess.Popen]] = []
    results = []

    def finish(seed: int, proc: subprocess.Popen) -> None:
        proc.wait()
        output = (root / f"out-{seed}.txt").read_text(errors="replace")
        row = summarise(seed, root / f"seed-{seed}", root / f"run-{seed}.json", proc.returncode, output)
        print(json.dumps(row), flush=True)
        results.append(row)

    for seed in range(args.first_seed, args.first_seed + args.runs):
        if len(running) >= args.jobs:
            finish(*running.pop(0))
        command = [
            sys.executable, "-m", "moefuzz", "run", "--target", "fake_sort", "--kernel", args.kernel,
            "--time", args.time, "--shrink-time", args.shrink_time, "--seed", str(seed), "--device", args.device,
            "--corpus", str(root / f"seed-{seed}"), "--json", str(root / f"run-{seed}.json"),
        ]  # fmt: skip
        with open(root / f"out-{seed}.txt", "wb") as out:
            running.append((seed, subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)))
    for seed, proc in running:
        finish(seed, proc)
    found = [r for r in results if r["findings"]]
    print(
        json.dumps(
            {
                "summary": {
                    "kernel": args.kernel,
                    "found": f"{len(found)}/{len(results)}",
                    "saved_once": sum(r["findings"] == 1 for r in found),
                    "at_hand_minimum": sum(r["at_hand_minimum"] for r in found),
                    "launch_rates": [r["launch_rate"] for r in found],
                    "shrunk_sizes": [r["shrunk_size"] for r in found],
                }
            }
        )
    )


if __name__ == "__main__":
    main()
