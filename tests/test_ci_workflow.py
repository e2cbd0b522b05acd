"""ci/moefuzz.yml is a well-formed workflow whose every moefuzz command the CLI accepts, and so
are the moefuzz commands of the README's shell blocks."""

import re
import shlex
from pathlib import Path

import pytest

from moefuzz.ui.cli import main

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "ci" / "moefuzz.yml"
#: Shell tokens that end a simple command (or start a redirection, which ends its arguments).
STOPS = {";", "&&", "||", "|", ">", "<", ">>", "2>", "&", "then", "do", "else", "fi", "done"}


def moefuzz_commands(script: str) -> list[list[str]]:
    """The argument lists of every ``moefuzz ...`` simple command in a shell script."""
    script = re.sub(r"\\\n", " ", script)
    commands = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, "#"
        tokens = list(lexer)
        for index, token in enumerate(tokens):
            if token == "moefuzz" and (index == 0 or tokens[index - 1] in STOPS):
                args = []
                for arg in tokens[index + 1 :]:
                    if arg in STOPS:
                        break
                    args.append(arg)
                commands.append(args)
    return commands


def assert_valid_invocation(args: list[str]) -> None:
    """Parse ``moefuzz ARGS`` exactly as click will (options, choices, required ones)."""
    assert args and args[0] in main.commands, f"unknown moefuzz command in {args}"
    main.commands[args[0]].make_context(args[0], args[1:])


def workflow_run_scripts() -> list[str]:
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(WORKFLOW.read_text())
    return [step["run"] for job in document["jobs"].values() for step in job["steps"] if "run" in step]


def test_the_workflow_replays_then_fuzzes_changed_kernels_on_pull_requests_and_uploads_reproducers():
    text = WORKFLOW.read_text()
    try:
        import yaml
    except ImportError:  # no PyYAML: the same facts, read from the text
        assert re.search(r"^jobs:\n  replay:\n", text, re.M) and re.search(r"^  fuzz:\n    name:", text, re.M)
        assert "needs: replay" in text and "github.event_name == 'pull_request'" in text
        assert "name: moefuzz-new-reproducers" in text
        return
    document = yaml.safe_load(text)
    assert set(document[True]) >= {"pull_request", "push"}  # YAML 1.1 reads the key `on` as True
    replay, fuzz = document["jobs"]["replay"], document["jobs"]["fuzz"]
    assert fuzz["needs"] == "replay" and "pull_request" in fuzz["if"]
    uploads = {
        step["with"]["name"]: step for step in fuzz["steps"] if step.get("uses", "").startswith("actions/upload")
    }
    assert uploads["moefuzz-new-reproducers"]["if"] == "always()"
    assert all(step.get("uses", "").startswith("actions/") for job in (replay, fuzz) for step in job["steps"]
               if "uses" in step)  # fmt: skip


def test_every_moefuzz_command_of_the_workflow_is_a_valid_invocation():
    commands = [args for script in workflow_run_scripts() for args in moefuzz_commands(script)]
    assert [args[0] for args in commands] == ["replay", "changed", "run"]
    for args in commands:
        assert_valid_invocation(args)
    run = commands[-1]
    assert "--junit-xml" in run and "--json" in run and "--corpus" in run


def test_every_moefuzz_command_of_the_readme_shell_blocks_is_a_valid_invocation():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    commands = [args for block in blocks for args in moefuzz_commands(block)]
    assert {"run", "targets", "replay"} <= {args[0] for args in commands}
    for args in commands:
        assert_valid_invocation(args)


def test_an_invalid_invocation_is_caught_by_the_same_check():
    import click

    for args in (["run", "--target", "x"], ["replay", "corpus", "--jsonn", "r.json"], ["run", "--device", "tpu"]):
        with pytest.raises(click.ClickException):
            assert_valid_invocation(args)
    assert moefuzz_commands("x && moefuzz replay a \\\n  --json r.json > out || status=1") == [
        ["replay", "a", "--json", "r.json"]
    ]
