#!/usr/bin/env bash
# Session 4, call 3 (untracked; deleted after the session): 2 workers (the new default) against 1.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=.
python3 -m pip install -q --no-build-isolation --no-deps -e . >/dev/null 2>&1
W=/tmp/s4c; mkdir -p $W
for n in default 1 default 1 default; do
  if [ $n = default ]; then flag=""; else flag="--workers $n"; fi
  echo -n "{\"workers\": \"$n\", \"at\": $SECONDS, \"probe\": " >>$W/workers-ab.jsonl
  timeout 45 python3 benchmarks/pipeline_probe.py --modes campaign --campaign-seconds 20 $flag >>$W/workers-ab.jsonl 2>>$W/workers-ab.err || echo null >>$W/workers-ab.jsonl
  sed -i '$ s/$/}/' $W/workers-ab.jsonl
  echo "$n done $SECONDS"
done
MODELS="three_step_sort:bug-duplicate-topk" JOBS=3 WORK=$W OUT=$W timeout 55 bash benchmarks/gpu_bench.sh hunts
echo "hunts done $SECONDS"
cat $W/workers-ab.jsonl $W/hunts.jsonl > $OUT/summary.jsonl
tar czf $OUT/s4-call3.tgz -C $W --exclude='original-*.npz' --exclude='hunt-*' .
