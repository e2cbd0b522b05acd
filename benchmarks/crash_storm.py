"""Crash storms: a campaign's throughput while a known crash recurs in about one case in ten,
against the crash-free throughput of the same target, and how fast a crashed worker is replaced.

Campaigns of the test-double target ``fake_sort`` (``tests/fake_targets.py``) with default
settings, one after the other, each ``--seconds`` long on a fresh corpus: ``triton`` (the
three-step sort's own Triton kernel), then each storm kernel of ``--storms``, the same kernel
crashing (on a GPU with a real illegal memory access, in the interpreter with an abort) on

- ``triton-crash-on-wide-experts``: every case of 1,024 experts, about one case in twelve: an
  input-shaped crash, as real ones are;
- ``triton-crash-one-in-ten``: about one input in ten by a CRC-32 of its routing table: a crash
  spread evenly over every size, which no region of sizes predicts.

The crash is saved once (shrunk within ``--shrink-time``), then recurs as a known crash. Prints
one JSON line: execs/s of each (steady: from the first case back), each storm's ratio to the
crash-free one, the share of cases that crashed, worker restarts, recovery seconds (p50/p95:
from a crash's report to the next case done on the new worker) and the cases skipped as like a
known crasher's.

    PYTHONPATH=. python3 benchmarks/crash_storm.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def campaign(kernel: str, seconds: float, device: str, shrink_s: float, seed: int) -> dict:
    """Run one campaign of ``fake_sort`` with ``kernel``; its figures."""
    from moefuzz.engine.campaign import CampaignConfig, run_campaign
    from moefuzz.ui.reports import percentiles

    with tempfile.TemporaryDirectory(prefix="moefuzz-storm-") as corpus:
        config = CampaignConfig(
            "fake_sort", kernel, seconds, Path(corpus), seed=seed, device=device, shrink_budget_s=shrink_s
        )
        status = run_campaign(config)
    crashes = status.known + sum(1 for _, f in status.findings if f.kind == "crash")
    return {
        "kernel": kernel,
        "device": status.device,
        "workers": status.workers,
        "generators": status.generators,
        "execs": status.execs,
        "execs_per_s": round(status.execs_per_s, 2),
        "steady_execs_per_s": round(status.steady_execs_per_s or 0.0, 2),
        "crashes": crashes,
        "crash_share": round(crashes / status.execs, 4) if status.execs else None,
        "findings": sorted(f.signature for _, f in status.findings),
        "worker_restarts": status.worker_restarts,
        "recovery_s": percentiles(status.recovery_seconds),
        "skipped_known_crashers": status.skipped_known_crashers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="budget of each campaign")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--shrink-time", type=float, default=5.0, help="seconds to shrink the one new finding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--storms", default="triton-crash-on-wide-experts,triton-crash-one-in-ten", help="storm kernels, by commas"
    )
    args = parser.parse_args()
    os.environ["MOEFUZZ_TARGETS"] = str(ROOT / "tests" / "fake_targets.py")
    sys.path.insert(0, str(ROOT))

    calm = campaign("triton", args.seconds, args.device, args.shrink_time, args.seed)
    result: dict = {"benchmark": "crash_storm", "seconds": args.seconds, "crash_free": calm, "storms": []}
    for kernel in args.storms.split(","):
        storm = campaign(kernel, args.seconds, args.device, args.shrink_time, args.seed)
        ratio = storm["steady_execs_per_s"] / calm["steady_execs_per_s"] if calm["steady_execs_per_s"] else None
        storm["throughput_ratio"] = None if ratio is None else round(ratio, 3)
        storm["recovery_p50_s"] = (storm["recovery_s"] or {}).get("p50")
        result["storms"].append(storm)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
