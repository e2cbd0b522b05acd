"""How often a schedule-dependent bug fires: one case, many launches, in this process.

Builds ep_scatter cases of a given E (every local expert holding ``--items`` items, one slot per
token) and runs the kernel ``--launches`` times under each ``num_warps`` and poison pattern,
counting launches whose outputs differ from the oracle (a crash ends a configuration). Prints
one JSON line per configuration. GPU only (the interpreter cannot race).

    PYTHONPATH=. python3 benchmarks/race_rate.py --experts 64 256 --num-warps 4 8 --launches 500
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from moefuzz.execute.perturb import Perturbation
from moefuzz.runtime.worker import CaseRunner
from moefuzz_targets.ep_scatter.strategy import make_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel", default="bug-stale-start-loc")
    parser.add_argument("--experts", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--num-warps", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--poisons", nargs="+", default=["default", "random"])
    parser.add_argument("--items", type=int, default=1)
    parser.add_argument("--stress", action="store_true", help="side-stream memory stress during each launch")
    parser.add_argument("--launches", type=int, default=500)
    args = parser.parse_args()
    runner = CaseRunner("ep_scatter", args.kernel, "cuda")
    for experts in args.experts:
        recv_topk = np.repeat(np.arange(experts, dtype=np.int32), args.items)[:, None]
        case = make_case(recv_topk, experts, 128, "bf16", seed=0)
        for num_warps in args.num_warps:
            for poison in args.poisons:
                plan = [
                    Perturbation({"num_warps": num_warps}, poison, seed, args.stress) for seed in range(args.launches)
                ]
                started = time.perf_counter()
                outcome = runner.run_plan(case, plan)
                print(
                    json.dumps(
                        {
                            "experts": experts,
                            "num_warps": num_warps,
                            "poison": poison,
                            "stress": args.stress,
                            "failures": outcome.rate.failures if outcome.failed else 0,
                            "runs": outcome.runs,
                            "signature": outcome.signature,
                            "seconds": round(time.perf_counter() - started, 2),
                        }
                    ),
                    flush=True,
                )
                if outcome.kind == "crash":
                    return


if __name__ == "__main__":
    main()
