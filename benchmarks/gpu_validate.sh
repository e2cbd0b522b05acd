#!/usr/bin/env bash
# The GPU validation of docs/benchmarks.md and docs/upstream.md, in two calls that follow each other
# on one warm machine (the background campaigns of `start` outlive its call):
#
#   OUT=results bash benchmarks/gpu_validate.sh start     # ~6 min of steps: background 10-minute campaigns
#        (upstream adapters, correct CUDA kernels) and the CUDA tests, then the other GPU tests
#        and CUDA bug-model hunts
#   OUT=results bash benchmarks/gpu_validate.sh collect   # ~6 min: Ray against native, the domain-edge
#        and crash-storm figures, then waits for the background work and packs everything
#
# Needs benchmarks/upstream/src (benchmarks/upstream/fetch.sh) and, for Ray, .whl
# (benchmarks/ray_gpu.sh pack). Each step has a timeout and the next one runs when it fails.
# $OUT gets summary.txt (every step's headline) and at most 6 more files.
set -uo pipefail
: "${OUT:?set OUT}"
W=${GPU_WORK:-/tmp/moefuzz-gpu}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
T0=$(date +%s)
say() { echo "[$(($(date +%s) - T0))s] $*" | tee -a "$W/summary.txt"; }
hunt() {  # target kernel runs time shrink-time -> one JSON line in hunts.jsonl
  timeout "${6:-300}" python3 benchmarks/time_to_bug.py --target "$1" --kernel "$2" --runs "$3" --jobs 3 \
    --time "$4" --shrink-time "$5" --keep "$W/hunt-$1-$2" >"$W/hunt-$1-$2.json" 2>"$W/logs/hunt-$1-$2.err"
  python3 - "$W/hunt-$1-$2.json" >>"$W/summary.txt" 2>&1 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
runs = d["runs"]
print(f"hunt {d['target']}:{d['kernel']}: found {d['found']}, median {d['median_time_to_first_s']} s "
      f"(max {d['max_time_to_first_s']}), median shrink {d['median_shrink_s']} s, "
      f"signatures {sorted({s for r in runs for s in r.get('signatures') or []})}, "
      f"shrunk {[r.get('shrunk_size') for r in runs]}")
EOF
  cat "$W/hunt-$1-$2.json" >>"$W/hunts.jsonl" 2>/dev/null
}

case "${1:-}" in
start)
  rm -rf "$W" && mkdir -p "$W/logs" "$OUT"
  timeout 150 pip install -q --no-build-isolation --no-deps -e . >"$W/logs/pip.log" 2>&1 || say "pip install failed"
  say "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
  # Background, 10 minutes each: the upstream adapters, the correct CUDA kernels.
  (cd "$PWD" && SKIP_INSTALL=1 BUDGET=${UPSTREAM_S:-600} OUT="$W/upstream" setsid bash benchmarks/upstream/run_gpu.sh \
     >"$W/logs/upstream.log" 2>&1 </dev/null &)
  # --time counts fuzzing only: the CUDA build (~90 s on a fresh machine) and the first worker
  # come before it, hence the timeout's margin.
  for target in three_step_sort moe_align_block_size page_table; do
    (setsid timeout $((${SURVIVE_S:-600} + 300)) python3 -m moefuzz run --target $target --kernel cuda \
       --time "${SURVIVE_S:-600}s" --seed 100 --generators 2 --corpus "$W/survive-$target" \
       --json "$W/survive-$target.json" >"$W/logs/survive-$target.log" 2>&1 </dev/null &)
  done
  # The CUDA tests build six extensions (~90 s each on a fresh machine): in the background too.
  (setsid timeout 900 python3 -m pytest -q -rfs --tb=line -p no:cacheprovider tests/test_cuda_kernels.py \
     >"$W/logs/pytest-cuda.log" 2>&1 </dev/null &)
  say "background campaigns started"
  hunt moe_align_block_size bug-cuda-smem-experts 10 45s 30s 330 &
  hunt page_table bug-cuda-trailing-entries 10 45s 30s 330 &
  timeout 300 python3 -m pytest -q -rf --tb=line -p no:cacheprovider tests/test_triton_helpers.py tests/targets/three_step_sort/test_three_step_sort_kernels.py \
    tests/targets/moe_permute/test_moe_permute_kernels.py tests/targets/ep_scatter/test_ep_scatter_kernels.py tests/targets/ep_gather/test_ep_gather_kernels.py \
    tests/targets/page_table/test_page_table_kernels.py tests/targets/paged_decode/test_paged_decode_kernels.py tests/targets/alloc_extend/test_alloc_extend_kernels.py \
    tests/targets/moe_align_block_size/test_moe_align_block_size_kernels.py tests/test_execute_gpu.py \
    tests/test_corpus_hostile.py tests/test_repo_corpus.py tests/test_flaky_crash.py tests/test_pipeline.py \
    tests/targets/stream_overlap/test_stream_overlap_gpu.py tests/targets/ep_scatter/test_ep_scatter_race_gpu.py >"$W/logs/pytest-gpu.log" 2>&1
  say "GPU tests: $(tail -n 1 "$W/logs/pytest-gpu.log")"
  grep -E "^(FAILED|ERROR)" "$W/logs/pytest-gpu.log" | head -n 20 >>"$W/summary.txt"
  wait
  say "start done"
  cp "$W/summary.txt" "$OUT/summary-start.txt"
  ;;
