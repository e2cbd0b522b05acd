#!/usr/bin/env bash
# The CUDA kernels on one GPU, in one device call of at most ~9 minutes (issue 16):
#
#   1 install (pip --no-build-isolation --no-deps -e .), build every CUDA kernel once, in parallel
#   2 start-up: a CUDA campaign on the warm build cache against a Triton campaign of the same target
#   3 the three correct CUDA kernels fuzzed at once in the background (SURVIVE_S seconds each)
#   4 each CUDA bug model hunted RUNS times from empty corpora with default settings (time to bug,
#     shrunk size beside the Triton twin's known minimum), JOBS campaigns of a model at a time
#   5 the load_inline example fuzzed; compute-sanitizer memcheck on one CUDA finding
#
#   OUT=/tmp/out bash benchmarks/cuda_gpu.sh
#
# Every step has a timeout and goes on when one fails. Files under $OUT (at most 8): summary.txt
# (every figure), hunts.jsonl (time_to_bug.py per bug model), survive.txt, startup.json,
# builds.json, example.txt, sanitize.txt, logs.tgz (logs and corpora).
set -uo pipefail
OUT=${OUT:-/tmp/moefuzz-cuda-out}
WORK=${WORK:-/tmp/moefuzz-cuda}
BUDGET_S=${BUDGET_S:-530}
SURVIVE_S=${SURVIVE_S:-240}
RUNS=${RUNS:-10}
JOBS=${JOBS:-2}
BUG_TIME=${BUG_TIME:-45s}
SHRINK_TIME=${SHRINK_TIME:-15s}
BUGS=${BUGS:-"three_step_sort:bug-cuda-first-match moe_align_block_size:bug-cuda-negative-id moe_align_block_size:bug-cuda-smem-experts page_table:bug-cuda-trailing-entries"}
mkdir -p "$OUT" "$WORK/logs"
export MOEFUZZ_CACHE=${MOEFUZZ_CACHE:-$WORK/cache}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
T0=$(date +%s)
left() { echo $((BUDGET_S - ($(date +%s) - T0))); }
say() { echo "[$(($(date +%s) - T0))s] $*" | tee -a "$OUT/summary.txt"; }

say "device: $(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader 2>&1 | head -1); nvcc: $(nvcc --version 2>&1 | tail -1); ninja: $(ninja --version 2>&1 || python3 -c 'import ninja' 2>&1 | tail -1)"
if [ -z "${SKIP_INSTALL:-}" ]; then
  timeout 150 pip install -q --no-build-isolation --no-deps -e . >"$WORK/logs/pip.log" 2>&1 || say "pip install failed (see logs)"
fi
python3 -c "import moefuzz, torch; print('moefuzz', moefuzz.__file__, 'torch', torch.__version__)" 2>&1 | tee -a "$OUT/summary.txt"

# 1 -- every CUDA build once, in parallel (the campaigns below hit the cache) ----------------------
timeout 300 python3 - >"$OUT/builds.json" 2>"$WORK/logs/builds.err" <<'EOF'
import importlib.util, json, sys, time
from concurrent.futures import ThreadPoolExecutor
from moefuzz.execute.cuda_build import prebuild
from moefuzz.model.registry import builtin_targets
builds = {f"{t.name}/{k.name}": k.build for t in builtin_targets().values() for k in t.kernels if k.build}
spec = importlib.util.spec_from_file_location("my_cuda_kernel", "examples/my_cuda_kernel.py")
example = importlib.util.module_from_spec(spec); sys.modules["my_cuda_kernel"] = example; spec.loader.exec_module(example)
builds["example/my-cuda-sort"] = example.BUILD
def one(item):
    name, build = item
    started = time.perf_counter()
    try:
        result = prebuild(build, name)
        return name, {"ok": True, "compile_s": round(result.seconds, 1), "cached": result.cached}
    except Exception as exc:
        return name, {"ok": False, "error": str(exc)[:2000], "wall_s": round(time.perf_counter() - started, 1)}
started = time.perf_counter()
with ThreadPoolExecutor(len(builds)) as pool:
    results = dict(pool.map(one, builds.items()))
results["_wall_s"] = round(time.perf_counter() - started, 1)
print(json.dumps(results, indent=1))
EOF
say "builds: $(python3 -c "import json;d=json.load(open('$OUT/builds.json'));print({k:(v if k=='_wall_s' else (v.get('compile_s') if v['ok'] else 'FAILED')) for k,v in d.items()})" 2>&1)"

# 2 -- start-up on warm caches (the CUDA build above, Triton's after its first run), 2 s each -------
for kernel in triton cuda triton cuda; do
  timeout 90 python3 -m moefuzz run --target three_step_sort --kernel $kernel --time 2s --seed 1 \
    --corpus "$WORK/startup-$kernel" --json "$WORK/startup-$kernel.json" >"$WORK/logs/startup-$kernel.log" 2>&1
  python3 -c "import json;r=json.load(open('$WORK/startup-$kernel.json'));print(json.dumps({'kernel':'$kernel','startup_s':r['startup_s'],'first_case_s':r['first_case_s'],'cuda_build':r.get('cuda_build'),'execs_per_s':r['execs_per_s']}))" >>"$OUT/startup.json" 2>>"$WORK/logs/startup.err"
done
say "start-up (last two rows: warm): $(tail -n 2 "$OUT/startup.json" | tr '\n' ' ')"

