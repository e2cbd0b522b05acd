"""JSON and JUnit XML reports of run and replay: valid, counted, and what they claim."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from fake_corpus import CASE, build_fake_corpus
from test_cli import moefuzz

from moefuzz.engine.campaign import CampaignConfig, CampaignStatus
from moefuzz.store.corpus import Finding
from moefuzz.ui.reports import junit_xml, run_document, write_reports

ROOT = Path(__file__).resolve().parent.parent

RUN_KEYS = {"format", "format_version", "command", "target", "kernel", "device", "duration_s", "execs", "findings"}
FINDING_KEYS = {"id", "kind", "signature", "path", "size", "original_size", "message", "report"}


def a_campaign(findings: int, known: int) -> tuple[CampaignConfig, CampaignStatus]:
    config = CampaignConfig("fake_sort", "miscount-duplicates", 60.0, Path("corpus"))
    status = CampaignStatus("fake_sort", "miscount-duplicates", device="NVIDIA H200", device_kind="cuda")
    status.execs = 321
    for index in range(findings):
        finding = Finding("fake_sort", "miscount-duplicates", "divergence", f"out{index}", "differs", CASE, CASE)
        finding.shrink = {"size": [5, 2], "original_size": [1026, 8], "complete": True}
        status.findings.append((Path("corpus/fake_sort") / finding.finding_id, finding))
    status.matched = {f"miscount-duplicates--crash-SIGSEGV{i}": 3 for i in range(known)}
    status.known = 3 * known
    return config, status


def parse_junit(data: bytes) -> ET.Element:
    suites = ET.fromstring(data)
    assert suites.tag == "testsuites"
    return suites.find("testsuite")


def test_a_run_report_lists_each_finding_with_kind_signature_path_and_shrunk_size():
    document = json.loads(json.dumps(run_document(*a_campaign(findings=2, known=1), 1.7e9, 61.5)))
    assert RUN_KEYS <= set(document) and document["format"] == "moefuzz-report" and document["format_version"] == 1
    assert (document["device"], document["execs"], document["duration_s"]) == ("NVIDIA H200", 321, 61.5)
    assert [f["signature"] for f in document["findings"]] == ["divergence:out0", "divergence:out1"]
    assert FINDING_KEYS <= set(document["findings"][0]) and document["findings"][0]["size"] == [5, 2]
    assert document["known"] == [
        {"id": "miscount-duplicates--crash-SIGSEGV0", "path": "corpus/fake_sort/miscount-duplicates--crash-SIGSEGV0",
         "count": 3}
    ]  # fmt: skip
    suite = parse_junit(junit_xml(document))
    assert (suite.get("tests"), suite.get("failures")) == ("3", "3")
    failure = suite.find("testcase/failure")
    assert failure.get("message") == "divergence:out0: differs" and failure.get("type") == "divergence"
    assert "token_selected_experts: int32 [5, 2]" in failure.text


def test_a_run_without_failures_is_one_passing_testcase():
    document = run_document(*a_campaign(findings=0, known=0), 1.7e9, 60.0)
    assert document["passed"] is True and document["findings"] == [] and document["known"] == []
    suite = parse_junit(junit_xml(document))
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    assert suite.find("testcase").get("name") == "campaign" and suite.find("testcase/failure") is None


def test_reports_are_written_whole_into_new_directories(tmp_path):
    document = run_document(*a_campaign(findings=1, known=0), 1.7e9, 60.0)
    write_reports(document, tmp_path / "a" / "r.json", tmp_path / "b" / "r.xml")
    assert json.loads((tmp_path / "a" / "r.json").read_text()) == json.loads(json.dumps(document))
    assert parse_junit((tmp_path / "b" / "r.xml").read_bytes()).get("failures") == "1"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["r.json", "r.xml"]  # no temporaries left


def test_replay_writes_one_testcase_per_reproducer_failing_only_the_one_that_still_fails(tmp_path):
    failing, passing = build_fake_corpus(tmp_path / "corpus")
    result = moefuzz(
        "replay", "corpus", "--targets", str(ROOT / "tests" / "fake_targets.py"), "--device", "cpu",
        "--json", "out/replay.json", "--junit-xml", "out/replay.xml", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    document = json.loads((tmp_path / "out" / "replay.json").read_text())
    assert document["command"] == "replay" and (document["tests"], document["failures"]) == (2, 1)
    by_id = {r["id"]: r for r in document["results"]}
    assert by_id[failing.name]["passed"] is False and by_id[failing.name]["outcome"].startswith("divergence:")
    now_passing = by_id[passing.name]
    assert (now_passing["passed"], now_passing["outcome"], now_passing["kernel"]) == (True, "pass", "correct")
    suite = parse_junit((tmp_path / "out" / "replay.xml").read_bytes())
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failed = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failed] == [f"corpus/fake_sort/{failing.name} [miscount-duplicates]"]
    assert "tri_expert_first_token_offset=" in failed[0].find("failure").get("message")
