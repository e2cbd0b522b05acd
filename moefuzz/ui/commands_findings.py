"""The ``moefuzz`` commands on findings: replay, shrink, sanitize, show, export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from moefuzz.errors import MoefuzzError
from moefuzz.ui.cli_common import DEVICES, Reports, one_line_errors, report_options, targets_option

if TYPE_CHECKING:
    from moefuzz.store.corpus import Finding


@click.command()
@targets_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--kernel", default=None, help="Replay against this kernel instead of the recorded one.")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--case-timeout", default=60.0, show_default=True, type=float)
@report_options
@one_line_errors
def replay(paths: tuple[Path, ...], kernel: str | None, device: str, case_timeout: float, reports: Reports) -> None:
    """Re-run saved reproducers; exit 1 if any still fails."""
    from moefuzz.model.outcome import NOT_KERNEL
    from moefuzz.store.replay import recorded_rate, replay_findings
    from moefuzz.ui.reports import replay_document

    results = replay_findings(list(paths), kernel, device, case_timeout)
    failed = broken = 0
    for result in results:
        verdict = "FAIL" if result.outcome.failed else ("skip" if result.outcome.kind == "skipped" else "pass")
        if result.outcome.kind in NOT_KERNEL:  # the harness or the machine: neither pass nor fail
            verdict, broken = result.outcome.kind.upper(), broken + 1
        failed += result.outcome.failed
        line = f"{verdict}  {result.path}  [{result.kernel}]"
        if result.outcome.failed or result.outcome.kind in NOT_KERNEL or result.outcome.kind == "skipped":
            line += f"  {result.outcome.signature}: {result.outcome.message}"
        if result.outcome.runs > 1:
            line += f"  (failed {result.outcome.rate} runs; recorded rate {recorded_rate(result.finding)})"
        click.echo(line)
    click.echo(f"{len(results) - failed - broken} passed, {failed} failed" + (f", {broken} not run" if broken else ""))
    reports.write(lambda at, seconds: replay_document(results, kernel, at, seconds))
    sys.exit(3 if broken else 1 if failed else 0)


@click.command()
@targets_option
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--time", "duration", default="2m", show_default=True, help="Shrink budget.")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--case-timeout", default=60.0, show_default=True, type=float)
@one_line_errors
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
        if first.signature != finding.signature and not _flaky(finding):
            raise MoefuzzError(
                f"reproducer path={str(path)!r} no longer fails as {finding.signature!r} "
                f"(now {first.signature!r}); nothing to shrink"
            )
        before = target.size(finding.case)
        result = minimize_finding(finding, target, executor, seconds, directory=directory)
    click.echo(
        f"shrunk {directory}: size {before} -> {result.size} in {result.seconds:.1f} s ({result.candidates} candidates)"
    )


def _flaky(finding: Finding) -> bool:
    """Whether ``finding`` recorded a flaky rate (``found.launch_rate`` below 1, see
    :mod:`moefuzz.shrinking.flaky`): one plain run passing says nothing then."""
    recorded = str(finding.found.get("launch_rate", ""))
    failures, _, runs = recorded.partition("/")
    return failures.isdigit() and runs.isdigit() and 0 < int(failures) < int(runs)


TOOLS_ALL = ("memcheck", "initcheck", "synccheck", "racecheck")


def sanitize_and_print(path: Path, tools: tuple[str, ...], kernel: str | None) -> None:
    """Run the finding at ``path`` under compute-sanitizer's ``tools`` and print the table."""
    from moefuzz.execute.sanitize import SanitizerUnavailable, format_table, sanitize_finding

    try:
        reports = sanitize_finding(path, tools, kernel)
    except SanitizerUnavailable as exc:
        click.echo(f"moefuzz: {exc}")
        return
    click.echo(f"compute-sanitizer on {path} (PYTORCH_NO_CUDA_MEMORY_CACHING=1):")
    click.echo(format_table(reports))


@click.command()
@targets_option
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--tool", "tools", multiple=True, type=click.Choice(TOOLS_ALL), help="Tool to run (repeatable; default: all four)."
)
@click.option("--kernel", default=None, help="Run this kernel instead of the recorded one.")
@one_line_errors
def sanitize(path: Path, tools: tuple[str, ...], kernel: str | None) -> None:
    """Re-run a reproducer under compute-sanitizer memcheck, initcheck, synccheck and racecheck;
    print what each tool said and attach the table to the finding. Without compute-sanitizer
    or a GPU, say so and exit 0."""
    from moefuzz.store.corpus import load_finding

    load_finding(path)  # a bad path fails here, with one line
    sanitize_and_print(path, tools or TOOLS_ALL, kernel)


@click.command()
@targets_option
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--rerun", is_flag=True, help="Run the case again and show what it does now.")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--full", is_flag=True, help="Print every entry of every array (large ones are summarised).")
@one_line_errors
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


@click.command()
@targets_option
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--output", default="repro.py", show_default=True, type=click.Path(path_type=Path))
@click.option("--kernel", default=None, help="Launch this kernel of the target instead of the recorded one.")
@click.option("--inline-max", default=4096, show_default=True, type=int, help="Larger arrays go to a .npz beside it.")
@one_line_errors
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
