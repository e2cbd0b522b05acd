#!/usr/bin/env bash
# One GPU batch for the device tool: correct kernels survive a long campaign (in the background,
# all at once) while bug models are hunted from empty corpora in the foreground, five seeds each.
#
#   SURVIVE="moe_align_block_size moe_permute" BUGS="moe_permute:bug-sentinel-minus-one" \
#     SURVIVE_TIME=10m BUG_TIME=45s OUT=/tmp/out bash benchmarks/gpu_batch.sh start
#   OUT=/tmp/out bash benchmarks/gpu_batch.sh collect      # waits for the survivors, tars corpora
#
# Writes $OUT/survive-<target>.log, $OUT/bugs.jsonl (one time_to_bug.py summary per line) and
# $OUT/corpora.tgz (every saved finding). Needs PYTHONPATH at the repository root. PERTURB=N
# runs every campaign with --perturb N (schedule perturbation, for races); RUNS=N seeds per bug.
set -uo pipefail
WORK=${WORK:-/tmp/moefuzz-batch}
mkdir -p "$WORK" "$OUT"
case "${1:-start}" in
start)
  for target in ${SURVIVE:-}; do
    setsid python3 -m moefuzz.cli run --target "$target" --time "${SURVIVE_TIME:-10m}" --seed 100 --perturb "${PERTURB:-1}" \
      --corpus "$WORK/survive-$target" >"$WORK/survive-$target.log" 2>&1 < /dev/null &
    echo $! >>"$WORK/survivor.pids"
  done
  for spec in ${BUGS:-}; do
    python3 benchmarks/time_to_bug.py --target "${spec%%:*}" --kernel "${spec#*:}" --runs "${RUNS:-5}" \
      --time "${BUG_TIME:-45s}" --shrink-time "${SHRINK_TIME:-120s}" --perturb "${PERTURB:-1}" --keep "$WORK/bugs-${spec%%:*}-${spec#*:}" \
      >>"$OUT/bugs.jsonl" 2>>"$OUT/bugs.err"
    tail -c 600 "$OUT/bugs.jsonl"; echo
  done
  ;;
collect)
  for pid in $(cat "$WORK/survivor.pids" 2>/dev/null); do
    while kill -0 "$pid" 2>/dev/null; do sleep 2; done
  done
  cp "$WORK"/survive-*.log "$OUT"/ 2>/dev/null
  tail -n 3 "$OUT"/survive-*.log
  tar czf "$OUT/corpora.tgz" --exclude='*.log' -C "$WORK" .
  ;;
esac
