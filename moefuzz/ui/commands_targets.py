"""The ``moefuzz`` commands on targets: targets, changed."""

from __future__ import annotations

from pathlib import Path

import click

from moefuzz.ui.cli_common import one_line_errors, targets_option


@click.command()
@targets_option
@one_line_errors
def targets() -> None:
    """List targets and their kernels (correct kernels and bug-* models)."""
    from moefuzz.model.registry import builtin_targets

    for target in builtin_targets().values():
        click.echo(f"{target.name}: {target.summary}")
        click.echo(f"  contract: {target.source}")
        width = max(24, *(len(kernel.name) for kernel in target.kernels))
        for index, kernel in enumerate(target.kernels):
            role = "default" if index == 0 else ("bug model" if kernel.is_bug_model else "kernel")
            click.echo(f"  {kernel.name:<{width}} {role:<9} {kernel.summary}")


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
    for target, kernel in touched_kernels(builtin_targets().values(), paths, root):
        click.echo(f"{target} {kernel}")
