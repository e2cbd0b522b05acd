"""The two baselines moefuzz is compared with: time to the first failure of a bug model.

- ``given``: a plain Hypothesis ``@given`` test of the target's property, written the way an
  engine's test suite would: sizes drawn as integers, arrays drawn element by element
  (``hypothesis.extra.numpy.arrays``), the kernel, oracle and comparison called in this process
  (moefuzz's ``CaseRunner``, no isolation); at the first failure Hypothesis shrinks it, as it
  would in a test run.
- ``grid``: a pytest-style parameter grid shaped like the engines' own tests of that kernel
  (vLLM ``tests/kernels/moe``, SGLang ``test/srt``, FlashInfer ``tests``): their usual parameter
  lists, inputs made the way those tests make them (``torch.topk`` of random router scores,
  contiguous page tables...), each grid point once.

Each target's two baselines live in its folder (``moefuzz_targets/<target>/baselines.py``, a
:class:`~moefuzz_targets.shared.baselines.Baselines` each), collected by
:mod:`benchmarks.baselines.routing` and :mod:`benchmarks.baselines.paging`; this module runs
them. Both run in this process: a crash ends a baseline, as it would end a test run. A CUDA
crash also breaks this process's device context for good, so the trials after it continue in a
new process (the CLI re-executes itself); every row carries its process id, and a trial run in a
process an earlier trial crashed would be void (``benchmarks/report.py`` leaves such rows out).
For every trial the driver records Magma's levels from :mod:`benchmarks.bug_models`: reached (a
case took the bug's path), triggered (a case met the bug's condition), detected (a failure was
reported), each with the seconds to it.

    PYTHONPATH=. python3 -m benchmarks.baselines --target three_step_sort --kernel bug-duplicate-topk \\
        --baseline given --trials 10 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from moefuzz.model.case import Case
from moefuzz_targets.shared.baselines import Baselines

__all__ = ["Baselines", "all_baselines", "main", "run_given", "run_grid"]


def all_baselines() -> dict[str, Baselines]:
    """Every target's baselines, by target name."""
    from benchmarks.baselines import paging, routing

    return {b.target: b for b in (*routing.BASELINES, *paging.BASELINES)}


class _BudgetSpent(BaseException):
    """Ends a ``@given`` run: a BaseException, so Hypothesis neither catches nor shrinks it."""


class _Trial:
    """Magma's levels of one trial, with the seconds since its start."""

    def __init__(self, bug: Any, size: Callable[[Case], tuple[int, ...]]) -> None:
        self.bug, self.size = bug, size
        self.started = time.perf_counter()
        self.result: dict[str, Any] = {"reached": False, "triggered": False, "detected": False, "cases": 0}
        self.shrunk: Case | None = None

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    def see(self, case: Case) -> None:
        result = self.result
        result["cases"] += 1
        if self.bug is None:  # a throughput run of a correct kernel: no levels
            return
        for level in ("reached", "triggered"):
            if not result[level] and getattr(self.bug, level)(case):
                result[level], result[f"{level}_s"] = True, self.elapsed()

    def failed(self, case: Case, signature: str) -> None:
        result = self.result
        if not result["detected"]:
            result.update(detected=True, detected_s=self.elapsed(), signature=signature)
            result["first_size"] = list(self.size(case))
        self.shrunk = case

    def close(self) -> dict[str, Any]:
        result = self.result
        result["seconds"] = self.elapsed()
        if self.shrunk is not None:
            result["shrunk_size"] = list(self.size(self.shrunk))
            result["shrink_s"] = round(result["seconds"] - result["detected_s"], 3)
        return result


