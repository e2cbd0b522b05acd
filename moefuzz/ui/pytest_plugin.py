"""pytest plugin: ``pytest --moefuzz-corpus DIR`` replays every reproducer under DIR as a test.

Registered through the ``pytest11`` entry point ``moefuzz`` (``-p no:moefuzz`` turns it off);
without ``--moefuzz-corpus`` it does nothing. Options:

    --moefuzz-corpus PATH     corpus directory or finding directory to replay (repeatable); it
                              is added to the paths pytest collects
    --moefuzz-kernel NAME     replay against this kernel instead of the one each was found on
    --moefuzz-device DEVICE   auto (default), cuda or cpu (the Triton interpreter)
    --moefuzz-targets=SPEC    also load targets from this file, package or module (repeatable,
                              like ``moefuzz --targets``; write it with ``=``, or pytest takes a
                              path value for a path to collect)
    --moefuzz-case-timeout S  seconds before a replayed case is a hang (default 60)

Each ``finding.json`` under those paths is collected as one item,
``<finding dir>/finding.json::replay``, marked ``moefuzz`` (``-m moefuzz`` runs only those;
``-k`` matches the target and finding directory names). The item runs the saved case in an
isolated worker, as ``moefuzz replay`` does (one worker per target and kernel, reused by
consecutive items), and passes when the kernel now agrees with the oracle. When the case fails in
any way, the item fails with the one-line report (``signature: message``) followed by the
reproducer as ``moefuzz show --rerun`` prints it. A corrupt reproducer, or one of an unknown
target or kernel, fails its item with moefuzz's one-line error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moefuzz.errors import MoefuzzError

#: Marker of every replayed reproducer.
MARKER = "moefuzz"

_replayer_key = pytest.StashKey[Any]()
_roots_key = pytest.StashKey[list[Path]]()
_environ_key = pytest.StashKey[str | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("moefuzz", "moefuzz: replay saved reproducers as tests")
    group.addoption(
        "--moefuzz-corpus",
        action="append",
        default=[],
        metavar="PATH",
        help="Replay every reproducer under this corpus or finding directory (repeatable).",
    )
    group.addoption("--moefuzz-kernel", default=None, metavar="NAME", help="Replay against this kernel.")
    group.addoption(
        "--moefuzz-device", default="auto", choices=("auto", "cuda", "cpu"), help="Device of the replays (auto)."
    )
    group.addoption(
        "--moefuzz-targets",
        action="append",
        default=[],
        metavar="PATH_OR_MODULE",
        help="Also load moefuzz targets from this file, package directory or module (repeatable).",
    )
    group.addoption(
        "--moefuzz-case-timeout", type=float, default=60.0, metavar="S", help="Seconds before a case is a hang (60)."
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a moefuzz reproducer replayed from a corpus")
    roots = [Path(config.invocation_params.dir, p).resolve() for p in config.getoption("moefuzz_corpus")]
    for given, root in zip(config.getoption("moefuzz_corpus"), roots, strict=True):
        if not root.exists():
            raise pytest.UsageError(f"--moefuzz-corpus: no such path={given!r}")
    config.stash[_roots_key] = roots
    collected = [Path(config.invocation_params.dir, arg.split("::")[0]).resolve() for arg in config.args]
    for root in roots:
        if not any(_within(root, path) for path in collected):
            config.args.append(str(root))
    specs = config.getoption("moefuzz_targets")
    if specs:
        from moefuzz.model.registry import TARGETS_ENV, add_target_specs

        config.stash[_environ_key] = os.environ.get(TARGETS_ENV)
        add_target_specs(specs)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _environ_key in config.stash:
        from moefuzz.model.registry import TARGETS_ENV

        previous = config.stash[_environ_key]
        if previous is None:
            os.environ.pop(TARGETS_ENV, None)
        else:
            os.environ[TARGETS_ENV] = previous


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ReproducerFile | None:
    roots = parent.config.stash.get(_roots_key, [])
    if not roots:
        return None
    from moefuzz.store.corpus import FINDING_FILE

    if file_path.name == FINDING_FILE and any(_within(file_path, root) for root in roots):
        return ReproducerFile.from_parent(parent, path=file_path)
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    replayer = session.config.stash.get(_replayer_key, None)
    if replayer is not None:
        replayer.close()


class ReproducerFile(pytest.File):
    """A ``finding.json``: one reproducer, collected as one item."""

    def collect(self) -> Iterator[pytest.Item]:
        item = ReproducerItem.from_parent(self, name="replay")
        item.add_marker(MARKER)
        yield item


class ReproducerItem(pytest.Item):
    """One saved reproducer, replayed."""

    def runtest(self) -> None:
        from moefuzz.store.corpus import load_finding
        from moefuzz.ui.render import render_finding

        directory = self.path.parent
        try:
            finding = load_finding(directory)
            result = _replayer(self.config).replay(directory, finding)
        except MoefuzzError as exc:
            pytest.fail(f"moefuzz: {exc}", pytrace=False)
        if result.outcome.kind in ("harness", "resource"):  # not the kernel's: neither pass nor fail
            pytest.fail(
                f"moefuzz: not run to the end: {result.outcome.signature}: {result.outcome.message}", pytrace=False
            )
        if result.outcome.failed:
            outcome = result.outcome
            headline = f"{outcome.signature}: {outcome.message} [kernel {result.kernel}]"
            pytest.fail(f"{headline}\n\n{render_finding(finding, outcome)}", pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"moefuzz replay {self.path.parent.name}"


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _replayer(config: pytest.Config) -> Any:
    if _replayer_key not in config.stash:
        from moefuzz.store.replay import Replayer

        config.stash[_replayer_key] = Replayer(
            config.getoption("moefuzz_kernel"),
            config.getoption("moefuzz_device"),
            config.getoption("moefuzz_case_timeout"),
        )
    return config.stash[_replayer_key]
