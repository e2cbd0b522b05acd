#!/usr/bin/env bash
# Session 4, call 1 (untracked; deleted after the session): GPU tests, copy-mode A/B in one
# process, worker-alone A/B (inbox decode: ab_base = the tree before it), campaign noise probe.
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-build-isolation --no-deps -e . >/dev/null 2>&1
W=/tmp/s4; mkdir -p $W
{ lscpu | head -20; nvidia-smi -L; nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw --format=csv; } >$W/machine.txt 2>&1
PYTHONPATH=. timeout 120 python3 -m pytest -q tests/test_execute_gpu.py >$W/gpu-tests.txt 2>&1
echo "tests rc=$?"; tail -2 $W/gpu-tests.txt
PYTHONPATH=. COPY_MODES=plain,pinned,staged,plain,pinned,staged WORK=$W OUT=$W timeout 150 bash benchmarks/gpu_bench.sh copy-ab
echo "copy-ab done $SECONDS"
for round in 1 2; do
  for tree in base new; do
    for mode in pinned staged; do
      if [ $tree = base ]; then pp=ab_base:.; else pp=.; fi
      echo -n "{\"tree\": \"$tree\", \"copy\": \"$mode\", \"probe\": " >>$W/worker-ab.jsonl
      PYTHONPATH=$pp MOEFUZZ_COPY_BACK=$mode timeout 60 python3 benchmarks/pipeline_probe.py --modes worker --seconds 5 >>$W/worker-ab.jsonl 2>>$W/worker-ab.err || echo null >>$W/worker-ab.jsonl
      sed -i '$ s/$/}/' $W/worker-ab.jsonl
    done
  done
done
echo "worker-ab done $SECONDS"
for mode in pinned staged pinned staged; do
  echo -n "{\"copy\": \"$mode\", \"probe\": " >>$W/noise.jsonl
  PYTHONPATH=. MOEFUZZ_COPY_BACK=$mode timeout 150 python3 benchmarks/pipeline_probe.py --modes campaign --repeats 2 --campaign-seconds 20 >>$W/noise.jsonl 2>>$W/noise.err || echo null >>$W/noise.jsonl
  sed -i '$ s/$/}/' $W/noise.jsonl
  echo "noise $mode done $SECONDS"
done
tar czf $OUT/s4-call1.tgz -C $W .
cat $W/copy-ab.jsonl $W/worker-ab.jsonl $W/noise.jsonl > $OUT/summary.jsonl