def _run(runner: Any, bug: Any, case: Case, index: int) -> Any:
    """The outcome of ``case``: one launch, or for a race model the same perturbed launches a
    campaign gives it (``bug.perturb``: launch knobs, poisons, side-stream stress), so that a
    baseline is not blamed for a schedule it never tried."""
    perturb = getattr(bug, "perturb", 1)
    if perturb <= 1:
        return runner.run(case)
    from moefuzz.execute.perturb import plan_perturbations

    return runner.run_plan(case, plan_perturbations(runner.target.launch_knobs, perturb, index))


def run_given(baselines: Baselines, runner: Any, bug: Any, seconds: float, seed: int, **sizes: int) -> dict[str, Any]:
    """One trial of the plain ``@given`` baseline: until its first failure is shrunk, a crash,
    or ``seconds``. Returns the trial's levels (see the module doc; none for ``bug=None``),
    shrink time and sizes. ``sizes`` go to the strategy factory (``max_tokens=1024``)."""
    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed

    trial = _Trial(bug, runner.target.size)

    @hypothesis_seed(seed)
    @settings(
        max_examples=10**9,
        deadline=None,
        database=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
    )
    @given(baselines.given(**sizes))
    def test_property(case: Case) -> None:
        if time.perf_counter() - trial.started > seconds:
            raise _BudgetSpent
        trial.see(case)
        outcome = _run(runner, bug, case, trial.result["cases"])
        if outcome.failed:
            trial.failed(case, outcome.signature)
            if outcome.kind == "crash":  # the CUDA context is gone: the test run ends here
                trial.result["stopped"] = "crash"
                raise _BudgetSpent
            raise AssertionError(outcome.signature)

    try:
        test_property()
    except _BudgetSpent:
        pass
    except AssertionError:
        pass  # Hypothesis shrank the failure and raised it again: counted above
    except Exception as exc:  # Hypothesis gave up (Unsatisfiable, a flaky failure...)
        trial.result["stopped"] = type(exc).__name__
    return trial.close()


def run_grid(baselines: Baselines, runner: Any, bug: Any, seconds: float, seed: int) -> dict[str, Any]:
    """One trial of the grid baseline: every grid point once, or until a crash or ``seconds``.
    A grid does not shrink: the failing point is what a test run reports."""
    trial = _Trial(bug, runner.target.size)
    for case in baselines.grid(seed):
        if time.perf_counter() - trial.started > seconds:
            trial.result["stopped"] = "budget"
            break
        trial.see(case)
        outcome = _run(runner, bug, case, trial.result["cases"])
        if outcome.failed:
            if not trial.result["detected"]:
                trial.failed(case, outcome.signature)
            if outcome.kind == "crash":
                trial.result["stopped"] = "crash"
                break
    result = trial.close()
    result.pop("shrink_s", None)
    if "first_size" in result:
        result["shrunk_size"] = result["first_size"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="three_step_sort")
    parser.add_argument("--kernel", default="bug-duplicate-topk")
    parser.add_argument("--baseline", choices=["given", "grid"], required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()

    from moefuzz.runtime.worker import CaseRunner, choose_device

    device = choose_device(args.device)  # before triton is imported: it may set TRITON_INTERPRET
    from benchmarks.bug_models import bug_model

    bug = bug_model(args.target, args.kernel)
    baselines = all_baselines()[args.target]
    runner = CaseRunner(args.target, args.kernel, device)
    run = run_given if args.baseline == "given" else run_grid
    last = args.first_seed + args.trials
    for seed in range(args.first_seed, last):
        result = run(baselines, runner, bug, args.seconds, seed)
        row = {"baseline": args.baseline, "target": args.target, "kernel": args.kernel, "device": device}
        print(json.dumps({**row, "seed": seed, "pid": os.getpid(), **result}), flush=True)
        if result.get("stopped") == "crash" and device == "cuda" and seed + 1 < last:
            argv = [*sys.argv[1:], "--first-seed", str(seed + 1), "--trials", str(last - seed - 1)]
            os.execv(sys.executable, [sys.executable, "-m", "benchmarks.baselines", *argv])


if __name__ == "__main__":
    main()
