"""The ``moefuzz`` commands on targets: targets, coverage, changed."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from moefuzz.ui.cli_common import DEVICES, one_line_errors, targets_option


@click.command()
@targets_option
@click.option("--domain", "domain_of", default=None, metavar="NAME", help="Print target NAME's input domain.")
@click.option("--device", default="auto", show_default=True, type=DEVICES, help="Whose size limits cap the domain.")
@one_line_errors
def targets(domain_of: str | None, device: str) -> None:
    """List targets and their kernels (correct kernels and bug-* models); with --domain, one
    target's input domain (dimensions, bounds, notable values, edges) and its kernels' domains."""
    from moefuzz.execute.cuda_build import NEEDS, toolchain_problem
    from moefuzz.model.registry import builtin_targets, get_target

    if domain_of is not None:
        from moefuzz.engine.sizing import likely_device
        from moefuzz.model.target import default_limits

        target, where = get_target(domain_of), likely_device(device)
        click.echo(f"{target.name}: input domain (limits of a {where} campaign)")
        for line in target.domain.describe(default_limits(where)) if target.domain else ["(no domain declared)"]:
            click.echo(f"  {line}")
        for kernel in target.kernels:
            if kernel.domain is not None:
                click.echo(f"  kernel {kernel.name} domain: {kernel.domain_entry}")
        return
    cuda_problem = toolchain_problem()
    for target in builtin_targets().values():
        click.echo(f"{target.name}: {target.summary}")
        click.echo(f"  contract: {target.source}")
        width = max(24, *(len(kernel.name) for kernel in target.kernels))
        for index, kernel in enumerate(target.kernels):
            role = "default" if index == 0 else ("bug model" if kernel.is_bug_model else "kernel")
            cuda = kernel.build is not None and kernel.build.uses_cuda
            needs = f" ({NEEDS}: {cuda_problem})" if cuda and cuda_problem else ""
            where = f"  [domain {kernel.domain_entry}]" if kernel.domain is not None else ""
            click.echo(f"  {kernel.name:<{width}} {role:<9} {kernel.summary}{needs}{where}")


@click.command()
@targets_option
@click.option("--target", "target_name", required=True, help="Target whose domain to measure.")
@click.option("--cases", default=2000, show_default=True, type=click.IntRange(1), help="Cases to draw.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the case source (as run's).")
@click.option("--device", default="auto", show_default=True, type=DEVICES, help="Whose size limits to draw within.")
@one_line_errors
def coverage(target_name: str, cases: int, seed: int, device: str) -> None:
    """Draw the cases a campaign would (no kernel runs) and print how often each bound, notable
    value and edge of the target's domain was hit; exit 1 if one never was."""
    from moefuzz.engine.coverage import draw_coverage
    from moefuzz.engine.sizing import likely_device
    from moefuzz.model.registry import get_target
    from moefuzz.model.target import default_limits

    target, where = get_target(target_name), likely_device(device)
    result = draw_coverage(target, default_limits(where), cases, seed)
    click.echo(f"{target.name}: {result.cases} cases drawn (seed {seed}, {where} limits)")
    for line in result.lines():
        click.echo(f"  {line}")
    missed = result.missed
    summary = f"{len(result.points) - len(missed)} of {len(result.points)} points hit"
    click.echo(summary + (f"; missed: {', '.join(missed)}" if missed else ""))
    sys.exit(1 if missed else 0)


@click.command()
@targets_option
@click.argument("changed_files", metavar="PATHS_FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@one_line_errors
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
    from moefuzz.execute.cuda_build import unavailable_message

    targets = builtin_targets()
    for target, kernel in touched_kernels(targets.values(), paths, root):
        build = targets[target].kernel(kernel).build
        skip = unavailable_message(f"kernel {target}/{kernel}") if build is not None and build.uses_cuda else ""
        if skip:  # a CPU runner cannot fuzz it: say so, and leave it out
            click.echo(f"skipped: {skip}", err=True)
        else:
            click.echo(f"{target} {kernel}")
