#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md in one GPU session, in two calls of a GPU machine:
#
#   OUT=results bash benchmarks/gpu_bench.sh start     # background: survivors, bug hunts, baselines
#   OUT=results bash benchmarks/gpu_bench.sh collect   # waits for them, then throughput and
#                                                       # worker replacement alone on the GPU
#   python3 benchmarks/report.py RESULTS_DIR >docs/benchmarks.md
#
# start launches, each in its own process session so that it outlives the call:
#   - the 10-minute survival of every correct kernel in SURVIVE (default: paged_decode);
#   - time to bug, moefuzz: TRIALS campaigns (default 10) of every bug model of benchmarks/bug_models,
#     from empty corpora, each ending at its first shrunk finding (--max-findings 1), JOBS at a time;
#     race models with their --perturb;
#   - time to bug, baselines: the plain @given test and the engines-style grid of every bug model,
#     TRIALS trials each (benchmarks/baselines).
# collect waits (at most WAIT seconds) for all of it, then measures throughput of every target and
# worker replacement with nothing else running, and copies every result under $OUT. Results are
# JSON lines in $WORK (default /tmp/moefuzz-bench): survive-*.log, hunts.jsonl, baselines.jsonl,
# throughput.jsonl, replacement.json. Needs the repository root as the working directory.
#
# With nothing else on the GPU (the figures of 2026-12-01, second run), in two calls:
#
#   bash benchmarks/gpu_bench.sh throughput; bash benchmarks/gpu_bench.sh hunt-start
#   WAIT=560 bash benchmarks/gpu_bench.sh wait; bash benchmarks/gpu_bench.sh pack
set -uo pipefail
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
WORK=${WORK:-/tmp/moefuzz-bench}
TRIALS=${TRIALS:-10}
JOBS=${JOBS:-10}  # campaigns of one bug model at a time, each with HUNT_WORKERS workers (default moefuzz's;
                  # every hunt up to the fourth run passed 1)
mkdir -p "$WORK" "$OUT"

bug_models() {  # target kernel perturb, one line a model; MODELS="target:kernel ..." picks some, in order
  MODELS=${MODELS:-} python3 -c 'import os
from benchmarks.bug_models import all_bug_models
models = all_bug_models()
for key in os.environ["MODELS"].split() or models:
    m = models[key]
    print(m.target, m.kernel, m.perturb)'
}

hunts() {
  bug_models | while read -r target kernel perturb; do
    python3 benchmarks/time_to_bug.py --target "$target" --kernel "$kernel" --runs "$TRIALS" --jobs "$JOBS" \
      ${HUNT_WORKERS:+--workers "$HUNT_WORKERS"} ${HUNT_DRAWERS:+--drawers "$HUNT_DRAWERS"} \
      --time "${HUNT_TIME:-45s}" --shrink-time "${SHRINK_TIME:-30s}" \
      --perturb "$perturb" --keep "$WORK/hunt-$target-$kernel" >>"$WORK/hunts.jsonl" 2>>"$WORK/hunts.err"
  done
}

