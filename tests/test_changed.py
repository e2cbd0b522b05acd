"""`moefuzz changed`: the kernels a change touches, following repository imports without
importing anything."""

import os
import subprocess
import sys
from pathlib import Path

from moefuzz.ui.changed import touched_kernels
from moefuzz_targets.three_step_sort import TARGET as THREE_STEP_SORT

ROOT = Path(__file__).resolve().parent.parent

#: A kernel repository: two kernels sharing a helper through a relative import, and a plugin.
FILES = {
    "my_kernels/__init__.py": "",
    "my_kernels/common.py": "import triton\nBLOCK = 128\n",
    "my_kernels/sort.py": "import torch\nfrom .common import BLOCK\n\ndef run(ctx):\n    pass\n",
    "my_kernels/histogram.py": "import torch\n\ndef run(ctx):\n    pass\n",
    "my_targets.py": (
        "from moefuzz_targets.three_step_sort import TARGET as T\n"
        "TARGET = T.with_kernel('mine', 'my_kernels.sort:run').with_kernel('hist', 'my_kernels.histogram:run')\n"
    ),
    "README.md": "docs\n",
}


def a_repository(root: Path) -> Path:
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_change_touches_the_kernels_that_import_the_changed_file(tmp_path, monkeypatch):
    root = a_repository(tmp_path)
    monkeypatch.syspath_prepend(str(root))
    target = THREE_STEP_SORT.with_kernel("mine", "my_kernels.sort:run").with_kernel("hist", "my_kernels.histogram:run")

    def touched(*paths):
        return touched_kernels([target], [Path(p) for p in paths], root)

    assert touched("my_kernels/common.py") == [("three_step_sort", "mine")]  # through `from .common import`
    assert touched("my_kernels/histogram.py") == [("three_step_sort", "hist")]
    assert touched("my_kernels/__init__.py") == [("three_step_sort", "mine"), ("three_step_sort", "hist")]
    assert touched("README.md") == [] and touched() == []
    assert not any(name.startswith("my_kernels") for name in sys.modules)  # read, never imported


def test_a_contract_change_touches_every_kernel_but_the_bug_models(tmp_path):
    touched = touched_kernels([THREE_STEP_SORT], [Path("moefuzz_targets/three_step_sort/contract.py")], ROOT)
    assert touched == [("three_step_sort", "triton"), ("three_step_sort", "cuda")]
    assert touched_kernels([THREE_STEP_SORT], [Path("moefuzz_targets/three_step_sort/contract.py")], tmp_path) == []


def test_the_cli_reads_the_changed_paths_from_stdin_and_prints_target_and_kernel(tmp_path):
    root = a_repository(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "MOEFUZZ_TARGETS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(root)])
    result = subprocess.run(
        [sys.executable, "-m", "moefuzz.ui.cli", "changed", "-", "--targets", "my_targets.py"],
        input="README.md\nmy_kernels/common.py\n", cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "three_step_sort mine\n"
