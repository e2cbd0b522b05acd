"""README.md opens with the two commands, and CI runs the second one."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bash_blocks(text: str) -> list[str]:
    blocks, inside, current = [], False, []
    for line in text.splitlines():
        if line.startswith("```bash"):
            inside, current = True, []
        elif line.startswith("```") and inside:
            inside = False
            blocks.append("\n".join(current).strip())
        elif inside:
            current.append(line)
    return blocks


def test_readme_starts_with_the_install_and_run_command_then_the_test_command():
    blocks = bash_blocks((ROOT / "README.md").read_text())
    run, test = blocks[0], blocks[1]
    assert "moefuzz run --target three_step_sort --kernel bug-duplicate-topk --time 2m" in run
    assert "torch==2.13.0" in run and "torch==2.13.0" in test
    assert "pytest" in test


def test_ci_runs_the_readme_test_command():
    test = bash_blocks((ROOT / "README.md").read_text())[1]
    assert test in (ROOT / ".ci" / "run").read_text()