# 3 -- the correct CUDA kernels, all at once, in the background -------------------------------------
for target in three_step_sort moe_align_block_size page_table; do
  timeout $((SURVIVE_S + 120)) python3 -m moefuzz run --target $target --kernel cuda --time "${SURVIVE_S}s" \
    --seed 100 --generators 2 --corpus "$WORK/survive-$target" --json "$WORK/survive-$target.json" \
    >"$WORK/logs/survive-$target.log" 2>&1 </dev/null &
  echo $! >>"$WORK/survivor.pids"
done

# 4 -- the bug models from empty corpora, default settings -----------------------------------------
for spec in $BUGS; do
  target=${spec%%:*} kernel=${spec#*:}
  (timeout $(($(left) - 45 > 60 ? $(left) - 45 : 60)) python3 benchmarks/time_to_bug.py --target "$target" \
    --kernel "$kernel" --runs "$RUNS" --jobs "$JOBS" --time "$BUG_TIME" --shrink-time "$SHRINK_TIME" \
    --keep "$WORK/hunt-$target-$kernel" >"$WORK/hunt-$target-$kernel.json" 2>"$WORK/logs/hunt-$target-$kernel.err"
   flock "$WORK/hunts.lock" sh -c "cat '$WORK/hunt-$target-$kernel.json' >>'$OUT/hunts.jsonl'" 2>/dev/null \
     || cat "$WORK/hunt-$target-$kernel.json" >>"$OUT/hunts.jsonl"
   say "hunt $kernel ended") &
done
# 5 -- the example, meanwhile ------------------------------------------------------------------------
timeout 120 python3 -m moefuzz run --targets examples/my_cuda_kernel.py --target three_step_sort \
  --kernel my-cuda-sort --time 45s --generators 2 --corpus "$WORK/example" >"$WORK/logs/example.log" 2>&1
echo "exit $?" >"$OUT/example.txt"
tr '\r' '\n' <"$WORK/logs/example.log" | grep -v '^\s*$' | tail -n 12 >>"$OUT/example.txt"
say "example: $(head -1 "$OUT/example.txt")"
wait $(jobs -p | grep -v -x -f "$WORK/survivor.pids" 2>/dev/null) 2>/dev/null
python3 - "$OUT/hunts.jsonl" >>"$OUT/summary.txt" 2>&1 <<'EOF'
import json, sys
from benchmarks.bug_models import bug_model
TWINS = {"bug-cuda-first-match": "bug-duplicate-topk", "bug-cuda-negative-id": "bug-negative-id",
         "bug-cuda-smem-experts": None, "bug-cuda-trailing-entries": "bug-trailing-entries"}
from moefuzz.model.registry import get_target
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    s = json.loads(line)
    twin = TWINS.get(s["kernel"])
    minimum = None
    if twin:
        try:
            minimum = list(get_target(s["target"]).size(bug_model(s["target"], twin).minimum_case))
        except KeyError:
            pass
    sizes = [r["shrunk_size"] for r in s["runs"] if r["found"]]
    print(f"hunt {s['target']}/{s['kernel']}: found {s['found']}, median time to bug {s['median_time_to_first_s']} s "
          f"(max {s['max_time_to_first_s']}), median shrink {s['median_shrink_s']} s; signatures "
          f"{sorted({x for r in s['runs'] for x in r['signatures']})}; shrunk sizes {sizes}; "
          f"Triton twin {twin} minimum {minimum}; at or below it: {sum(1 for z in sizes if minimum and z and z <= minimum)}")
EOF
say "hunts done"

# 5b -- compute-sanitizer memcheck on the first CUDA crash (else divergence) found -------------------
finding=$( (grep -l '"kind": "crash"' "$WORK"/hunt-*/seed-*/*/*/finding.json 2>/dev/null; ls "$WORK"/hunt-*/seed-*/*/*/finding.json 2>/dev/null) | head -1)
if [ -n "$finding" ] && [ "$(left)" -gt 60 ]; then
  timeout $(($(left) - 30)) python3 -m moefuzz sanitize "$(dirname "$finding")" --tool memcheck >"$OUT/sanitize.txt" 2>&1
  echo "exit $? for $(dirname "$finding")" >>"$OUT/sanitize.txt"
  say "sanitize: $(grep -m1 memcheck "$OUT/sanitize.txt")"
fi

# collect the survivors ---------------------------------------------------------------------------
for pid in $(cat "$WORK/survivor.pids" 2>/dev/null); do
  while kill -0 "$pid" 2>/dev/null && [ "$(left)" -gt 5 ]; do sleep 2; done
done
for target in three_step_sort moe_align_block_size page_table; do
  python3 -c "import json;r=json.load(open('$WORK/survive-$target.json'));print('$target/cuda', 'execs', r['execs'], 'execs/s', r['execs_per_s'], 'findings', [f['signature'] for f in r['findings']], 'restarts', r['worker_restarts'], 'build', r.get('cuda_build'))" >>"$OUT/survive.txt" 2>/dev/null \
    || { echo "$target/cuda: no report; the log ends:"; tr '\r' '\n' <"$WORK/logs/survive-$target.log" | grep -v '^\s*$' | tail -n 2; } >>"$OUT/survive.txt"
done
cat "$OUT/survive.txt" >>"$OUT/summary.txt"
say "done"
tar czf "$OUT/logs.tgz" -C "$WORK" --exclude=cache . 2>/dev/null
exit 0
