"""User targets: a kernel added to a built-in contract, a new contract, loaded from a path, a
module name and an entry point, down to the workers; broken plugins are one-line errors."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from moefuzz.errors import UsageError
from moefuzz.model.registry import builtin_targets, get_target
from moefuzz.store.corpus import load_finding
from moefuzz_targets.three_step_sort import TARGET as THREE_STEP_SORT

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SORT_EXAMPLE = EXAMPLES / "my_sort_kernel.py"
#: The planted bug: an off-by-one that drops the first local expert.
CORRECT_LINE, BUGGY_LINE = "(ids >= start)", "(ids > start)"


def moefuzz(*args, cwd, pythonpath=(), timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "MOEFUZZ_TARGETS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *map(str, pythonpath)])
    return subprocess.run(
        [sys.executable, "-m", "moefuzz.ui.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def readme_section_block(heading: str, language: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(f"## {heading}\n") :]
    start = section.index(f"```{language}\n") + len(language) + 4
    return section[start : section.index("```", start)]


def write_dist_info(site: Path, entry_points: str) -> None:
    """An installed distribution as importlib.metadata finds it on sys.path: a dist-info folder."""
    info = site / "my_kernels_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-kernels-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[moefuzz.targets]\n{entry_points}\n")


def test_a_kernel_added_to_a_builtin_contract_from_a_path_joins_that_target(monkeypatch):
    monkeypatch.setenv("MOEFUZZ_TARGETS", str(SORT_EXAMPLE))
    target = get_target("three_step_sort")
    assert [k.name for k in target.kernels] == [k.name for k in THREE_STEP_SORT.kernels] + ["my-sort"]
    assert target.kernel("my-sort").entry == "moefuzz_user_targets_my_sort_kernel:my_sort"
    assert target.default_kernel.name == "triton" and target.oracle == THREE_STEP_SORT.oracle


def test_a_new_contract_from_a_module_name_is_a_target_of_its_own(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("MOEFUZZ_TARGETS", "my_contract")
    target = get_target("expert_counts")
    assert target.oracle == "my_contract:expert_counts_torch"
    assert [k.entry for k in target.kernels] == ["my_contract:my_counts"]


def test_with_kernel_refuses_what_a_worker_could_not_import_or_tell_apart():
    with pytest.raises(UsageError, match="cannot be imported by a worker"):
        THREE_STEP_SORT.with_kernel("mine", lambda ctx: None)
    with pytest.raises(UsageError, match="already has a kernel name='triton'"):
        THREE_STEP_SORT.with_kernel("triton", "my_module:my_kernel")
    with pytest.raises(UsageError, match="not 'module:function'"):
        THREE_STEP_SORT.with_kernel("mine", "my_module.my_kernel")
    added = THREE_STEP_SORT.with_kernel("mine", "my_module:my_kernel")
    assert added.kernel("mine").entry == "my_module:my_kernel" and THREE_STEP_SORT.kernels == added.kernels[:-1]


def test_a_target_name_reused_with_another_contract_is_refused(tmp_path, monkeypatch):
    plugin = tmp_path / "impostor.py"
    plugin.write_text(
        "import dataclasses\nfrom moefuzz_targets.three_step_sort import TARGET as T\n"
        "TARGET = dataclasses.replace(T, oracle='impostor:oracle')\n"
    )
    monkeypatch.setenv("MOEFUZZ_TARGETS", str(plugin))
    with pytest.raises(UsageError, match=r"targets='.*impostor.py' defines target='three_step_sort' with another"):
        builtin_targets()


@pytest.mark.slow
def test_a_target_from_an_entry_point_is_fuzzed_by_the_cli_and_its_workers(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "my_contract.py").write_text((EXAMPLES / "my_contract.py").read_text())
    write_dist_info(site, "my_contract = my_contract:TARGET")
    listed = moefuzz("targets", cwd=tmp_path, pythonpath=[site])
    assert listed.returncode == 0 and "expert_counts: tokens routed to each local expert" in listed.stdout
    run = moefuzz(
        "run", "--target", "expert_counts", "--time", "1s", "--device", "cpu", "--json", "run.json",
        cwd=tmp_path, pythonpath=[site],
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "run.json").read_text())  # the workers ran its kernel and oracle
    assert (report["target"], report["kernel"], report["findings"]) == ("expert_counts", "scatter-add", [])
    assert report["execs"] > 0


@pytest.mark.parametrize(
    ("plugin", "source", "message"),
    [
        ("missing.py", None, "cannot import targets='{tmp}/missing.py': no such file"),
        ("syntax.py", "x = (\n", "cannot import targets='{tmp}/syntax.py': SyntaxError"),
        (
            "raises.py",
            "raise RuntimeError('no GPU\\nsecond line')\n",
            "targets='{tmp}/raises.py': RuntimeError: no GPU",
        ),
        ("empty.py", "X = 1\n", "targets='{tmp}/empty.py' defines no target"),
        ("wrong.py", "TARGET = 3\n", "targets='{tmp}/wrong.py' holds int=3, not a moefuzz Target"),
        ("no_such_module", None, "cannot import targets='no_such_module': ModuleNotFoundError"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_it_and_exit_2(tmp_path, plugin, source, message):
    if source is not None:
        (tmp_path / plugin).write_text(source)
    result = moefuzz("targets", "--targets", plugin, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert message.format(tmp=tmp_path.resolve()) in result.stderr


def test_a_broken_entry_point_is_one_line_naming_it_and_exit_2(tmp_path):
    write_dist_info(tmp_path, "gone = no_such_package.targets")
    result = moefuzz("run", "--target", "three_step_sort", "--time", "1s", cwd=tmp_path, pythonpath=[tmp_path])
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot load entry point moefuzz.targets:gone='no_such_package.targets'" in result.stderr


@pytest.mark.slow
def test_the_readme_plugin_example_survives_a_campaign_and_its_planted_bug_is_found(tmp_path):
    assert readme_section_block("Fuzz your own kernel", "python") == SORT_EXAMPLE.read_text()
    command = ["--target", "three_step_sort", "--kernel", "my-sort", "--device", "cpu", "--shrink-time", "20s"]
    correct = moefuzz("run", "--targets", str(SORT_EXAMPLE), *command, "--time", "2s", cwd=tmp_path)
    assert correct.returncode == 0, correct.stdout + correct.stderr
    assert not (tmp_path / "moefuzz-corpus").exists()

    source = SORT_EXAMPLE.read_text()
    assert source.count(CORRECT_LINE) == 1
    (tmp_path / "my_sort_kernel.py").write_text(source.replace(CORRECT_LINE, BUGGY_LINE))
    buggy = moefuzz(
        "run", "--targets", "my_sort_kernel.py", *command, "--time", "3s",
        "--json", "report.json", "--junit-xml", "report.xml", cwd=tmp_path,
    )  # fmt: skip
    assert buggy.returncode == 1, buggy.stdout + buggy.stderr
    directory = tmp_path / "moefuzz-corpus" / "three_step_sort" / "my-sort--divergence-expert_first_token_offset"
    finding = load_finding(directory)
    # Shrunk to one token routed to the first local expert, the one the off-by-one drops.
    ids = finding.case.arrays["token_selected_experts"]
    assert ids.shape == (1, 1) and int(ids[0, 0]) == finding.case.params["start_expert"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["command"], report["target"], report["kernel"]) == ("run", "three_step_sort", "my-sort")
    assert report["findings"][0]["signature"] == "divergence:expert_first_token_offset"
    assert report["findings"][0]["size"] == finding.shrink["size"] and report["execs"] > 0
    suite = ET.parse(tmp_path / "report.xml").getroot().find("testsuite")
    assert int(suite.get("failures")) == int(suite.get("tests")) >= 1


def test_two_plugin_files_of_one_name_keep_their_own_kernels(tmp_path, monkeypatch):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "mine.py").write_text(
            "from moefuzz_targets.three_step_sort import TARGET as T\n\n\ndef run(ctx):\n    pass\n\n\n"
            f"TARGET = T.with_kernel('{folder}-kernel', run)\n"
        )
    monkeypatch.setenv("MOEFUZZ_TARGETS", f"{tmp_path / 'a' / 'mine.py'},{tmp_path / 'b' / 'mine.py'}")
    target = get_target("three_step_sort")
    first, second = target.kernel("a-kernel").entry, target.kernel("b-kernel").entry
    assert first == "moefuzz_user_targets_mine:run" and second.startswith("moefuzz_user_targets_mine_")
    assert sys.modules[first.partition(":")[0]].__file__ != sys.modules[second.partition(":")[0]].__file__
