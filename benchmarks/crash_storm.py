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
known crasher's. With ``--trace`` each storm also says where its recoveries went: seconds
retiring the crashed worker, starting new spares, waiting for the promoted spare to be ready,
and the first case on the new worker (the worker's own seconds for it, against the p50 of
every case's).

    PYTHONPATH=. python3 benchmarks/crash_storm.py --seconds 60
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class RecoveryTrace:
    """Times the parts of each worker replacement in this (the campaign's) process, by wrapping
    :class:`~moefuzz.runtime.isolation.Executor`'s methods; :meth:`summary` gives their p50/p95."""

    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {}
        self._patched: list[tuple[object, str, object]] = []

    def add(self, part: str, seconds: float) -> None:
        self.parts.setdefault(part, []).append(seconds)

    def __enter__(self) -> RecoveryTrace:
        from moefuzz.runtime import isolation, processes

        trace = self
        executor, worker = isolation.Executor, processes.WorkerProcess

        def timed(owner: type, name: str, part: str) -> None:
            original = getattr(owner, name)

            def wrapper(*args: object, **kwargs: object) -> object:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    trace.add(part, time.perf_counter() - started)

            self._patched.append((owner, name, original))
            setattr(owner, name, wrapper)

        timed(worker, "stop", "retire_old_s")
        timed(executor, "_spawn", "spawn_spare_s")
        timed(executor, "_replace", "replace_total_s")
        original_ready, original_collect = executor._finish_promotion, executor.collect

        def finish_promotion(self: isolation.Executor) -> bool:
            waiting = self._active is not None and self._active.environment is None
            ready = original_ready(self)
            if waiting and ready and self._failed_at is not None:
                trace.add("promoted_ready_after_s", time.perf_counter() - self._failed_at)
            return ready

        def collect(self: isolation.Executor) -> list:
            recovering, before = self._failed_at is not None, len(self.recovery_seconds)
            done = original_collect(self)
            for _, outcome in done:
                if outcome.kind in ("pass", "divergence"):
                    trace.add("case_worker_s", outcome.seconds)
            if recovering and len(self.recovery_seconds) > before and done:
                trace.add("first_case_worker_s", done[0][1].seconds)
            return done

        for name, function in (("_finish_promotion", finish_promotion), ("collect", collect)):
            self._patched.append((executor, name, getattr(executor, name)))
            setattr(executor, name, function)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)

    def summary(self) -> dict:
        from moefuzz.ui.reports import percentiles

        return {part: percentiles(values) for part, values in sorted(self.parts.items())}


def campaign(kernel: str, seconds: float, device: str, shrink_s: float, seed: int, trace: bool = False) -> dict:
    """Run one campaign of ``fake_sort`` with ``kernel``; its figures."""
    from moefuzz.engine.campaign import CampaignConfig, run_campaign
    from moefuzz.ui.reports import percentiles

    tracer = RecoveryTrace() if trace else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="moefuzz-storm-") as corpus, tracer:
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
        **({"recovery_parts": tracer.summary()} if isinstance(tracer, RecoveryTrace) else {}),
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
    parser.add_argument("--trace", action="store_true", help="time the parts of each storm's recoveries")
    args = parser.parse_args()
    os.environ["MOEFUZZ_TARGETS"] = str(ROOT / "tests" / "fake_targets.py")
    sys.path.insert(0, str(ROOT))

    calm = campaign("triton", args.seconds, args.device, args.shrink_time, args.seed)
    result: dict = {"benchmark": "crash_storm", "seconds": args.seconds, "crash_free": calm, "storms": []}
    for kernel in args.storms.split(","):
        storm = campaign(kernel, args.seconds, args.device, args.shrink_time, args.seed, args.trace)
        ratio = storm["steady_execs_per_s"] / calm["steady_execs_per_s"] if calm["steady_execs_per_s"] else None
        storm["throughput_ratio"] = None if ratio is None else round(ratio, 3)
        storm["recovery_p50_s"] = (storm["recovery_s"] or {}).get("p50")
        result["storms"].append(storm)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
