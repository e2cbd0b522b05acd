"""The one error hierarchy of moefuzz.

Every mistake a user can make (an unknown target, a bad duration, a corrupt corpus file) raises a
subclass of :class:`MoefuzzError` whose message names the offending value as ``name=value!r``.
The CLI turns any of them into one line on stderr and exit status 2, except
:class:`StorageError` (the environment refused a write: a full disk), :class:`WorkerError` and
:class:`HarnessError`, which exit 3 (see :mod:`moefuzz.ui.cli_common`).
"""

from __future__ import annotations


class MoefuzzError(Exception):
    """Base of every error moefuzz raises on purpose (exit status 2 at the CLI, 3 for
    :class:`StorageError`, :class:`WorkerError` and :class:`HarnessError`)."""


class UsageError(MoefuzzError):
    """A command-line argument or API argument is invalid."""


class UnknownTargetError(UsageError):
    """A target or kernel name that no registered target provides."""


class CorpusError(MoefuzzError):
    """A corpus file or directory that cannot be read, is corrupt, has an unknown format, breaks
    a bound of :mod:`moefuzz.store.schema`, or is a symlink where moefuzz reads or writes (bad
    input: exit 2)."""


class StorageError(MoefuzzError):
    """The environment refused to store a finding: a full disk, a read-only or vanished
    directory, a corpus lock not released (an error of the environment, not of the input: exit 3
    at the CLI). What was saved before stays complete; the failed save is never counted as known."""


class CaseError(MoefuzzError):
    """A case that violates its target's contract preconditions (a strategy or corpus bug, never
    a kernel finding)."""


class WorkerError(MoefuzzError):
    """A worker process that could not be started at all (not a kernel crash: those are
    findings)."""


class ExportError(MoefuzzError):
    """A finding that cannot be written as a standalone reproducer script (its oracle fails on
    it, or the contract rejects the oracle's own outputs)."""


class HarnessError(MoefuzzError):
    """The target's own code (``output_specs``, the oracle, ``compare``, the strategy) raised or
    broke its contract on a case: a bug of the target, never a kernel finding (exit status 3)."""
