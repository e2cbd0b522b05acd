"""The tracked tree holds no merge-conflict markers and no paths of the machines it was built on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = {".py", ".md", ".sh", ".toml", ".yml", ".yaml", ".txt", ".json", ".jsonl", ".cu", ".cfg", ""}
MARKER = re.compile(r"^(<<<<<<< |>>>>>>> |=======$)", re.MULTILINE)
#: First components of the absolute paths of the hosts this was built and benchmarked on.
MACHINE_ROOTS = ("work/", "root/", "opt/torch", r"home/\w+/")
MACHINE_PATH = re.compile("|".join(f"/{root}" for root in MACHINE_ROOTS))


def tracked_text_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    paths = [ROOT / name for name in names.splitlines()]
    return [p for p in paths if p.suffix in TEXT_SUFFIXES and p.is_file() and p.name != Path(__file__).name]


def test_no_tracked_file_holds_a_merge_conflict_marker():
    marked = [p for p in tracked_text_files() if MARKER.search(p.read_text(errors="replace"))]
    assert [str(p.relative_to(ROOT)) for p in marked] == []


def test_no_tracked_file_names_a_machine_path():
    assert [
        str(p.relative_to(ROOT)) for p in tracked_text_files() if MACHINE_PATH.search(p.read_text(errors="replace"))
    ] == []
