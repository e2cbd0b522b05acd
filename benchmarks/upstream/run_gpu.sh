#!/usr/bin/env bash
# Fuzz every upstream adapter at once on one GPU, each for BUDGET seconds, and leave a summary.
#
#   benchmarks/upstream/run_gpu.sh            # from the repository root, sources fetched
#
# Needs benchmarks/upstream/src/ (fetch.sh; the GPU host needs no network). Installs moefuzz
# editable without dependencies (torch, triton, hypothesis are the host's), runs the seven
# campaigns in parallel with moefuzz's defaults except --generators (the campaigns share the
# host's cores: GENERATORS each, default 1), then writes 4 files to $OUT (default ./upstream-out):
#   summary.md       the triage table (check.py table) and the environment
#   reports.json     every campaign's JSON report, in one list
#   findings.txt     `moefuzz show` of every finding saved
#   logs.tar.gz      each campaign's log and corpus (findings with their reproducers)
# SKIP_INSTALL=1 uses the moefuzz already importable. BUDGET (default 300 s) is the fuzzing
# budget; shrinking a finding may run past it (a quarter of the budget each), and each campaign
# is interrupted at BUDGET + 150 s at the latest (an interrupted campaign keeps its saved
# findings but writes no JSON report: see its log).
set -uo pipefail

BUDGET=${BUDGET:-300}
GENERATORS=${GENERATORS:-1}
OUT=${OUT:-$PWD/upstream-out}
WORK=$(mktemp -d)
mkdir -p "$OUT"

[ -n "${SKIP_INSTALL:-}" ] || pip install --no-build-isolation --no-deps -e . --quiet >"$WORK/install.log" 2>&1 || {
    cat "$WORK/install.log"
    exit 2
}

ADAPTERS=(
    "sglang_alloc_extend alloc_extend sglang-alloc-extend"
    "sglang_alloc_decode alloc_extend sglang-alloc-decode"
    "sglang_ep_scatter ep_scatter sglang-ep-scatter"
    "sglang_ep_gather ep_gather sglang-ep-gather"
    "sglang_kv_indices page_table sglang-kv-indices"
    "vllm_ep_scatter ep_scatter vllm-ep-scatter"
    "vllm_ep_gather ep_gather vllm-ep-gather"
)
for line in "${ADAPTERS[@]}"; do
    read -r adapter target kernel <<<"$line"
    timeout -s INT $((BUDGET + 150)) python3 -m moefuzz run --targets "benchmarks/upstream/$adapter.py" \
        --target "$target" --kernel "$kernel" --time "${BUDGET}s" --generators "$GENERATORS" \
        --corpus "$WORK/corpus/$adapter" --json "$WORK/$adapter.json" >"$WORK/$adapter.log" 2>&1 &
done
wait

{
    echo "# upstream adapters, ${BUDGET}s each, all at once"
    echo
    python3 -m benchmarks.upstream.check table "$WORK"
    echo
    echo '```'
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
    python3 -c "import sys, torch, triton; print('python', sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__)"
    for line in "${ADAPTERS[@]}"; do
        read -r adapter _ <<<"$line"
        echo "== $adapter"
        grep -v '^\[' "$WORK/$adapter.log" | tail -n 12
    done
    echo '```'
} >"$OUT/summary.md" 2>&1
python3 - "$WORK" "$OUT/reports.json" <<'PY'
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
docs = []
for path in sorted(work.glob("*.json")):
    try:
        docs.append({"file": path.name, **json.loads(path.read_text())})
    except (OSError, json.JSONDecodeError) as exc:
        docs.append({"file": path.name, "error": repr(exc)})
pathlib.Path(sys.argv[2]).write_text(json.dumps(docs, indent=1))
PY
mkdir -p "$WORK/show"
n=0
for dir in "$WORK"/corpus/*/*/*/; do  # every finding at once, 30 s each at most
    [ -f "$dir/finding.json" ] || continue
    adapter=$(basename "$(dirname "$(dirname "$dir")")")
    n=$((n + 1))
    { echo "==== $dir"; timeout 30 python3 -m moefuzz show --targets "benchmarks/upstream/$adapter.py" "$dir" 2>&1 |
        head -n 80; } >"$WORK/show/$(printf %03d $n).txt" &
done
wait
cat "$WORK"/show/*.txt >"$OUT/findings.txt" 2>/dev/null || echo "no findings" >"$OUT/findings.txt"
tar czf "$OUT/logs.tar.gz" -C "$WORK" . 2>/dev/null
ls -la "$OUT"
cat "$OUT/summary.md"
