"""One exit status per outcome, for every command: 0 clean, 1 failures, 2 bad input, 3 an
error of moefuzz, the harness or the environment, 130/143 interrupted."""

import errno
import signal

import pytest
from click.testing import CliRunner

from moefuzz.errors import CorpusError, HarnessError, UsageError, WorkerError
from moefuzz.runtime.stopping import Interrupted
from moefuzz.ui.cli import main
from moefuzz.ui.cli_common import EXIT_STATUSES, exit_status


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (UsageError("x"), 2),
        (CorpusError("x"), 2),
        (HarnessError("x"), 3),
        (WorkerError("x"), 3),
        (RuntimeError("x"), 3),
        (OSError(errno.ENOSPC, "No space left on device"), 3),
        (KeyboardInterrupt(), 130),
        (Interrupted(signal.SIGTERM), 143),
        (Interrupted(signal.SIGINT), 130),
    ],
)
def test_each_error_maps_to_its_documented_exit_status(exc, status):
    assert exit_status(exc) == status
    assert status in dict(EXIT_STATUSES)


def _raising(exc):
    def load_finding(path):
        raise exc

    return load_finding


def test_an_unexpected_traceback_is_one_line_exit_3_and_a_traceback_file(tmp_path, monkeypatch):
    monkeypatch.setattr("moefuzz.store.corpus.load_finding", _raising(ZeroDivisionError("boom")))
    result = CliRunner().invoke(main, ["show", str(tmp_path)])
    assert result.exit_code == 3
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("moefuzz: error: ZeroDivisionError: boom (traceback in ")
    traceback_file = line.rsplit("traceback in ", 1)[1].rstrip(")")
    assert "ZeroDivisionError" in open(traceback_file).read()


def test_a_full_disk_is_exit_3(tmp_path, monkeypatch):
    monkeypatch.setattr("moefuzz.store.corpus.load_finding", _raising(OSError(errno.ENOSPC, "No space left")))
    result = CliRunner().invoke(main, ["show", str(tmp_path)])
    assert result.exit_code == 3
    assert "the disk refused a write" in result.output


def test_ctrl_c_in_any_command_is_exit_130(tmp_path, monkeypatch):
    monkeypatch.setattr("moefuzz.store.corpus.load_finding", _raising(KeyboardInterrupt()))
    result = CliRunner().invoke(main, ["show", str(tmp_path)])
    assert result.exit_code == 130
    assert "interrupted by SIGINT" in result.output


def test_help_lists_the_exit_statuses():
    for args in (["--help"], ["run", "--help"], ["replay", "--help"]):
        text = CliRunner().invoke(main, args).output
        assert "143 interrupted by SIGTERM" in " ".join(text.split())


def test_a_harness_error_stops_the_campaign_with_exit_3_and_saves_nothing(tmp_path, fake_targets):
    args = ["run", "--target", "fake_sort_broken_compare", "--time", "60s", "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "--corpus", str(tmp_path / "corpus")])
    assert result.exit_code == 3, result.output
    assert "compare raised KeyError" in result.output
    assert "not a kernel finding" in result.output
    assert not list((tmp_path / "corpus").rglob("finding.json"))
