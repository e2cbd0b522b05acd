"""SIGTERM and SIGINT through the real CLI: the campaign stops, what it found is saved, the
reports are written, no process of it is left, and the exit status says which signal."""

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def session_members(sid: int) -> list[int]:
    """Pids of the live processes of session ``sid`` (from /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, session
            members.append(int(stat.parent.name))
    return members


def wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_campaign_saves_writes_the_reports_and_leaves_no_process(tmp_path, fake_targets, signum, status):
    corpus, report, junit = tmp_path / "corpus", tmp_path / "run.json", tmp_path / "run.xml"
    args = ["run", "--target", "fake_sort", "--kernel", "abort-on-duplicate", "--time", "5m", "--device", "cpu"]
    args += ["--corpus", str(corpus), "--json", str(report), "--junit-xml", str(junit)]
    env = {**os.environ, "MOEFUZZ_TARGETS": fake_targets}
    process = subprocess.Popen(
        [sys.executable, "-m", "moefuzz", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert wait_for(lambda: any(corpus.glob("fake_sort/*/finding.json")), 60), "no finding saved"
        time.sleep(0.5)  # fuzzing (and shrinking) under way
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == status, err
    assert f"interrupted by {signal.Signals(signum).name}" in err
    document = json.loads(report.read_text())
    assert document["interrupted"] == signal.Signals(signum).name
    assert document["findings"] and document["findings"][0]["signature"] == "crash:SIGABRT"
    ET.parse(junit)
    assert "saved " in out
    assert wait_for(lambda: not session_members(process.pid), 15), session_members(process.pid)


def _signal_self_then(original, signum):
    """``original`` wrapped so that the process sends itself ``signum`` just before it runs."""

    def wrapped(*args, **kwargs):
        os.kill(os.getpid(), signum)
        return original(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize(
    ("moment", "in_report"),
    # Once the report is being built, the campaign it describes was not cut short.
    [("while its workers close", "SIGTERM"), ("while its reports are built", None)],
)
def test_a_sigterm_after_fuzzing_ended_still_gets_the_reports_written_and_exit_143(
    tmp_path, fake_targets, monkeypatch, moment, in_report
):
    from click.testing import CliRunner

    from moefuzz.engine.scheduler import Campaign
    from moefuzz.ui import reports
    from moefuzz.ui.cli import main

    if moment == "while its workers close":
        monkeypatch.setattr(Campaign, "close", _signal_self_then(Campaign.close, signal.SIGTERM))
    else:
        monkeypatch.setattr(reports, "run_document", _signal_self_then(reports.run_document, signal.SIGTERM))
    report = tmp_path / "run.json"
    args = ["run", "--target", "fake_sort", "--kernel", "miscount-duplicates", "--time", "3s", "--device", "cpu"]
    args += ["--shrink-time", "10s", "--corpus", str(tmp_path / "corpus"), "--json", str(report)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 143, result.output
    assert "interrupted by SIGTERM" in result.output
    document = json.loads(report.read_text())
    assert document["interrupted"] == in_report
    assert document["findings"] and document["findings"][0]["signature"].startswith("divergence:")
    assert list((tmp_path / "corpus").rglob("finding.json"))
