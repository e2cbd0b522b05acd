"""Overhead of the interpreter's out-of-bounds checker (moefuzz.execute.oob) on a real kernel.

Runs moefuzz's correct moe_permute kernel under the Triton interpreter on the cases of
``tests/targets/moe_permute/test_moe_permute_kernels.py`` named below, alternating unchecked and checked launches
(``launch_kernel(..., check_memory=False/True)``) so that a busy machine slows both alike, and
prints one JSON object: per case, the median seconds of each and their ratio (noisy on a shared
machine), then for one checked launch how many loads/stores/atomics were checked and the seconds
the checks themselves took, beside that launch's total (the noise-free figure).

    TRITON_INTERPRET=1 python benchmarks/oob_overhead.py --repeats 7
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
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRITON_INTERPRET", "1")

CASE_NAMES = ("hand-worked-round-robin-minus-one-padding", "512-local-experts-75-blocks-K8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import torch

    import moefuzz.execute.oob as oob
    from moefuzz.execute.inprocess import launch_kernel
    from moefuzz_targets.moe_permute import contract
    from moefuzz_targets.moe_permute.kernels import moe_permute_triton
    from tests.targets.moe_permute.test_moe_permute_kernels import CASES

    cpu = torch.device("cpu")
    report = {}
    for name in CASE_NAMES:
        case = CASES[name]
        specs = contract.output_specs(case)
        launch_kernel(moe_permute_triton, specs, case, cpu, check_memory=False)  # warm-up
        seconds: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for check in (False, True):
                started = time.perf_counter()
                launch_kernel(moe_permute_triton, specs, case, cpu, check_memory=check)
                seconds[check].append(time.perf_counter() - started)
        with oob.checked_memory(dict) as session:
            started = time.perf_counter()
            launch_kernel(moe_permute_triton, specs, case, cpu, check_memory=False)
            launch_s = time.perf_counter() - started
        assert session is not None, "this triton has no interpreter hook"
        unchecked, checked = statistics.median(seconds[False]), statistics.median(seconds[True])
        report[name] = {
            "items": int(case.arrays["topk_ids"].size),
            "unchecked_s": round(unchecked, 4),
            "checked_s": round(checked, 4),
            "ratio": round(checked / unchecked, 3),
            "accesses_checked": session.accesses,
            "check_s": round(session.seconds, 4),
            "checked_launch_s": round(launch_s, 4),
            "check_share": round(session.seconds / launch_s, 4),
        }
    print(json.dumps({"repeats": args.repeats, "cases": report}, indent=2))


if __name__ == "__main__":
    main()
