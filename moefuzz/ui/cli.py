"""The ``moefuzz`` command line: run, targets, replay, shrink, show, sanitize, changed.

Every command that takes a target or a finding takes ``--targets PATH_OR_MODULE`` (plugins, see
:mod:`moefuzz.model.plugin`); ``run`` and ``replay`` take ``--json`` and ``--junit-xml`` (see
:mod:`moefuzz.ui.reports`). Arguments are checked before anything heavy is imported. Every moefuzz
error becomes one line on stderr and exit status 2 (3 for a :class:`~moefuzz.errors.StorageError`:
a full disk); ``run`` exits 1 when it met failures, ``replay`` when a reproducer still fails.
"""

from __future__ import annotations

import click

from moefuzz.ui.cli_common import parse_devices
from moefuzz.ui.commands_findings import export, replay, sanitize, show, shrink
from moefuzz.ui.commands_run import run
from moefuzz.ui.commands_targets import changed, coverage, targets

__all__ = ["main", "parse_devices"]


@click.group()
@click.version_option(package_name="moefuzz")
def main() -> None:
    """Property-based differential fuzzer for MoE routing and paged-KV GPU kernels."""


for _command in (run, targets, coverage, replay, shrink, sanitize, show, changed, export):
    main.add_command(_command)


if __name__ == "__main__":
    main()
