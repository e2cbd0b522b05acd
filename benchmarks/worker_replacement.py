"""Worker replacement after a crash: seconds from the crash's report to the next executed case.

An :class:`moefuzz.runtime.isolation.Executor` (one worker and its warm spare, as a campaign has) runs a
crashing case, then a plain one, ``--rounds`` times; each crash retires the worker and promotes
the spare, and the executor records the seconds from the crash's report until the plain case has
run on the new worker (:attr:`Executor.recovery_seconds`). The crashing kernel is the test double
``illegal-address-on-duplicate`` (``tests/fake_targets.py``): on a GPU a Triton store 2**36
elements past its output, a real illegal memory access that breaks the CUDA context; in the
interpreter an out-of-bounds store refused before it happens, which ends no worker (so this
measures nothing there: ``--kernel abort-on-duplicate`` kills the worker with SIGABRT instead).
``--pause`` seconds between rounds let the new spare warm up, as the seconds between two crashes
of a campaign usually do; ``--pause 0`` measures back-to-back crashes. Prints one JSON object.

    PYTHONPATH=. python3 benchmarks/worker_replacement.py --rounds 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between a plain case and the next crash")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--kernel", default="illegal-address-on-duplicate", help="fake_sort test double (abort-on-duplicate: SIGABRT)"
    )
    args = parser.parse_args()
    os.environ["MOEFUZZ_TARGETS"] = str(ROOT / "tests" / "fake_targets.py")
    sys.path.insert(0, str(ROOT))

    from moefuzz.runtime.isolation import Executor
    from moefuzz.ui.reports import percentiles
    from tests.test_isolation import DUPLICATE, PLAIN

    with Executor("fake_sort", args.kernel, args.device, case_timeout_s=60) as executor:
        for _ in range(3):
            executor.run(PLAIN)  # the first worker's own warm-up
        signatures = []
        for _ in range(args.rounds):
            time.sleep(args.pause)
            signatures.append(executor.run(DUPLICATE).signature)
            after = executor.run(PLAIN)
            if after.failed:
                raise SystemExit(f"the plain case failed after a crash: {after.signature} {after.message}")
        seconds = executor.recovery_seconds
        result = {
            "device": executor.environment.get("device_name"),
            "rounds": args.rounds,
            "pause_s": args.pause,
            "crash_signatures": sorted(set(signatures)),
            "replacements": executor.replacements,
            "recovery_s": percentiles(seconds),
            "mean_s": round(statistics.mean(seconds), 4) if seconds else None,
            "max_s": round(max(seconds), 4) if seconds else None,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