collect)
  mkdir -p "$W/logs" "$OUT"
  # Ray against native, the domain-edge hunt and the crash storm at once (Ray's pairs interleave,
  # so both of its modes share the same load).
  if [ -d .whl ]; then
    (OUT="$W" PAIRS=${PAIRS:-2} timeout 300 bash benchmarks/ray_gpu.sh run >"$W/logs/ray.log" 2>&1
     say "ray: $(tail -n 1 "$W/ray_gpu.jsonl" 2>/dev/null)") &
  fi
  if python3 -m moefuzz targets 2>/dev/null | grep -q "bug-wide-local-experts"; then
    hunt ep_scatter bug-wide-local-experts 10 90s 30s 280 &
  fi
  if [ -f benchmarks/crash_storm.py ]; then
    (timeout 200 python3 benchmarks/crash_storm.py --seconds 45 --device cuda >"$W/crash_storm.json" 2>"$W/logs/crash_storm.err"
     say "crash storm: $(tail -n 1 "$W/crash_storm.json")") &
  fi
  # Crash labels of real illegal accesses (the first CUDA error, not the abort that follows it).
  for m in "paged_decode bug-trailing-pages" "moe_permute bug-sentinel-minus-one-oob" "ep_scatter bug-stale-start-loc"; do
    set -- $m
    (timeout 150 python3 -m moefuzz run --target $1 --kernel $2 --time 60s --shrink-time 20s --generators 1 \
       --corpus "$W/labels" --json "$W/labels-$2.json" >"$W/logs/labels-$2.log" 2>&1
     say "labels $1:$2: exit $? $(grep -ho '"signature": "[^"]*"' "$W/labels-$2.json" 2>/dev/null | sort | uniq -c | tr '\n' ' ')") &
  done
  wait
  # SIGTERM on the GPU: exit 143, reports written, no compute process left.
  timeout -s TERM 30 python3 -m moefuzz run --target moe_permute --kernel bug-sentinel-minus-one-oob --time 5m \
    --corpus "$W/sigterm" --json "$W/sigterm.json" >"$W/logs/sigterm.log" 2>&1
  status=$?
  sleep 3
  say "SIGTERM: exit $status, report $(test -s "$W/sigterm.json" && echo written || echo missing), moefuzz processes left $(pgrep -fc 'moefuzz.*sigterm' || true)"
  # Wait for the background campaigns (they end ~10.5 min after `start` began), then pack.
  for _ in $(seq 1 ${WAIT_S:-300}); do
    pgrep -f "moefuzz run" >/dev/null || pgrep -f "upstream/run_gpu.sh" >/dev/null \
      || pgrep -f "pytest.*test_cuda_kernels" >/dev/null || break
    sleep 1
  done
  sleep 5
  say "CUDA tests: $(tail -n 1 "$W/logs/pytest-cuda.log")"
  grep -E "^(FAILED|ERROR)" "$W/logs/pytest-cuda.log" | head -n 20 >>"$W/summary.txt"
  for target in three_step_sort moe_align_block_size page_table; do
    python3 -c "import json;r=json.load(open('$W/survive-$target.json'));print('survive $target/cuda', r['duration_s'], 's execs', r['execs'], 'execs/s', r['execs_per_s'], 'findings', [f['signature'] for f in r['findings']], 'restarts', r['worker_restarts'])" \
      >>"$W/summary.txt" 2>&1 || say "survive $target: no report (see logs)"
  done
  cp "$W/summary.txt" "$OUT/summary.txt"
  cp "$W/upstream/summary.md" "$OUT/upstream-summary.md" 2>/dev/null
  cp "$W/upstream/findings.txt" "$OUT/upstream-findings.txt" 2>/dev/null
  cp "$W/hunts.jsonl" "$OUT/hunts.jsonl" 2>/dev/null
  cp "$W/ray_gpu.jsonl" "$OUT/ray_gpu.jsonl" 2>/dev/null
  tar czf "$OUT/all.tgz" -C "$W" --exclude='*.so' --exclude='*.o' . 2>/dev/null
  cat "$OUT/summary.txt"
  ;;
*)
  echo "usage: OUT=DIR bash benchmarks/gpu_validate.sh start|collect" >&2
  exit 2
  ;;
esac
