"""What the ``moefuzz`` commands share: exit statuses and one-line errors, ``--targets``,
``--json`` and ``--junit-xml``, and argument parsing.

Exit statuses, the same for every command (:data:`EXIT_STATUSES`; :func:`exit_status` maps an
exception to one): 0 clean, 1 failures found (or a reproducer still failing), 2 usage or bad
input, 3 an error of moefuzz, the target's harness or the environment (a full disk, a worker
that cannot start, an unexpected traceback: one line on stderr and the file the traceback was
written to), 130 interrupted by SIGINT, 143 by SIGTERM.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from moefuzz.errors import HarnessError, MoefuzzError, StorageError, WorkerError
from moefuzz.runtime import stopping

F = TypeVar("F", bound=Callable[..., Any])

#: Every exit status of every command, and what it means (README and ``--help`` show them).
EXIT_STATUSES = (
    (0, "clean: no failure"),
    (1, "failures found, or a reproducer still fails"),
    (2, "usage or bad input (arguments, a corrupt or hostile corpus file)"),
    (3, "an error of moefuzz, the target's harness or the environment (full disk, traceback)"),
    (130, "interrupted by SIGINT (Ctrl-C); what was collected is saved"),
    (143, "interrupted by SIGTERM; what was collected is saved and the reports written"),
)

#: Errors that are not the user's input: moefuzz, the target's own code, the machine (exit 3).
ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (HarnessError, WorkerError, StorageError)


def kill_started_children() -> None:
    """:func:`moefuzz.runtime.processes.kill_children`, imported only when a command started
    any (the module imports numpy)."""
    processes = sys.modules.get("moefuzz.runtime.processes")
    if processes is not None:
        processes.kill_children()


def exit_status(exc: BaseException) -> int:
    """The exit status of a command that raised ``exc`` (see :data:`EXIT_STATUSES`)."""
    if isinstance(exc, stopping.Interrupted):
        return exc.exit_status
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, ENVIRONMENT_ERRORS):
        return 3
    if isinstance(exc, MoefuzzError):
        return 2
    return 3


def exit_epilog() -> str:
    """The exit statuses as the ``--help`` epilog shows them."""
    return "Exit status: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_STATUSES) + "."


def report_unexpected(exc: BaseException) -> None:
    """One line on stderr for an exception moefuzz did not expect, and where its traceback was
    written (a file in the temporary directory; on stderr when even that cannot be written)."""
    text = "".join(traceback.format_exception(exc))
    first = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        first = f"the disk refused a write ({first})"
    try:
        fd, path = tempfile.mkstemp(prefix="moefuzz-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        where = f"traceback in {path}"
    except OSError:
        click.echo(text, err=True)
        where = "traceback above"
    click.echo(f"moefuzz: error: {first} ({where})", err=True)


class MoefuzzGroup(click.Group):
    """The ``moefuzz`` group: every command runs with SIGINT and SIGTERM handled
    (:mod:`moefuzz.runtime.stopping`), its children killed on the way out, and every exception
    turned into one line and an exit status (:func:`exit_status`)."""

    def invoke(self, ctx: click.Context) -> Any:
        previous = stopping.install()
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except KeyboardInterrupt as exc:  # stopping.Interrupted included
            kill_started_children()
            name = exc.args[0] if isinstance(exc, stopping.Interrupted) else "SIGINT"
            click.echo(f"moefuzz: interrupted by {name}; saved findings are kept", err=True)
            sys.exit(exit_status(exc))
        except MoefuzzError as exc:
            click.echo(f"moefuzz: error: {exc}", err=True)
            sys.exit(exit_status(exc))
        except Exception as exc:
            report_unexpected(exc)
            sys.exit(3)
        finally:
            kill_started_children()
            stopping.restore(previous)


DEVICES = click.Choice(["auto", "cuda", "cpu"])


def one_line_errors(command: F) -> F:
    """Turn a moefuzz error raised by ``command`` into one line on stderr and its exit status
    (:func:`exit_status`: 2 for bad input, 3 for the environment), also where the command runs
    outside :class:`MoefuzzGroup`."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MoefuzzError as exc:
            click.echo(f"moefuzz: error: {exc}", err=True)
            sys.exit(exit_status(exc))

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
