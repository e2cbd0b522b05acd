"""The ``moefuzz`` command line: run, targets, replay, shrink, show, sanitize, changed.

Every command that takes a target or a finding takes ``--targets PATH_OR_MODULE`` (plugins, see
:mod:`moefuzz.model.plugin`); ``run`` and ``replay`` take ``--json`` and ``--junit-xml`` (see
:mod:`moefuzz.ui.reports`). Arguments are checked before anything heavy is imported. Every moefuzz
error becomes one line on stderr and exit status 2; ``run`` exits 1 when it met failures,
``replay`` when a reproducer still fails.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from moefuzz.errors import MoefuzzError

F = TypeVar("F", bound=Callable[..., Any])

DEVICES = click.Choice(["auto", "cuda", "cpu"])


def _one_line_errors(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MoefuzzError as exc:
            click.echo(f"moefuzz: error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _targets_option(command: F) -> F:
    """Add ``--targets PATH_OR_MODULE`` (repeatable): plugins to load, for this process and its
    workers, before the command runs; a broken one is a one-line error, exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, targets: tuple[str, ...] = (), **kwargs: Any) -> Any:
        if targets:
            _one_line_errors(_load_targets)(targets)
        return command(*args, **kwargs)

    option = click.option(
        "--targets",
        "targets",
        multiple=True,
        metavar="PATH_OR_MODULE",
        help="Also load targets from this .py file, package directory or module (repeatable).",
    )
    return option(wrapper)  # type: ignore[return-value]


def _load_targets(specs: tuple[str, ...]) -> None:
    from moefuzz.model.registry import add_target_specs, builtin_targets

    add_target_specs(specs)
    builtin_targets()


@dataclass
class _Reports:
    """Where ``--json`` / ``--junit-xml`` go, and when the command started (for their timing)."""

    json_path: Path | None
    junit_path: Path | None
    started_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)

    def write(self, build: Callable[[float, float], dict[str, Any]]) -> None:
        """Write the reports asked for; ``build(started_at, duration_s)`` makes the document."""
        if self.json_path is not None or self.junit_path is not None:
            from moefuzz.ui.reports import write_reports

            write_reports(build(self.started_at, time.monotonic() - self.started), self.json_path, self.junit_path)


def _report_options(command: F) -> F:
    """Add ``--json PATH`` and ``--junit-xml PATH``; the command gets them as ``reports``."""

    @functools.wraps(command)
    def wrapper(*args: Any, json_path: Path | None, junit_path: Path | None, **kwargs: Any) -> Any:
        return command(*args, reports=_Reports(json_path, junit_path), **kwargs)

    path = click.Path(dir_okay=False, path_type=Path)
    junit = click.option("--junit-xml", "junit_path", type=path, default=None, help="Write a JUnit XML report here.")
    as_json = click.option("--json", "json_path", type=path, default=None, help="Write a JSON report here.")
    return junit(as_json(wrapper))  # type: ignore[return-value]


def parse_devices(text: str) -> tuple[int, ...]:
    """CUDA device indices from ``--devices`` (``0,1``).

    Raises:
        UsageError: not a comma-separated list of distinct non-negative integers.
    """
    from moefuzz.errors import UsageError

    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts) or len(set(parts)) != len(parts):
        raise UsageError(f"devices={text!r} is not a list of distinct device indices such as 0,1")
    return tuple(int(part) for part in parts)


@click.group()
@click.version_option(package_name="moefuzz")
def main() -> None:
    """Property-based differential fuzzer for MoE routing and paged-KV GPU kernels."""


