#!/usr/bin/env bash
# Ray against native on one GPU (issue 19): the same three_step_sort campaign (correct kernel,
# T <= 1024, 20 s) through `--ray local` and natively, 3 interleaved pairs after a warm-up
# campaign (benchmarks/ray_throughput.py), about 4-5 minutes in all. For a GPU host without Ray
# and without network access, `pack` prepares the wheels in .whl beforehand: a cp312 ray wheel
# trimmed to ~38 MB (Java jars, RLlib, Serve, Tune, Train, Data and the dashboard's web client
# removed: a campaign uses none of them) and jsonschema's packages; `run` installs them offline.
#
#   bash benchmarks/ray_gpu.sh pack          # with network, from the repository root: fills .whl/
#   OUT=/tmp/out bash benchmarks/ray_gpu.sh run   # on the GPU host, from the repository root:
#                                            # $OUT/ray_gpu.jsonl, the last line the summary
set -uo pipefail
RAY_VERSION=${RAY_VERSION:-2.60.0}
case "${1:-run}" in
pack)
  rm -rf .whl && mkdir -p .whl
  platforms="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
  get() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    $platforms -d .whl "$@"; }
  get "ray==$RAY_VERSION" jsonschema jsonschema-specifications referencing rpds-py || exit 1
  wheel=$(ls .whl/ray-*.whl)
  work=$(mktemp -d)
  (cd "$work" && unzip -q "$OLDPWD/$wheel") || exit 1
  drop='ray/(jars|rllib|serve|tune|train|data|llm|dashboard/client/build)/'
  (cd "$work" && rm -rf ray/jars ray/rllib ray/serve ray/tune ray/train ray/data ray/llm ray/dashboard/client/build &&
    record=$(ls -d ray-*.dist-info)/RECORD && grep -vE "^$drop" "$record" >"$record.new" && mv "$record.new" "$record" &&
    rm -f "$OLDPWD/$wheel" && zip -q -r -9 "$OLDPWD/$wheel" .) || exit 1
  rm -rf "$work"
  du -sh .whl; ls -la .whl
  ;;
run)
  set -e
  : "${OUT:?}"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
  nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
  python3 -c 'import ray; print("ray", ray.__version__)'
  python3 benchmarks/ray_throughput.py --target three_step_sort --seconds "${SECONDS_EACH:-20}" \
    --max-tokens 1024 --pairs "${PAIRS:-3}" --warmup "${WARMUP:-15}" | tee "$OUT/ray_gpu.jsonl"
  ;;
*)
  echo "usage: bash benchmarks/ray_gpu.sh pack|run" >&2
  exit 2
  ;;
esac
