"""Triage the upstream adapters' campaigns, and measure how much of each contract a kernel takes.

    python3 -m benchmarks.upstream.check table DIR       # DIR: the JSON reports of run_gpu.sh
    python3 -m benchmarks.upstream.check domains [--cases 200] [--device cuda]
    python3 -m benchmarks.upstream.check sample ADAPTER [--cases 200]   # in-domain cases, in-process

``table`` prints one markdown row per campaign report (``*.json`` in DIR): adapter, kernel, cases
run, cases/s, cases skipped outside the kernel's domain (where moefuzz reports it), worker
restarts, and each finding with its failure label and its triage from :data:`TRIAGE` ("TODO"
for a finding nobody has triaged yet). ``domains`` draws cases from each adapter's target
strategy (no kernel runs) and prints the share inside the adapter's ``domain``: how much of the
fuzzing a kernel actually receives while moefuzz cannot steer the strategy into a domain.
``sample`` draws cases of the adapter's target until ``--cases`` are inside its domain, runs
the kernel on each in this process (the Triton interpreter on a CPU: set ``TRITON_INTERPRET=1``)
and compares it with the oracle: the in-domain differential test a campaign dilutes while the
strategy is not steered; it prints the first failing case.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moefuzz.model.case import Case

#: Adapter modules of benchmarks/upstream, with the target each fuzzes.
ADAPTERS = {
    "sglang_alloc_extend": "alloc_extend",
    "sglang_alloc_decode": "alloc_extend",
    "sglang_ep_scatter": "ep_scatter",
    "sglang_ep_gather": "ep_gather",
    "sglang_kv_indices": "page_table",
    "vllm_ep_scatter": "ep_scatter",
    "vllm_ep_gather": "ep_gather",
}

#: (kernel, failure label, a substring of its message, triage): "real kernel bug: ...", "domain:
#: ..." (a kernel domain narrower than the contract, now declared), "harness, fixed: ...".
TRIAGE = (
    (
        "sglang-ep-scatter",
        "error:InterpreterError",
        "arange's end argument",
        "domain: bf16 with H < 128 builds tl.arange(0, next_power_of_2(H // 128) = 0); H >= 128 declared",
    ),
    (
        "sglang-ep-scatter",
        "error:InterpreterError",
        "has no attribute 'to'",
        "harness, fixed: a range() loop variable is a Python int under TRITON_INTERPRET=1, so upstream's "
        "token_id_int32.to(tl.int64) raised; the loader gives it the .to() of a compiled one (give_loop_vars_to)",
    ),
    (
        "sglang-ep-gather",
        "error:InterpreterError",
        "has no attribute 'to'",
        "harness, fixed: a range() loop variable is a Python int under TRITON_INTERPRET=1, so upstream's "
        "cur_token_int32.to(tl.int64) raised; the loader gives it the .to() of a compiled one (give_loop_vars_to)",
    ),
)


def triage_of(kernel: str, label: str, message: str) -> str:
    """The :data:`TRIAGE` entry of a finding, or ``TODO``."""
    for entry_kernel, entry_label, needle, triage in TRIAGE:
        if (entry_kernel, entry_label) == (kernel, label) and needle in message:
            return triage
    return "TODO"


def reports(directory: Path) -> list[dict]:
    """The campaign reports (``format: moefuzz-report``) among ``directory/*.json``."""
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(document, dict) and document.get("format") == "moefuzz-report":
            document["_file"] = path.name
            found.append(document)
    return found


def table(documents: list[dict]) -> str:
    """A markdown table: one row per finding (one row for a campaign without any)."""
    lines = [
        "| report | kernel | cases | cases/s | skipped outside domain | restarts | finding | triage |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for doc in documents:
        kernel = doc.get("kernel", "?")
        head = (
            f"| {doc['_file']} | {doc.get('target', '?')}/{kernel} | {doc.get('execs', '?')} | "
            f"{doc.get('execs_per_s', '?')} | {doc.get('skipped_outside_domain', 'n/a')} | "
            f"{doc.get('worker_restarts', '?')}"
        )
        findings = doc.get("findings", [])
        known = doc.get("known", [])
        if not findings and not known:
            lines.append(f"{head} | none | |")
        for finding in findings:
            label = finding.get("signature", "?")
            size = finding.get("size")
            message = str(finding.get("message") or "").split("\n", 1)[0]
            triage = triage_of(kernel, label, message)
            message = message[:120]
            lines.append(f"{head} | `{label}` size {size}: {message} | {triage} |")
        for entry in known if isinstance(known, list) else []:
            lines.append(f"{head} | known `{entry.get('id')}` x{entry.get('count')} | (as above) |")
    return "\n".join(lines)


def domain_shares(cases: int, device: str) -> list[tuple[str, int, int]]:
    """(adapter, cases drawn, cases inside its domain) for each adapter, from ``cases`` draws of
    its target's strategy at ``device``'s size limits (seeded, no kernel runs)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from moefuzz.model.registry import get_target
    from moefuzz.model.target import default_limits

    rows = []
    for adapter, target_name in ADAPTERS.items():
        domain = importlib.import_module(f"benchmarks.upstream.{adapter}").domain
        drawn: list[bool] = []

        @hypothesis_seed(0)
        @settings(
            max_examples=cases,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(get_target(target_name).strategy(default_limits(device)))
        def draw(case: object) -> None:
            drawn.append(bool(domain(case)))  # noqa: B023 (the loop's own list and predicate)

        draw()
        rows.append((adapter, len(drawn), sum(drawn)))
    return rows


class _Enough(Exception):
    """Stops drawing once enough in-domain cases ran."""


def sample(adapter: str, cases: int, device: str, max_tokens: int | None = None) -> int:
    """Run ``adapter``'s kernel on ``cases`` in-domain cases against the oracle; print a summary
    and the first failure; return the number of failing cases. ``max_tokens`` caps the drawn
    token count below ``device``'s limits."""
    import torch
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
    from moefuzz.model.registry import get_target
    from moefuzz.model.target import default_limits, resolve_entry

    module = importlib.import_module(f"benchmarks.upstream.{adapter}")
    target = get_target(ADAPTERS[adapter])
    kernel = resolve_entry(module.TARGET.kernels[-1].entry)
    oracle = resolve_entry(target.oracle)
    torch_device = torch.device(device)
    counts = {"drawn": 0, "run": 0, "failed": 0}
    first: list[str] = []

    limits = default_limits(device)
    if max_tokens is not None:
        limits = dataclasses.replace(limits, max_tokens=max_tokens)

    @hypothesis_seed(0)
    @settings(
        max_examples=50 * cases,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy(limits))
    def run(case: Case) -> None:
        counts["drawn"] += 1
        if counts["run"] >= cases:
            raise _Enough
        if not module.domain(case):
            return
        counts["run"] += 1
        try:
            tri = launch_kernel(kernel, target.output_specs(case), case, torch_device)
            mismatch = target.compare(case, tri, oracle_outputs(oracle, case))
            failure = None if mismatch is None else mismatch.headline()
        except Exception as exc:  # any kernel error is a failure to report
            failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if failure is not None:
            counts["failed"] += 1
            if not first:
                first.append(f"{failure}\n{case.describe()}")

    try:
        run()
    except _Enough:
        pass
    print(f"{adapter}: {counts['run']} in-domain cases run ({counts['drawn']} drawn), {counts['failed']} failed")
    if first:
        print(first[0][:4000])
    return counts["failed"]


def main(argv: list[str] | None = None) -> int:
    """Command line entry; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    table_parser = commands.add_parser("table", help="triage table of a directory of JSON reports")
    table_parser.add_argument("directory", type=Path)
    domains_parser = commands.add_parser("domains", help="share of each target's cases inside each kernel's domain")
    domains_parser.add_argument("--cases", type=int, default=200)
    domains_parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    sample_parser = commands.add_parser("sample", help="run one adapter's kernel on in-domain cases, in-process")
    sample_parser.add_argument("adapter", choices=sorted(ADAPTERS))
    sample_parser.add_argument("--cases", type=int, default=200)
    sample_parser.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="cap on drawn tokens (default: the device's limit; 256 in the interpreter, where a "
        "2,048-token EP case with an odd H takes minutes)",
    )
    args = parser.parse_args(argv)
    if args.command == "sample":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        max_tokens = args.max_tokens if args.max_tokens is not None or device == "cuda" else 256
        return 1 if sample(args.adapter, args.cases, device, max_tokens) else 0
    if args.command == "table":
        documents = reports(args.directory)
        if not documents:
            print(f"no moefuzz JSON report in {args.directory}", file=sys.stderr)
            return 1
        print(table(documents))
        return 0
    print("| adapter | cases drawn | inside the domain |\n|---|---:|---:|")
    for adapter, drawn, inside in domain_shares(args.cases, args.device):
        print(f"| {adapter} | {drawn} | {inside} ({100 * inside / max(drawn, 1):.0f} %) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