@main.command()
@_targets_option
@click.option("--target", "target_name", required=True, help="Target to fuzz (see `moefuzz targets`).")
@click.option("--time", "duration", required=True, help="Fuzzing budget: 90s, 10m, 1h, 1h30m.")
@click.option("--kernel", default=None, help="Kernel of the target (default: its correct Triton kernel).")
@click.option("--corpus", "corpus_dir", default="corpus", show_default=True, type=click.Path(path_type=Path))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the case source.")
@click.option("--device", default="auto", show_default=True, type=DEVICES, help="cpu runs Triton's interpreter.")
@click.option("--case-timeout", default=None, type=float, help="Seconds before a case is a hang.")
@click.option("--shrink-time", default=None, help="Budget to shrink each finding (default: time/4, 1m..10m).")
@click.option(
    "--perturb",
    "perturb_runs",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Launches per case: the plain one, then varied launch knobs and poison patterns (races).",
)
@click.option("--sanitize", is_flag=True, help="Re-run each new finding under compute-sanitizer (GPU only).")
@click.option(
    "--no-caching-allocator", is_flag=True, help="Run workers with PYTORCH_NO_CUDA_MEMORY_CACHING=1 (fresh buffers)."
)
@click.option(
    "--engine",
    default="hypothesis",
    show_default=True,
    type=click.Choice(["hypothesis", "atheris"]),
    help="What chooses the cases: seeded random bytes, or libFuzzer's coverage-guided mutations (atheris).",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 256),
    help="Workers running cases at once (default: in the interpreter 1; on a GPU with drawers two per GPU "
    "where the host has 12 cores a GPU, else one per GPU; without drawers half the CPU cores, at most 8).",
)
@click.option(
    "--drawers",
    default=None,
    type=click.IntRange(0, 256),
    help="CPU-only processes drawing cases and running the oracle for the workers (0: each worker draws "
    "its own; default: none in the interpreter, on a GPU the spare cores, at most 8).",
)
@click.option(
    "--devices",
    "device_list",
    default=None,
    help="CUDA device indices to spread the workers over, e.g. 0,1 (default: the first GPU).",
)
@click.option(
    "--max-findings",
    default=None,
    type=click.IntRange(1),
    help="End once this many new findings are saved and shrunk (default: run the whole budget).",
)
@_report_options
@_one_line_errors
def run(
    target_name: str,
    duration: str,
    kernel: str | None,
    corpus_dir: Path,
    seed: int,
    device: str,
    case_timeout: float | None,
    shrink_time: str | None,
    perturb_runs: int,
    sanitize: bool,
    no_caching_allocator: bool,
    reports: _Reports,
    engine: str,
    workers: int | None,
    device_list: str | None,
    max_findings: int | None,
    drawers: int | None,
) -> None:
    """Fuzz a target for a time budget; save and shrink every failure."""
    from moefuzz.model.registry import get_target
    from moefuzz.ui.duration import parse_duration

    devices = parse_devices(device_list) if device_list is not None else ()
    seconds = parse_duration(duration)
    shrink_seconds = parse_duration(shrink_time) if shrink_time else None
    get_target(target_name).kernel(kernel)  # unknown names fail here, before any worker starts

    from moefuzz.engine.campaign import CampaignConfig, run_campaign
    from moefuzz.ui.status import StatusDisplay, status_line

    config = CampaignConfig(
        target_name,
        kernel,
        seconds,
        corpus_dir,
        seed,
        device,
        case_timeout,
        shrink_seconds,
        perturb_runs=perturb_runs,
        caching_allocator=not no_caching_allocator,
        engine=engine,
        workers=workers,
        devices=devices,
        max_findings=max_findings,
        drawers=drawers,
    )
    with StatusDisplay() as display:
        try:
            status = run_campaign(config, display.update)
        except KeyboardInterrupt:
            click.echo("moefuzz: interrupted; saved findings are kept", err=True)
            sys.exit(130)
    click.echo(status_line(status))
    if status.engine_stats:
        click.echo(f"engine {engine}: {status.engine_stats}")
    if "interpreter" in status.device:
        click.echo("note: no GPU used: Triton kernels ran in the interpreter on the CPU (TRITON_INTERPRET=1)")
    for path, finding in status.findings:
        shrink = finding.shrink
        click.echo(
            f"saved {path}  {finding.signature}  size {tuple(shrink.get('size', []))} "
            f"(from {tuple(shrink.get('original_size', []))})"
        )
        if finding.explanation:
            click.echo(f"  {finding.explanation.splitlines()[0]}")
        if int(finding.found.get("runs", 1)) > 1:
            rate = f"{finding.found.get('failures')}/{finding.found.get('runs')}"
            click.echo(f"  failed {rate} perturbed launches when found; shrunk case {finding.shrink.get('rate', '?')}")
    if status.known:
        click.echo(f"{status.known} failures matched findings already in {corpus_dir}")
    if sanitize:
        for path, _finding in status.findings:
            _sanitize_and_print(path, TOOLS_ALL, None)
    from moefuzz.ui.reports import run_document

    reports.write(lambda at, seconds: run_document(config, status, at, seconds))
    sys.exit(1 if status.findings or status.known else 0)


