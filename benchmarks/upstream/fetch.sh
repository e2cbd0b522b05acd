#!/usr/bin/env bash
# Fetch the upstream kernel sources the adapters of benchmarks/upstream/ fuzz: pinned wheels from
# PyPI, of which only the named .py files are kept, under benchmarks/upstream/src/ (git-ignored,
# never committed). Needs network access; the fuzzing machine only needs the extracted files.
#
#   benchmarks/upstream/fetch.sh            # from the repository root
#
# Each file's sha256 is checked, so a re-fetch fuzzes exactly the code docs/upstream.md names.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEST="${MOEFUZZ_UPSTREAM_DIR:-$HERE/src}"
WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT

# project==version | directory under src/ | wheel platform | then pairs: file kept, its sha256
fetch() {
    local requirement=$1 dir=$2 platform=$3
    shift 3
    local files=() sums=()
    while [ $# -gt 0 ]; do files+=("$1"); sums+=("$2"); shift 2; done
    pip download "$requirement" --no-deps --only-binary=:all: --python-version 3.11 \
        --platform "$platform" -d "$WHEELS/$dir" --quiet
    mkdir -p "$DEST/$dir"
    python3 - "$WHEELS/$dir" "$DEST/$dir" "${files[@]}" <<'PY'
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
dest = pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as archive:
    for name in sys.argv[3:]:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(name))
PY
    for i in "${!files[@]}"; do
        echo "${sums[$i]}  $DEST/$dir/${files[$i]}" | sha256sum --check --quiet
    done
    echo "$requirement: ${#files[@]} files in $DEST/$dir"
}

fetch sglang==0.5.23 sglang-0.5.23 manylinux_2_34_x86_64 \
    sglang/kernels/ops/memory/allocator.py 9afa04af577797f88f7b41e97d52ff23112904a6b1ecf7e4f6bd7575201b5495 \
    sglang/kernels/ops/moe/ep_moe_kernels.py 12b40eca67e7d8857adddc2c44470c5d1d37314a4ead9b0a17fe2eba27913ae2 \
    sglang/kernels/ops/attention/kv_indices.py a5555872c01c096acf4322268fe59241e31963d5f5751851d9b1f4ad0a00f620

fetch vllm==0.34.0 vllm-0.34.0 manylinux_2_28_x86_64 \
    vllm/model_executor/layers/fused_moe/deep_gemm_utils.py d6d2876b5f150d642cb6b132e259efa39596e4cf4da2ebde1e5f1f6a93b681e0
