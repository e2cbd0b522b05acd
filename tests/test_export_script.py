"""Exported reproducers run in a fresh interpreter where moefuzz cannot be imported.

Each script runs as ``python repro.py`` with ``PYTHONPATH`` = a directory whose
``sitecustomize.py`` makes any import of moefuzz fail, then the repository root (for
``targets``); ``TRITON_INTERPRET`` is unset, so the script must set it itself on a CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moefuzz.engine.campaign import CampaignConfig, run_campaign
from moefuzz.ui.export import export_finding

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
THREE_STEP_FINDING = ROOT / "corpus" / "three_step_sort" / "bug-duplicate-topk--divergence-expert_first_token_offset"

BLOCK_MOEFUZZ = '''
import sys

class _NoMoefuzz:
    """Any import of moefuzz fails, as where only torch, triton and numpy are installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "moefuzz" or name.startswith("moefuzz."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, _NoMoefuzz())
'''


@pytest.fixture(scope="module")
def no_moefuzz_env(tmp_path_factory):
    blocker = tmp_path_factory.mktemp("block")
    (blocker / "sitecustomize.py").write_text(BLOCK_MOEFUZZ)
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "MOEFUZZ_TARGETS")}
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(ROOT)])
    probe = subprocess.run([sys.executable, "-c", "import moefuzz"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked by the test" in probe.stderr
    return env


def run_script(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, script.name, *args], cwd=script.parent, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_cli_exports_the_committed_reproducer_and_the_script_shows_the_divergence(tmp_path, no_moefuzz_env):
    cli = subprocess.run(
        [sys.executable, "-m", "moefuzz.ui.cli", "export", str(THREE_STEP_FINDING), "-o", str(tmp_path / "repro.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert "warning" not in cli.stderr
    assert not (tmp_path / "repro.npz").exists()  # a 257x2 table is written inline
    result = run_script(tmp_path / "repro.py", no_moefuzz_env)
    assert result.returncode == 1, result.stderr
    assert "device: cpu: Triton interpreter on CPU (TRITON_INTERPRET=1, no GPU present)" in result.stdout
    assert "expert_first_token_offset[1]: tri_expert_first_token_offset=1 ref_expert_first_token_offset=2" in (
        result.stdout
    )


def test_the_correct_kernel_passes_the_script_with_its_large_arrays_read_from_the_npz(tmp_path, no_moefuzz_env):
    exported = export_finding(THREE_STEP_FINDING, tmp_path / "fixed.py", kernel="triton", inline_max=16)
    assert exported.npz == tmp_path / "fixed.npz" and exported.npz.exists()
    assert "from_npz('token_selected_experts', 'fixed.npz')" in exported.script.read_text()
    result = run_script(exported.script, no_moefuzz_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: the kernel's 4 outputs equal the oracle's on every checked entry" in result.stdout


def test_a_freshly_found_moe_align_bug_exports_to_a_script_that_fails_on_it(tmp_path, no_moefuzz_env):
    config = CampaignConfig(
        "moe_align_block_size", "bug-negative-id", duration_s=8, corpus=tmp_path / "corpus", seed=1, shrink_budget_s=20
    )
    status = run_campaign(config)
    assert status.findings, "the campaign found nothing to export"
    path, finding = status.findings[0]
    exported = export_finding(path, tmp_path / "repro.py")
    assert exported.moefuzz_imports == []
    result = run_script(exported.script, no_moefuzz_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DIVERGENCE (tri_* = kernel, ref_* = oracle)" in result.stdout
    assert f"tri_{finding.mismatch.output}=" in result.stdout