@main.command()
@_targets_option
@click.option("--domain", "domain_of", default=None, metavar="NAME", help="Print target NAME's input domain.")
@click.option("--device", default="auto", show_default=True, type=DEVICES, help="Whose size limits cap the domain.")
@_one_line_errors
def targets(domain_of: str | None, device: str) -> None:
    """List targets and their kernels (correct kernels and bug-* models); with --domain, one
    target's input domain (dimensions, bounds, notable values, edges) and its kernels' domains."""
    from moefuzz.model.registry import builtin_targets, get_target

    if domain_of is not None:
        from moefuzz.engine.campaign import likely_device
        from moefuzz.model.target import default_limits

        target = get_target(domain_of)
        limits = default_limits(likely_device(device))
        click.echo(f"{target.name}: input domain (limits of a {likely_device(device)} campaign)")
        for line in target.domain.describe(limits) if target.domain is not None else ["(no domain declared)"]:
            click.echo(f"  {line}")
        for kernel in target.kernels:
            if kernel.domain is not None:
                click.echo(f"  kernel {kernel.name} domain: {kernel.domain_entry}")
        return
    for target in builtin_targets().values():
        click.echo(f"{target.name}: {target.summary}")
        click.echo(f"  contract: {target.source}")
        width = max(24, *(len(kernel.name) for kernel in target.kernels))
        for index, kernel in enumerate(target.kernels):
            role = "default" if index == 0 else ("bug model" if kernel.is_bug_model else "kernel")
            where = f"  [domain {kernel.domain_entry}]" if kernel.domain is not None else ""
            click.echo(f"  {kernel.name:<{width}} {role:<9} {kernel.summary}{where}")


@main.command()
@_targets_option
@click.option("--target", "target_name", required=True, help="Target whose domain to measure.")
@click.option("--cases", default=2000, show_default=True, type=click.IntRange(1), help="Cases to draw.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the case source (as run's).")
@click.option("--device", default="auto", show_default=True, type=DEVICES, help="Whose size limits to draw within.")
@_one_line_errors
def coverage(target_name: str, cases: int, seed: int, device: str) -> None:
    """Draw the cases a campaign would (no kernel runs) and print how often each bound, notable
    value and edge of the target's domain was hit; exit 1 if one never was."""
    from moefuzz.engine.campaign import likely_device
    from moefuzz.engine.coverage import draw_coverage
    from moefuzz.model.registry import get_target
    from moefuzz.model.target import default_limits

    target = get_target(target_name)
    result = draw_coverage(target, default_limits(likely_device(device)), cases, seed)
    click.echo(f"{target.name}: {result.cases} cases drawn (seed {seed}, {likely_device(device)} limits)")
    for line in result.lines():
        click.echo(f"  {line}")
    missed = result.missed
    summary = f"{len(result.points) - len(missed)} of {len(result.points)} points hit"
    click.echo(summary + (f"; missed: {', '.join(missed)}" if missed else ""))
    sys.exit(1 if missed else 0)


@main.command()
@_targets_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--kernel", default=None, help="Replay against this kernel instead of the recorded one.")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--case-timeout", default=60.0, show_default=True, type=float)
@_report_options
@_one_line_errors
def replay(paths: tuple[Path, ...], kernel: str | None, device: str, case_timeout: float, reports: _Reports) -> None:
    """Re-run saved reproducers; exit 1 if any still fails."""
    from moefuzz.store.replay import recorded_rate, replay_findings
    from moefuzz.ui.reports import replay_document

    results = replay_findings(list(paths), kernel, device, case_timeout)
    failed = 0
    for result in results:
        verdict = "FAIL" if result.outcome.failed else ("skip" if result.outcome.kind == "skipped" else "pass")
        failed += result.outcome.failed
        line = f"{verdict}  {result.path}  [{result.kernel}]"
        if result.outcome.failed or result.outcome.kind == "skipped":
            line += f"  {result.outcome.signature}: {result.outcome.message}"
        if result.outcome.runs > 1:
            line += f"  (failed {result.outcome.rate} runs; recorded rate {recorded_rate(result.finding)})"
        click.echo(line)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    reports.write(lambda at, seconds: replay_document(results, kernel, at, seconds))
    sys.exit(1 if failed else 0)


@main.command()
@_targets_option
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--time", "duration", default="2m", show_default=True, help="Shrink budget.")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--case-timeout", default=60.0, show_default=True, type=float)
@_one_line_errors
def shrink(path: Path, duration: str, device: str, case_timeout: float) -> None:
    """Shrink a saved reproducer further, in place."""
    from moefuzz.model.registry import get_target
    from moefuzz.runtime.isolation import Executor
    from moefuzz.shrinking.finding import minimize_finding
    from moefuzz.store.corpus import load_finding
    from moefuzz.ui.duration import parse_duration

    seconds = parse_duration(duration)
    finding = load_finding(path)
    target = get_target(finding.target)
    directory = path if path.is_dir() else path.parent
    with Executor(target.name, finding.kernel, device, case_timeout) as executor:
        first = executor.run(finding.case)
        if first.signature != finding.signature:
            raise MoefuzzError(
                f"reproducer path={str(path)!r} no longer fails as {finding.signature!r} "
                f"(now {first.signature!r}); nothing to shrink"
            )
        before = target.size(finding.case)
        result = minimize_finding(finding, target, executor, seconds, directory=directory)
    click.echo(
        f"shrunk {directory}: size {before} -> {result.size} in {result.seconds:.1f} s ({result.candidates} candidates)"
    )


