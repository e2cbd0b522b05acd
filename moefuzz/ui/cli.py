"""The ``moefuzz`` command line: run, targets, replay, shrink, show, sanitize, changed.

Every command that takes a target or a finding takes ``--targets PATH_OR_MODULE`` (plugins, see
:mod:`moefuzz.model.plugin`); ``run`` and ``replay`` take ``--json`` and ``--junit-xml`` (see
:mod:`moefuzz.ui.reports`). Arguments are checked before anything heavy is imported. Every error becomes one
line on stderr; exit statuses are the same for every command (see
:data:`moefuzz.ui.cli_common.EXIT_STATUSES`): 0 clean, 1 failures, 2 bad input, 3 an error of
moefuzz, the harness or the environment, 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import click

from moefuzz.ui.cli_common import MoefuzzGroup, exit_epilog, parse_devices
from moefuzz.ui.commands_findings import export, replay, sanitize, show, shrink
from moefuzz.ui.commands_run import run
from moefuzz.ui.commands_targets import changed, coverage, targets

__all__ = ["main", "parse_devices"]


@click.group(cls=MoefuzzGroup, epilog=exit_epilog())
@click.version_option(package_name="moefuzz")
def main() -> None:
    """Property-based differential fuzzer for MoE routing and paged-KV GPU kernels."""


for _command in (run, targets, coverage, replay, shrink, sanitize, show, changed, export):
    _command.epilog = _command.epilog or exit_epilog()
    main.add_command(_command)


if __name__ == "__main__":
    main()
