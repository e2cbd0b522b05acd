"""What the ``moefuzz`` commands share: one-line errors, ``--targets``, ``--json`` and
``--junit-xml``, and argument parsing."""

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


def one_line_errors(command: F) -> F:
    """Turn a moefuzz error raised by ``command`` into one line on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MoefuzzError as exc:
            click.echo(f"moefuzz: error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def targets_option(command: F) -> F:
    """Add ``--targets PATH_OR_MODULE`` (repeatable): plugins to load, for this process and its
    workers, before the command runs; a broken one is a one-line error, exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, targets: tuple[str, ...] = (), **kwargs: Any) -> Any:
        if targets:
            one_line_errors(load_targets)(targets)
        return command(*args, **kwargs)

    option = click.option(
        "--targets",
        "targets",
        multiple=True,
        metavar="PATH_OR_MODULE",
        help="Also load targets from this .py file, package directory or module (repeatable).",
    )
    return option(wrapper)  # type: ignore[return-value]


def load_targets(specs: tuple[str, ...]) -> None:
    from moefuzz.model.registry import add_target_specs, builtin_targets

    add_target_specs(specs)
    builtin_targets()


@dataclass
class Reports:
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


def report_options(command: F) -> F:
    """Add ``--json PATH`` and ``--junit-xml PATH``; the command gets them as ``reports``."""

    @functools.wraps(command)
    def wrapper(*args: Any, json_path: Path | None, junit_path: Path | None, **kwargs: Any) -> Any:
        return command(*args, reports=Reports(json_path, junit_path), **kwargs)

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