TOOLS_ALL = ("memcheck", "initcheck", "synccheck", "racecheck")


def _sanitize_and_print(path: Path, tools: tuple[str, ...], kernel: str | None) -> None:
    from moefuzz.execute.sanitize import SanitizerUnavailable, format_table, sanitize_finding

    try:
        reports = sanitize_finding(path, tools, kernel)
    except SanitizerUnavailable as exc:
        click.echo(f"moefuzz: {exc}")
        return
    click.echo(f"compute-sanitizer on {path} (PYTORCH_NO_CUDA_MEMORY_CACHING=1):")
    click.echo(format_table(reports))


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--tool", "tools", multiple=True, type=click.Choice(TOOLS_ALL), help="Tool to run (repeatable; default: all four)."
)
@click.option("--kernel", default=None, help="Run this kernel instead of the recorded one.")
@_one_line_errors
def sanitize(path: Path, tools: tuple[str, ...], kernel: str | None) -> None:
    """Re-run a reproducer under compute-sanitizer memcheck, initcheck, synccheck and racecheck;
    print what each tool said and attach the table to the finding. Without compute-sanitizer
    or a GPU, say so and exit 0."""
    from moefuzz.store.corpus import load_finding

    load_finding(path)  # a bad path fails here, with one line
    _sanitize_and_print(path, tools or TOOLS_ALL, kernel)


@main.command()
@_targets_option
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--rerun", is_flag=True, help="Run the case again and show what it does now.")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--full", is_flag=True, help="Print every entry of every array (large ones are summarised).")
@_one_line_errors
def show(path: Path, rerun: bool, device: str, full: bool) -> None:
    """Print a reproducer in human terms: shapes, the failing rows, the diff."""
    from moefuzz.store.corpus import load_finding
    from moefuzz.ui.render import render_finding

    finding = load_finding(path)
    outcome = None
    if rerun:
        from moefuzz.runtime.isolation import Executor

        with Executor(finding.target, finding.kernel, device, spare=False) as executor:
            outcome = executor.run(finding.case)
    click.echo(render_finding(finding, outcome, full=full))


@main.command()
@_targets_option
@click.argument("changed_files", metavar="PATHS_FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@_one_line_errors
def changed(changed_files: str, root: Path) -> None:
    """Print 'TARGET KERNEL' for each kernel the changed paths touch (bug models left out).

    PATHS_FILE lists paths relative to --root, one a line (`git diff --name-only`); '-' reads
    stdin. A kernel is touched when a changed file is its module, its target's contract or
    oracle module, or a repository module those import.
    """
    from moefuzz.errors import UsageError
    from moefuzz.model.registry import builtin_targets
    from moefuzz.ui.changed import touched_kernels

    try:
        with click.open_file(changed_files) as handle:
            paths = [Path(line.strip()) for line in handle if line.strip()]
    except OSError as exc:
        raise UsageError(f"cannot read changed_files={changed_files!r}: {exc.strerror or exc}") from None
    for target, kernel in touched_kernels(builtin_targets().values(), paths, root):
        click.echo(f"{target} {kernel}")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--output", default="repro.py", show_default=True, type=click.Path(path_type=Path))
@click.option("--kernel", default=None, help="Launch this kernel of the target instead of the recorded one.")
@click.option("--inline-max", default=4096, show_default=True, type=int, help="Larger arrays go to a .npz beside it.")
@_one_line_errors
def export(path: Path, output: Path, kernel: str | None, inline_max: int) -> None:
    """Write a reproducer as a standalone script (torch, triton, numpy; no moefuzz)."""
    from moefuzz.ui.export import export_finding

    result = export_finding(path, output, kernel, inline_max)
    click.echo(f"wrote {result.script}" + (f" and {result.npz}" if result.npz else ""))
    click.echo(f"  kernel {result.kernel.name} = {result.kernel.entry}")
    if result.kernel.domain is not None:
        from moefuzz.store.corpus import load_finding

        inside = result.kernel.supports(load_finding(path).case)
        click.echo(f"  domain {result.kernel.domain_entry}: the case is {'inside' if inside else 'OUTSIDE'} it")
        if not inside:
            warning = f"warning: kernel {result.kernel.name!r} does not claim this input (outside its domain)"
            click.echo(warning, err=True)
    for name, check in result.checks.items():
        click.echo(f"  checks {name}: {check.describe()}")
    for found in result.moefuzz_imports:
        click.echo(f"warning: {found}: the script will need moefuzz installed", err=True)
    for module in result.unimportable:
        click.echo(f"warning: module {module!r} cannot be imported by name: the script will not find it", err=True)
    click.echo(f"run it: python3 {result.script} [--device auto|cuda|cpu]")


if __name__ == "__main__":
    main()
