"""Where a campaign's parent process spends its time: the profile behind docs/benchmarks.md.

Runs one campaign of a target's correct kernel (``run_campaign``, moefuzz's defaults unless told)
under ``cProfile`` in this process, the parent, and prints one JSON object: executions, the
parent's CPU seconds a case (``time.process_time``), the worker's share of the wall time (its
summed case seconds over the fuzzing seconds: 1.0 means the worker never waited), the loop's
wake-ups a case, and the top entries of the profile by internal time.

    PYTHONPATH=. python3 benchmarks/parent_profile.py --target three_step_sort --max-tokens 1024 --drawers 4
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="three_step_sort")
    parser.add_argument("--kernel", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--drawers", type=int, default=None)
    args = parser.parse_args()
    from moefuzz.engine.campaign import CampaignConfig, run_campaign
    from moefuzz.model.target import Limits

    with tempfile.TemporaryDirectory() as corpus:
        config = CampaignConfig(
            args.target,
            args.kernel,
            args.seconds,
            Path(corpus),
            device=args.device,
            limits=Limits(max_tokens=args.max_tokens),
            workers=args.workers,
            generators=args.drawers,
        )
        profile = cProfile.Profile()
        cpu, wall = time.process_time(), time.perf_counter()
        profile.enable()
        status = run_campaign(config)
        profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    stats = pstats.Stats(profile)
    waits = sum(calls for (_, _, name), (calls, *_rest) in stats.stats.items() if name == "wait")  # type: ignore[attr-defined]
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(25)
    execs = max(status.execs, 1)
    fuzzing = time.monotonic() - (status.fuzzing_since or time.monotonic())
    print(
        json.dumps(
            {
                "target": args.target,
                "execs": status.execs,
                "execs_per_s": round(status.execs_per_s, 1),
                "workers": status.workers,
                "drawers": status.generators,
                "parent_cpu_ms_per_case": round(1e3 * cpu / execs, 4),
                "parent_cpu_s": round(cpu, 2),
                "wall_s": round(wall, 2),
                "worker_busy": round(status.exec_seconds / max(fuzzing, 1e-9) / max(status.workers, 1), 3),
                "waits_per_case": round(waits / execs, 2),
                "profile": [line for line in text.getvalue().splitlines() if line.strip()][:32],
            }
        )
    )


if __name__ == "__main__":
    main()
