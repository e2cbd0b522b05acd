"""Finding text is data: in an exported script it reaches no code (a message holding ``\"\"\"``,
newlines and NUL stays inside strings and comments), and in a JUnit report it stays XML."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from moefuzz.store.corpus import Finding, load_finding, save_finding
from moefuzz.ui.export import export_finding
from moefuzz.ui.reports import junit_xml

ROOT = Path(__file__).resolve().parent.parent
THREE_STEP_FINDING = ROOT / "corpus" / "three_step_sort" / "bug-duplicate-topk--divergence-expert_first_token_offset"

#: Each line, if it ever became code, would create a file named INJECTED_*.
PAYLOAD = (
    'x"""\nopen("INJECTED_NEWLINE", "w")\n"""\x00 \\N{BULLET} \\\n'
    "open('INJECTED_CR', 'w')\r\u2028open('INJECTED_LS', 'w')\x0c# \x1b[31m'''"
)


def hostile_finding(text: str) -> Finding:
    """The committed three_step_sort reproducer with ``text`` in every string it carries."""
    finding = load_finding(THREE_STEP_FINDING)
    finding.detail += text
    finding.message += text
    finding.explanation = text + "\nsecond line " + text
    finding.environment = {"device_name": text, "torch": text}
    return finding


def shape_of(script: str) -> str:
    """The script's syntax tree with every string constant blanked: what runs, not what it says."""
    tree = ast.parse(script)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree)


def test_an_exported_script_keeps_hostile_finding_text_out_of_its_code(tmp_path):
    scripts = {}
    for name, text in (("plain", "plain text"), ("hostile", PAYLOAD)):
        directory = save_finding(tmp_path / name, hostile_finding(text))
        scripts[name] = export_finding(directory, tmp_path / f"{name}.py").script.read_text()
    hostile = scripts["hostile"]
    assert "\x00" not in hostile and "\r" not in hostile and "\u2028" not in hostile and "\x1b" not in hostile
    assert shape_of(hostile) == shape_of(scripts["plain"])
    assert PAYLOAD in ast.literal_eval(hostile.split("recorded=", 1)[1].split("\n", 1)[0].rstrip(","))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "hostile.py", "--device", "cpu"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr  # the divergence, shown; nothing else ran
    assert "DIVERGENCE" in run.stdout
    assert not list(tmp_path.glob("INJECTED*"))


def test_a_junit_report_with_control_characters_in_messages_parses(tmp_path):
    message = "tri=1\x00\x1b[31m ref=2\x0b\ufffe"
    document = {
        "command": "replay",
        "duration_s": 1.0,
        "started_at": "2026-12-03T00:00:00+00:00",
        "device": "cpu\x00",
        "results": [
            {"target": "t", "path": "p\x01", "kernel": "k", "seconds": 0.1, "passed": False,
             "outcome": "divergence:x\x02", "message": message, "report": "report\x00\nline 2"},
        ],
    }  # fmt: skip
    root = ET.fromstring(junit_xml(document))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == "divergence:x\\x02: tri=1\\x00\\x1b[31m ref=2\\x0b\\ufffe"
    assert failure.text == "report\\x00\nline 2"
    assert root.find("testsuite/testcase").get("name") == "p\\x01 [k]"
