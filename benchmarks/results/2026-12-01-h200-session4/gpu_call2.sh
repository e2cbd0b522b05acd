#!/usr/bin/env bash
# Session 4, call 2 (untracked; deleted after the session).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=.
python3 -m pip install -q --no-build-isolation --no-deps -e . >/dev/null 2>&1
W=/tmp/s4b; mkdir -p $W
nvidia-smi --query-gpu=timestamp,clocks.sm,utilization.gpu,power.draw --format=csv -lms 500 >$W/gpu-clocks.csv 2>&1 &
SMI=$!
# 1. the worker alone, with and without 8 CPU burners beside it
for round in 1 2; do
  for burn in 0 8; do
    pids=(); for i in $(seq 1 $burn); do python3 -c 'while True: pass' & pids+=($!); done
    echo -n "{\"burners\": $burn, \"probe\": " >>$W/burners.jsonl
    timeout 60 python3 benchmarks/pipeline_probe.py --modes worker --seconds 5 >>$W/burners.jsonl 2>>$W/burners.err || echo null >>$W/burners.jsonl
    sed -i '$ s/$/}/' $W/burners.jsonl
    if [ $burn -gt 0 ]; then kill "${pids[@]}"; fi
  done
done
echo "burners done $SECONDS"
# 2. campaign A/B of the copy back, plain / pinned alternating, 20 s each
for mode in plain pinned plain pinned; do
  echo -n "{\"copy\": \"$mode\", \"at\": $SECONDS, \"probe\": " >>$W/campaign-ab.jsonl
  MOEFUZZ_COPY_BACK=$mode timeout 60 python3 benchmarks/pipeline_probe.py --modes campaign --campaign-seconds 20 >>$W/campaign-ab.jsonl 2>>$W/campaign-ab.err || echo null >>$W/campaign-ab.jsonl
  sed -i '$ s/$/}/' $W/campaign-ab.jsonl
done
echo "campaign-ab done $SECONDS"
# 3. two workers on the one GPU, 8 drawers
for n in 2; do
  echo -n "{\"workers\": $n, \"at\": $SECONDS, \"probe\": " >>$W/workers.jsonl
  timeout 60 python3 benchmarks/pipeline_probe.py --modes campaign --campaign-seconds 20 --workers $n >>$W/workers.jsonl 2>>$W/workers.err || echo null >>$W/workers.jsonl
  sed -i '$ s/$/}/' $W/workers.jsonl
done
echo "workers done $SECONDS"
kill $SMI
# 4. time to bug after change 10 (drawers fed on ready), 3 models
MODELS="three_step_sort:bug-duplicate-topk alloc_extend:bug-page-past-capacity" \
  JOBS=3 WORK=$W OUT=$W timeout 170 bash benchmarks/gpu_bench.sh hunts
echo "hunts done $SECONDS"
tar czf $OUT/s4-call2.tgz -C $W --exclude='original-*.npz' --exclude='hunt-*' .
cat $W/burners.jsonl $W/campaign-ab.jsonl $W/workers.jsonl $W/hunts.jsonl > $OUT/summary.jsonl
