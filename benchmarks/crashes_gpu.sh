#!/usr/bin/env bash
# Crash handling on one GPU, in one device call of at most ~8 minutes (issues 15 and 16):
#
#   1 install (pip --no-build-isolation --no-deps -e .), build the two CUDA bug models used below
#   2 bug-cuda-smem-experts hunted RUNS times from empty corpora (time_to_bug.py): its failed
#     launch must come out as crash:launch-failure
#   3 meanwhile, the flaky illegal memory access of fake_sort (benchmarks/flaky_crash.py): found,
#     saved once, shrunk to its hand minimum
#   4 meanwhile, a page_table bug-cuda-trailing-entries finding, then `moefuzz sanitize` on it:
#     compute-sanitizer must name the .cu file and line
#
#   OUT=/tmp/out bash benchmarks/crashes_gpu.sh
#
# Files under $OUT: summary.txt, smem-hunts.json, flaky.jsonl, sanitize.txt, logs.tgz (logs and
# corpora, the worker logs of every finding included).
set -uo pipefail
OUT=${OUT:-/tmp/moefuzz-crashes-out}
WORK=${WORK:-/tmp/moefuzz-crashes}
BUDGET_S=${BUDGET_S:-470}
RUNS=${RUNS:-10}
JOBS=${JOBS:-5}
mkdir -p "$OUT" "$WORK/logs"
export MOEFUZZ_CACHE=${MOEFUZZ_CACHE:-$WORK/cache} PYTHONUNBUFFERED=1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
T0=$(date +%s)
left() { echo $((BUDGET_S - ($(date +%s) - T0))); }
say() { echo "[$(($(date +%s) - T0))s] $*" | tee -a "$OUT/summary.txt"; }

say "device: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>&1 | head -1); $(compute-sanitizer --version 2>&1 | grep -m1 -i version)"
timeout 150 pip install -q --no-build-isolation --no-deps -e . >"$WORK/logs/pip.log" 2>&1 || say "pip install failed"

# 1 -- the two builds, in parallel ----------------------------------------------------------------
timeout 240 python3 - >>"$OUT/summary.txt" 2>"$WORK/logs/builds.err" <<'EOF'
from concurrent.futures import ThreadPoolExecutor
from moefuzz.execute.cuda_build import prebuild
from moefuzz.model.registry import get_target
kernels = [("moe_align_block_size", "bug-cuda-smem-experts"), ("page_table", "bug-cuda-trailing-entries")]
def one(pair):
    spec = get_target(pair[0]).kernel(pair[1])
    try:
        return f"{pair[1]}: built in {prebuild(spec.build, spec.name).seconds:.1f} s"
    except Exception as exc:
        return f"{pair[1]}: build FAILED {exc}"
with ThreadPoolExecutor(2) as pool:
    print("builds:", list(pool.map(one, kernels)))
EOF
say "builds done"

# 2 -- the shared-memory model, RUNS hunts ----------------------------------------------------------
(timeout $(($(left) - 40)) python3 benchmarks/time_to_bug.py --target moe_align_block_size \
  --kernel bug-cuda-smem-experts --runs "$RUNS" --jobs "$JOBS" --time 45s --shrink-time 30s \
  --keep "$WORK/smem" >"$OUT/smem-hunts.json" 2>"$WORK/logs/smem.err"; say "smem hunts ended") &
# 3 -- the flaky crash -------------------------------------------------------------------------------
(timeout $(($(left) - 40)) python3 benchmarks/flaky_crash.py --runs 4 --jobs 4 --time 30s --shrink-time 150s \
  >"$OUT/flaky.jsonl" 2>"$WORK/logs/flaky.err"; say "flaky hunts ended") &
# 4 -- a CUDA crash, then compute-sanitizer on it ------------------------------------------------------
timeout 120 python3 -m moefuzz run --target page_table --kernel bug-cuda-trailing-entries --time 60s \
  --max-findings 1 --shrink-time 30s --corpus "$WORK/sanitize-corpus" >"$WORK/logs/sanitize-run.log" 2>&1
finding=$(ls -d "$WORK"/sanitize-corpus/*/*/ 2>/dev/null | head -1)
if [ -n "$finding" ]; then
  timeout $(($(left) - 30)) python3 -m moefuzz sanitize "$finding" --tool memcheck >"$OUT/sanitize.txt" 2>&1
  echo "exit $? for $finding" >>"$OUT/sanitize.txt"
  say "sanitize: $(grep -m1 -E '\.cu:[0-9]+' "$OUT/sanitize.txt")"
else
  say "sanitize: no finding to sanitize"; tail -n 5 "$WORK/logs/sanitize-run.log" >>"$OUT/summary.txt"
fi
wait
python3 - "$OUT/smem-hunts.json" >>"$OUT/summary.txt" 2>&1 <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"smem hunts: found {s['found']}, median time to bug {s['median_time_to_first_s']} s, signatures "
      f"{sorted({x for r in s['runs'] for x in r['signatures']})}, shrunk sizes {[r['shrunk_size'] for r in s['runs']]}")
EOF
tail -n 1 "$OUT/flaky.jsonl" >>"$OUT/summary.txt"
say "done"
tar czf "$OUT/logs.tgz" -C "$WORK" --exclude=cache . 2>/dev/null
exit 0
