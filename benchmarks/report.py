"""The tables of docs/benchmarks.md from one GPU session's results (``benchmarks/gpu_bench.sh``).

Reads, from the results folder: ``throughput.jsonl`` (benchmarks/throughput.py), ``hunts.jsonl``
(benchmarks/time_to_bug.py, one line a bug model), ``baselines.jsonl`` (benchmarks/baselines, one
line a trial), ``replacement.json`` (benchmarks/worker_replacement.py) and ``survive-*.json``
(``moefuzz run --json`` of the survivors). Prints Markdown; whatever is missing is said, not
invented.

    python3 benchmarks/report.py /tmp/results >docs/benchmarks-tables.md
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

#: The speed goals of the benchmarks issue, for three_step_sort at T <= 1024 on a GPU.
GOAL_EXECS_PER_S = 2000
GOAL_FLOOR_RATIO = 0.6
GOAL_RECOVERY_P50_S = 0.5
GOAL_MEDIAN_TIME_TO_BUG_S = 10.0


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"


def _runs(row: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    """The measurements of ``mode`` in a throughput row (``campaign_d`` is a list of drawer
    counts since 2026-12-01's second run, one dict before)."""
    value = row.get(mode)
    if not value:
        return []
    return list(value) if isinstance(value, list) else [value]


def _rate(row: dict[str, Any], mode: str, with_count: str = "") -> str:
    runs = _runs(row, mode)
    if not runs:
        return "-"
    return ", ".join(
        f"{r['execs_per_s']:,.0f}" + (f" ({r[with_count]} {with_count})" if with_count and with_count in r else "")
        for r in runs
    )


def best_campaign(row: dict[str, Any]) -> float | None:
    """The fastest moefuzz campaign of a throughput row, execs/s."""
    rates = [r["execs_per_s"] for mode in CAMPAIGN_MODES for r in _runs(row, mode)]
    return max(rates) if rates else None


#: The campaign measurements of benchmarks/throughput.py.
CAMPAIGN_MODES = ("campaign", "campaign_1", "campaign_n", "campaign_d")


def throughput_table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| target | max T | floor | kernel + compare alone | moefuzz, defaults | 1 worker, no drawers "
        "| N workers, no drawers | 1 worker + drawers | plain `@given` | defaults / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        floor = (row.get("floor") or {}).get("execs_per_s")
        default = (row.get("campaign") or {}).get("execs_per_s")
        ratio = f"{default / floor:.2f}" if floor and default else "-"
        defaults = _rate(row, "campaign")
        if row.get("campaign"):
            defaults += f" ({row['campaign'].get('workers')} w, {row['campaign'].get('drawers')} d)"
        out.append(
            f"| {row['target']} | {row['max_tokens']} | {_rate(row, 'floor')} | {_rate(row, 'floor_kernel')} "
            f"| {defaults} | {_rate(row, 'campaign_1')} | {_rate(row, 'campaign_n', 'workers')} "
            f"| {_rate(row, 'campaign_d', 'drawers')} | {_rate(row, 'given')} | {ratio} |"
        )
    return out


def hunt_rows(hunts: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(h["target"], h["kernel"]): h for h in hunts}


def level_counts(runs: list[dict[str, Any]], tool: str) -> tuple[int, int, int]:
    if tool == "moefuzz":
        return (
            sum(r.get("reached_index") is not None for r in runs),
            sum(r.get("triggered_index") is not None for r in runs),
            sum(bool(r.get("found")) for r in runs),
        )
    return (
        sum(bool(r.get("reached")) for r in runs),
        sum(bool(r.get("triggered")) for r in runs),
        sum(bool(r.get("detected")) for r in runs),
    )


def valid_trials(baselines: list[dict[str, Any]]) -> tuple[dict[tuple[str, str, str], list[dict[str, Any]]], int]:
    """Baseline trials by (target, kernel, baseline), less those void: run on a GPU in a process
    that an earlier trial's crash had left without a device context (rows without ``pid`` came
    from one process a baseline); returns them and how many were left out."""
    by_trial: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    crashed: set[tuple[Any, ...]] = set()
    void = 0
    for row in sorted(baselines, key=lambda r: (r["target"], r["kernel"], r["baseline"], r["seed"])):
        key = (row["target"], row["kernel"], row["baseline"])
        process = (*key, row.get("pid"))
        if process in crashed:
            void += 1
            continue
        if row.get("stopped") == "crash" and row.get("device") == "cuda":
            crashed.add(process)
        by_trial[key].append(row)
    return by_trial, void


def time_to_bug_table(hunts: list[dict[str, Any]], baselines: list[dict[str, Any]]) -> list[str]:
    by_trial, _ = valid_trials(baselines)
    out = [
        "| bug model | tool | trials | reached | triggered | detected | time to first: median (min-max) "
        "| median shrink | shrunk size (known minimum) |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    keys = sorted({(h["target"], h["kernel"]) for h in hunts} | {k[:2] for k in by_trial})
    hunts_by_key = hunt_rows(hunts)
    for target, kernel in keys:
        name = f"{target} `{kernel}`"
        hunt = hunts_by_key.get((target, kernel))
        if hunt:
            runs = hunt["runs"]
            reached, triggered, detected = level_counts(runs, "moefuzz")
            times = [r["time_to_first_s"] for r in runs if r.get("found")]
            shrinks = [r["shrink_s"] for r in runs if r.get("found") and r.get("shrink_s") is not None]
            sizes = [tuple(r["shrunk_size"]) for r in runs if r.get("shrunk_size")]
            minimum = next((r.get("minimum_size") for r in runs if r.get("minimum_size")), None)
            at_min = sum(bool(r.get("at_minimum")) for r in runs)
            size = f"{min(sizes)} at best, {at_min}/{len(sizes)} at the minimum" if sizes else "-"
            if minimum:
                size += f" ({tuple(minimum)})"
            out.append(
                f"| {name} | moefuzz | {len(runs)} | {reached} | {triggered} | {detected} | {spread(times)} "
                f"| {fmt(statistics.median(shrinks) if shrinks else None, 1, ' s')} | {size} |"
            )
        for baseline in ("given", "grid"):
            trials = by_trial.get((target, kernel, baseline), [])
            if not trials:
                continue
            reached, triggered, detected = level_counts(trials, baseline)
            times = [t["detected_s"] for t in trials if t.get("detected")]
            shrinks = [t["shrink_s"] for t in trials if t.get("shrink_s") is not None]
            sizes = [tuple(t["shrunk_size"]) for t in trials if t.get("shrunk_size")]
            label = "plain `@given`" if baseline == "given" else "engines' grid"
            out.append(
                f"| {name} | {label} | {len(trials)} | {reached} | {triggered} | {detected} | {spread(times)} "
                f"| {fmt(statistics.median(shrinks) if shrinks else None, 1, ' s')} "
                f"| {(str(min(sizes)) + ' at best') if sizes else '-'} |"
            )
    return out


def recovery_lines(replacement: dict[str, Any] | None, hunts: list[dict[str, Any]]) -> list[str]:
    out = ["| source | crashes | p50 | p95 |", "|---|---:|---:|---:|"]
    if replacement:
        r = replacement["recovery_s"]
        out.append(
            f"| worker_replacement.py ({replacement['rounds']} x {', '.join(replacement['crash_signatures'])}, "
            f"{replacement['pause_s']:g} s apart) | {r['n']} | {fmt(r['p50'], 3, ' s')} | {fmt(r['p95'], 3, ' s')} |"
        )
    for hunt in hunts:
        recoveries = [r["worker_recovery_s"] for r in hunt["runs"] if (r.get("worker_recovery_s") or {}).get("n")]
        if recoveries:
            n = sum(r["n"] for r in recoveries)
            p50 = statistics.median(r["p50"] for r in recoveries)
            p95 = max(r["p95"] for r in recoveries)
            out.append(
                f"| campaigns of {hunt['target']} `{hunt['kernel']}` (median of p50s, max of p95s) "
                f"| {n} | {p50:.3f} s | {p95:.3f} s |"
            )
    return out


def survival_lines(folder: Path) -> list[str]:
    out = ["| target | seconds | executions | execs/s | workers | findings |", "|---|---:|---:|---:|---:|---|"]
    for path in sorted(folder.glob("survive-*.json")):
        report = json.loads(path.read_text())
        findings = [f["signature"] for f in report.get("findings", [])] + [k["id"] for k in report.get("known", [])]
        out.append(
            f"| {report['target']} | {report['duration_s']:.0f} | {report['execs']:,} | {report['execs_per_s']:.1f} "
            f"| {report.get('workers', 1)} | {', '.join(findings) or '0'} |"
        )
    return out


def goals(
    throughput: list[dict[str, Any]], replacement: dict[str, Any] | None, hunts: list[dict[str, Any]]
) -> list[str]:
    out = ["| goal | measured | met |", "|---|---|---|"]
    sorts = [
        row
        for row in throughput
        if row["target"] == "three_step_sort" and row["max_tokens"] <= 1024 and row.get("floor") and best_campaign(row)
    ]
    sort = sorts[-1] if sorts else None  # the latest with a floor and a campaign measured in the same call
    if sort:
        best = best_campaign(sort) or 0.0
        floor = sort["floor"]["execs_per_s"]
        default = (sort.get("campaign") or {}).get("execs_per_s")
        measured = default if default is not None else best
        out.append(
            f"| three_step_sort T <= 1024: >= {GOAL_EXECS_PER_S:,} execs/s | {measured:,.0f} "
            f"{'(defaults)' if default is not None else '(best)'} | {'yes' if measured >= GOAL_EXECS_PER_S else 'no'} |"
        )
        out.append(
            f"| ... and >= {GOAL_FLOOR_RATIO:.0%} of the in-process floor | {measured / floor:.2f} of "
            f"{floor:,.0f} | {'yes' if measured / floor >= GOAL_FLOOR_RATIO else 'no'} |"
        )
    if replacement and replacement["recovery_s"]["p50"] is not None:
        p50 = replacement["recovery_s"]["p50"]
        out.append(
            f"| worker replacement p50 <= {GOAL_RECOVERY_P50_S} s | {p50:.3f} s | "
            f"{'yes' if p50 <= GOAL_RECOVERY_P50_S else 'no'} |"
        )
    from benchmarks.bug_models import all_bug_models

    models = all_bug_models()
    for hunt in hunts:
        model = models.get(f"{hunt['target']}:{hunt['kernel']}")
        if model is None or model.race:
            continue
        runs = hunt["runs"]
        times = [r["time_to_first_s"] for r in runs if r.get("found")]
        median = statistics.median(times) if times else None
        met = len(times) == len(runs) >= 10 and median is not None and median <= GOAL_MEDIAN_TIME_TO_BUG_S
        out.append(
            f"| {hunt['target']} `{hunt['kernel']}`: found 10/10, median <= {GOAL_MEDIAN_TIME_TO_BUG_S:g} s "
            f"| {len(times)}/{len(runs)}, median {fmt(median, 1, ' s')} | {'yes' if met else 'no'} |"
        )
    return out


def main() -> None:
    folder = Path(sys.argv[1])
    throughput = read_lines(folder / "throughput.jsonl")
    hunts = read_lines(folder / "hunts.jsonl")
    baselines = read_lines(folder / "baselines.jsonl")
    replacement_rows = read_lines(folder / "replacement.json")
    replacement = replacement_rows[0] if replacement_rows else None
    sections = [
        ("Goals", goals(throughput, replacement, hunts)),
        ("Throughput (correct kernels, execs/s)", throughput_table(throughput)),
        ("Time to bug (Magma levels, from empty corpora)", time_to_bug_table(hunts, baselines)),
        ("Worker replacement: crash to the next executed case", recovery_lines(replacement, hunts)),
        ("Correct kernels survive", survival_lines(folder)),
    ]
    for title, lines in sections:
        print(f"### {title}\n")
        print("\n".join(lines) if len(lines) > 2 else "(not measured in this session)")
        print()
    _, void = valid_trials(baselines)
    if void:
        print(f"{void} baseline trials left out: they ran after a CUDA crash in the same process.\n")


if __name__ == "__main__":
    main()