baselines() {
  local pids=()
  while read -r target kernel _; do
    for baseline in given grid; do
      python3 -m benchmarks.baselines --target "$target" --kernel "$kernel" --baseline "$baseline" \
        --trials "$TRIALS" --seconds "${BASELINE_TIME:-15}" >"$WORK/baseline-$baseline-$target-$kernel.jsonl" \
        2>>"$WORK/baselines.err" &
      pids+=($!)
      if [ "${#pids[@]}" -ge "${BASELINE_JOBS:-8}" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
    done
  done < <(bug_models)
  wait
  cat "$WORK"/baseline-*.jsonl >"$WORK/baselines.jsonl"
}

case "${1:-start}" in
start)
  rm -f "$WORK"/*.jsonl "$WORK"/*.pids
  for target in ${SURVIVE:-paged_decode}; do
    setsid python3 -m moefuzz.ui.cli run --target "$target" --time "${SURVIVE_TIME:-10m}" --seed 100 \
      --workers "${SURVIVE_WORKERS:-2}" --corpus "$WORK/survive-$target" --json "$WORK/survive-$target.json" \
      >"$WORK/survive-$target.log" 2>&1 </dev/null &
    echo $! >>"$WORK/background.pids"
  done
  setsid bash "$0" hunts </dev/null >"$WORK/hunts.log" 2>&1 &
  echo $! >>"$WORK/background.pids"
  setsid bash "$0" baselines </dev/null >"$WORK/baselines.log" 2>&1 &
  echo $! >>"$WORK/background.pids"
  echo "started: $(cat "$WORK/background.pids" | tr '\n' ' ')"
  ;;
progress)  # one line: what has come in so far
  echo "hunts $(wc -l <"$WORK/hunts.jsonl" 2>/dev/null || echo 0) models; baseline files $(ls "$WORK"/baseline-*.jsonl 2>/dev/null | wc -l)," \
    "trials $(cat "$WORK"/baseline-*.jsonl 2>/dev/null | wc -l); load $(cut -d' ' -f1 /proc/loadavg)"
  for log in "$WORK"/survive-*.log; do [ -f "$log" ] && tr '\r' '\n' <"$log" | grep -E '^\[' | tail -n 1; done
  ;;
hunts) hunts ;;
throughput)  # alone on the GPU: three_step_sort at T <= 1024, every measurement; then TP_TARGETS
  python3 benchmarks/throughput.py --targets three_step_sort --max-tokens 1024 --seconds "${TP_TIME:-15}" \
    --drawers "${TP_DRAWERS:-4}" >>"$WORK/throughput.jsonl" 2>>"$WORK/throughput.err"
  if [ -n "${TP_TARGETS:-}" ]; then
    python3 benchmarks/throughput.py --targets "$TP_TARGETS" --seconds "${TP_OTHERS_TIME:-5}" \
      --modes "${TP_OTHERS_MODES:-floor,campaign,given}" >>"$WORK/throughput.jsonl" 2>>"$WORK/throughput.err"
  fi
  ;;
hunt-start)  # time to bug alone: the hunts in the background (then: wait, pack)
  rm -f "$WORK/hunts.jsonl" "$WORK/background.pids"
  setsid bash "$0" hunts </dev/null >"$WORK/hunts.log" 2>&1 &
  echo $! >>"$WORK/background.pids"
  ;;
pack)  # what comes back (at most 8 files): one archive (originals of findings left out: large), the summaries
  tar czf "$OUT/work.tgz" -C "$WORK" --exclude='original-*.npz' . 2>/dev/null
  cat "$WORK/throughput.jsonl" "$WORK/replacement.json" "$WORK/hunts.jsonl" >"$OUT/summary.jsonl" 2>/dev/null
  ;;
baselines) baselines ;;
wait)
  deadline=$((SECONDS + ${WAIT:-540}))
  for pid in $(cat "$WORK/background.pids" 2>/dev/null); do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 5; done
  done
  ;;
collect)
  bash "$0" wait
  if [ -z "${SKIP_SORT:-}" ]; then
    python3 benchmarks/throughput.py --targets three_step_sort --max-tokens 1024 --seconds "${TP_TIME:-20}" \
      >>"$WORK/throughput.jsonl" 2>>"$WORK/throughput.err"
    python3 benchmarks/worker_replacement.py --rounds "${ROUNDS:-30}" --pause 2 >"$WORK/replacement.json" \
      2>"$WORK/replacement.err"
  fi
  if [ -n "${TP_TARGETS:-}" ]; then  # the other targets' throughput, e.g. TP_TARGETS=all
    python3 benchmarks/throughput.py --targets "$TP_TARGETS" --seconds "${TP_OTHERS_TIME:-5}" \
      >>"$WORK/throughput.jsonl" 2>>"$WORK/throughput.err"
  fi
  bash "$0" pack
  ;;
esac
