"""Where one case's time goes, step by step, in one process: the profile behind docs/benchmarks.md.

For a target's correct kernel, on cases of its strategy drawn beforehand, the mean milliseconds a
case of each step a campaign takes somewhere (drawer, worker or parent):

- ``draw``: bytes -> case through Hypothesis (``CaseSource.from_bytes``) and the contract's check;
- ``oracle``: the plain-torch oracle on the CPU (:func:`moefuzz.execute.oracle_outputs`);
- ``launch``: :func:`moefuzz.execute.launch_kernel`: inputs to the device, poisoned outputs, the
  kernel's launches and the copies back (which wait for the device);
- ``compare``: the contract's comparison (numpy);
- ``pipe``: pickling and unpickling the case with its oracle outputs (what crosses each pipe).

Also the ``launch`` split by a ``cProfile`` of it (the top entries by internal time). Prints one
JSON object a pass over the cases.

``--passes N`` times the same cases N times over (one JSON object each).

    PYTHONPATH=. python3 benchmarks/case_profile.py --target three_step_sort --max-tokens 1024
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="three_step_sort")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--passes", type=int, default=1, help="passes over the same cases")
    args = parser.parse_args()
    from moefuzz.runtime.worker import CaseRunner, choose_device

    device = choose_device(args.device)
    from moefuzz.engine.generate import CaseSource, byte_stream, draw_checked
    from moefuzz.execute.inprocess import launch_kernel
    from moefuzz.model.registry import get_target
    from moefuzz.model.target import Limits

    target = get_target(args.target)
    runner = CaseRunner(args.target, None, device)
    source = CaseSource(target.strategy(Limits(max_tokens=args.max_tokens)), 0)
    draws: list[float] = []
    cases, buffers = [], byte_stream(args.seed)
    while len(cases) < args.cases:
        started = time.perf_counter()
        case, error = draw_checked(source, target.check, next(buffers))
        draws.append(time.perf_counter() - started)
        if case is not None and not error:
            cases.append(case)
    for case in cases[:100]:  # warm-up: compiles
        launch_kernel(runner.kernel, target.output_specs(case), case, runner.device)
    draw = {
        "draw_mean_ms": round(1e3 * statistics.fmean(draws), 4),
        "draw_median_ms": round(1e3 * statistics.median(draws), 4),
    }
    for number in range(args.passes):
        print(json.dumps({"pass": number + 1, **draw, **one_pass(runner, target, cases, device, args)}), flush=True)


def one_pass(runner, target, cases, device, args) -> dict:
    """Every step of every case once, timed; the launch under ``cProfile``."""
    import torch

    from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
    from moefuzz.runtime.messages import prepared_case, prepared_payload

    steps: dict[str, list[float]] = {"oracle": [], "launch": [], "compare": [], "pipe": []}
    profile = cProfile.Profile()
    for case in cases:
        started = time.perf_counter()
        expected = oracle_outputs(runner.oracle, case)
        steps["oracle"].append(time.perf_counter() - started)
        started = time.perf_counter()
        profile.enable()
        outputs = launch_kernel(runner.kernel, target.output_specs(case), case, runner.device)
        profile.disable()
        steps["launch"].append(time.perf_counter() - started)
        started = time.perf_counter()
        mismatch = target.compare(case, outputs, expected)
        steps["compare"].append(time.perf_counter() - started)
        if mismatch is not None:
            raise SystemExit(f"correct kernel diverged: {mismatch.headline()}")
        started = time.perf_counter()
        prepared_case(prepared_payload(case, expected))
        steps["pipe"].append(time.perf_counter() - started)
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(12)
    return {
        "target": args.target,
        "max_tokens": args.max_tokens,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (Triton interpreter)",
        "cases": len(cases),
        "mean_ms": {name: round(1e3 * statistics.fmean(values), 4) for name, values in steps.items()},
        "median_ms": {name: round(1e3 * statistics.median(values), 4) for name, values in steps.items()},
        "launch_profile": [line for line in text.getvalue().splitlines() if line.strip()][:24],
    }


if __name__ == "__main__":
    main()
