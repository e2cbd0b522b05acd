#!/usr/bin/env bash
# One GPU batch: correct kernels survive a long campaign (in the background,
# all at once) while bug models are hunted from empty corpora in the foreground.
#
#   SURVIVE="page_table ep_scatter@8" BUGS="page_table:bug-trailing-entries ep_scatter:bug-stale-start-loc@8" \
#     SURVIVE_TIME=10m BUG_TIME=45s OUT=results bash benchmarks/gpu_batch.sh start
#   OUT=results bash benchmarks/gpu_batch.sh collect      # waits for the survivors, tars corpora
#
# An entry's "@N" runs it with --perturb N (schedule perturbation, for races). RUNS seeds per
# bug model (default 5, "@N" entries use RACE_RUNS, default 10); PARALLEL bug models hunted at
# once (default 1). Writes $OUT/survive-<target>.log, $OUT/bugs.jsonl (one time_to_bug.py
# summary per line) and $OUT/corpora.tgz (every saved finding). Needs PYTHONPATH at the
# repository root.
set -uo pipefail
WORK=${WORK:-/tmp/moefuzz-batch}
mkdir -p "$WORK" "$OUT"
hunt() {  # hunt TARGET:KERNEL[@N]
  local spec=${1%@*} perturb=1 runs=${RUNS:-5}
  if [[ $1 == *@* ]]; then perturb=${1#*@}; runs=${RACE_RUNS:-10}; fi
  python3 benchmarks/time_to_bug.py --target "${spec%%:*}" --kernel "${spec#*:}" --runs "$runs" \
    --time "${BUG_TIME:-45s}" --shrink-time "${SHRINK_TIME:-120s}" --perturb "$perturb" \
    --keep "$WORK/bugs-${spec%%:*}-${spec#*:}" >"$WORK/hunt-${spec%%:*}-${spec#*:}.json" 2>>"$OUT/bugs.err"
  tail -c 400 "$WORK/hunt-${spec%%:*}-${spec#*:}.json"; echo
}
case "${1:-start}" in
start)
  for entry in ${SURVIVE:-}; do
    target=${entry%@*} perturb=1
    [[ $entry == *@* ]] && perturb=${entry#*@}
    setsid python3 -m moefuzz.ui.cli run --target "$target" --time "${SURVIVE_TIME:-10m}" --seed 100 \
      --perturb "$perturb" --corpus "$WORK/survive-$target" >"$WORK/survive-$target.log" 2>&1 </dev/null &
    echo $! >>"$WORK/survivor.pids"
  done
  running=0
  for spec in ${BUGS:-}; do
    hunt "$spec" &
    running=$((running + 1))
    if [ "$running" -ge "${PARALLEL:-1}" ]; then wait -n; running=$((running - 1)); fi
  done
  while [ "$running" -gt 0 ]; do wait -n; running=$((running - 1)); done
  cat "$WORK"/hunt-*.json >"$OUT/bugs.jsonl" 2>/dev/null
  ;;
collect)
  for pid in $(cat "$WORK/survivor.pids" 2>/dev/null); do
    while kill -0 "$pid" 2>/dev/null; do sleep 2; done
  done
  cp "$WORK"/survive-*.log "$OUT"/ 2>/dev/null
  cat "$WORK"/hunt-*.json >"$OUT/bugs.jsonl" 2>/dev/null
  for log in "$WORK"/survive-*.log; do tr '\r' '\n' <"$log" | grep -E '^\[' | tail -n 1; done
  tar czf "$OUT/corpora.tgz" --exclude='*.log' -C "$WORK" .
  ;;
esac
