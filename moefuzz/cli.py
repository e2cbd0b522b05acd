"""The ``moefuzz`` command line: run, targets, replay, shrink, show.

Arguments are checked before anything heavy is imported. Every moefuzz error becomes one line on
stderr and exit status 2; ``run`` exits 1 when it met failures, ``replay`` when a reproducer still
fails.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
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


@click.group()
@click.version_option(package_name="moefuzz")
def main() -> None:
    """Property-based differential fuzzer for MoE routing and paged-KV GPU kernels."""


@main.command()
@click.option("--target", "target_name", required=True, help="Target to fuzz (see `moefuzz targets`).")
@click.option("--time", "duration", required=True, help="Fuzzing budget: 90s, 10m, 1h, 1h30m.")
@click.option("--kernel", default=None, help="Kernel of the target (default: its correct Triton kernel).")
@click.option("--corpus", "corpus_dir", default="corpus", show_default=True, type=click.Path(path_type=Path))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the case source.")
@click.option("--device", default="auto", show_default=True, type=DEVICES, help="cpu runs Triton's interpreter.")
@click.option("--case-timeout", default=None, type=float, help="Seconds before a case is a hang.")
@click.option("--shrink-time", default=None, help="Budget to shrink each finding (default: time/4, 1m..10m).")
@click.option(
    "--engine",
    default="hypothesis",
    show_default=True,
    type=click.Choice(["hypothesis", "atheris"]),
    help="What chooses the cases: seeded random bytes, or libFuzzer's coverage-guided mutations (atheris).",
)
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
    engine: str,
) -> None:
    """Fuzz a target for a time budget; save and shrink every failure."""
    from moefuzz.duration import parse_duration
    from moefuzz.registry import get_target

    seconds = parse_duration(duration)
    shrink_seconds = parse_duration(shrink_time) if shrink_time else None
    get_target(target_name).kernel(kernel)  # unknown names fail here, before any worker starts

    from moefuzz.campaign import CampaignConfig, run_campaign
    from moefuzz.status import StatusDisplay, status_line

    config = CampaignConfig(
        target_name, kernel, seconds, corpus_dir, seed, device, case_timeout, shrink_seconds, engine=engine
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
    if status.known:
        click.echo(f"{status.known} failures matched findings already in {corpus_dir}")
    sys.exit(1 if status.findings or status.known else 0)


@main.command()
@_one_line_errors
def targets() -> None:
    """List targets and their kernels (correct kernels and bug-* models)."""
    from moefuzz.registry import builtin_targets

    for target in builtin_targets().values():
        click.echo(f"{target.name}: {target.summary}")
        click.echo(f"  contract: {target.source}")
        for index, kernel in enumerate(target.kernels):
            role = "default" if index == 0 else ("bug model" if kernel.is_bug_model else "kernel")
            click.echo(f"  {kernel.name:<24} {role:<9} {kernel.summary}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--kernel", default=None, help="Replay against this kernel instead of the recorded one.")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--case-timeout", default=60.0, show_default=True, type=float)
@_one_line_errors
def replay(paths: tuple[Path, ...], kernel: str | None, device: str, case_timeout: float) -> None:
    """Re-run saved reproducers; exit 1 if any still fails."""
    from moefuzz.replay import replay_findings

    results = replay_findings(list(paths), kernel, device, case_timeout)
    failed = 0
    for result in results:
        verdict = "FAIL" if result.outcome.failed else "pass"
        failed += result.outcome.failed
        line = f"{verdict}  {result.path}  [{result.kernel}]"
        if result.outcome.failed:
            line += f"  {result.outcome.signature}: {result.outcome.message}"
        click.echo(line)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--time", "duration", default="2m", show_default=True, help="Shrink budget.")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--case-timeout", default=60.0, show_default=True, type=float)
@_one_line_errors
def shrink(path: Path, duration: str, device: str, case_timeout: float) -> None:
    """Shrink a saved reproducer further, in place."""
    from moefuzz.corpus import load_finding
    from moefuzz.duration import parse_duration
    from moefuzz.isolation import Executor
    from moefuzz.minimize import minimize_finding
    from moefuzz.registry import get_target

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


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--rerun", is_flag=True, help="Run the case again and show what it does now.")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@_one_line_errors
def show(path: Path, rerun: bool, device: str) -> None:
    """Print a reproducer in human terms: shapes, the failing rows, the diff."""
    from moefuzz.corpus import load_finding
    from moefuzz.report import render_finding

    finding = load_finding(path)
    outcome = None
    if rerun:
        from moefuzz.isolation import Executor

        with Executor(finding.target, finding.kernel, device, spare=False) as executor:
            outcome = executor.run(finding.case)
    click.echo(render_finding(finding, outcome))


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--output", default="repro.py", show_default=True, type=click.Path(path_type=Path))
@click.option("--kernel", default=None, help="Launch this kernel of the target instead of the recorded one.")
@click.option("--inline-max", default=4096, show_default=True, type=int, help="Larger arrays go to a .npz beside it.")
@_one_line_errors
def export(path: Path, output: Path, kernel: str | None, inline_max: int) -> None:
    """Write a reproducer as a standalone script (torch, triton, numpy; no moefuzz)."""
    from moefuzz.export import export_finding

    result = export_finding(path, output, kernel, inline_max)
    click.echo(f"wrote {result.script}" + (f" and {result.npz}" if result.npz else ""))
    click.echo(f"  kernel {result.kernel.name} = {result.kernel.entry}")
    for name, check in result.checks.items():
        click.echo(f"  checks {name}: {check.describe()}")
    for found in result.moefuzz_imports:
        click.echo(f"warning: {found}: the script will need moefuzz installed", err=True)
    for module in result.unimportable:
        click.echo(f"warning: module {module!r} cannot be imported by name: the script will not find it", err=True)
    click.echo(f"run it: python3 {result.script} [--device auto|cuda|cpu]")


if __name__ == "__main__":
    main()
