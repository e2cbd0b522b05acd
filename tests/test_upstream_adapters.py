"""benchmarks/upstream: the loader's stand-ins, the domain fallback, and the fetched kernels on
small cases (those tests skip where ``benchmarks/upstream/fetch.sh`` has not run).

Runs on a GPU when there is one, else under the Triton interpreter (tests/conftest.py).
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from benchmarks.upstream import _support
from benchmarks.upstream.check import ADAPTERS
from moefuzz.execute.inprocess import launch_kernel, oracle_outputs
from moefuzz.model.registry import get_target
from moefuzz.model.target import Limits, resolve_entry

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
SMALL = Limits(max_tokens=48, max_topk=4, max_experts=16)


def test_load_upstream_imports_a_file_with_stand_ins_and_removes_them(tmp_path, monkeypatch):
    (tmp_path / "proj-1.0" / "proj").mkdir(parents=True)
    (tmp_path / "proj-1.0" / "proj" / "kernels.py").write_text(
        "from proj_fake.srt.utils import ceil_div\nVALUE = ceil_div(7, 2)\n"
    )
    monkeypatch.setenv("MOEFUZZ_UPSTREAM_DIR", str(tmp_path))
    module = _support.load_upstream(
        "proj-1.0", "proj/kernels.py", {"proj_fake.srt.utils": {"ceil_div": lambda a, b: -(-a // b)}}
    )
    assert module.VALUE == 4
    assert not any(name.startswith("proj_fake") for name in sys.modules)
    assert _support.load_upstream("proj-1.0", "proj/kernels.py") is module
    del sys.modules[module.__name__]


def test_load_upstream_names_fetch_sh_when_the_file_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEFUZZ_UPSTREAM_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"fetch\.sh"):
        _support.load_upstream("nothing-0.0", "nothing/kernels.py")


def draw(target_name: str, domain, count: int) -> list:
    """Up to ``count`` small seeded cases of the target inside ``domain``."""
    cases: list = []

    @hypothesis_seed(1)
    @settings(
        max_examples=20 * count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(get_target(target_name).strategy(SMALL))
    def collect(case) -> None:
        if len(cases) < count and domain(case):
            cases.append(case)

    collect()
    return cases


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_upstream_kernel_agrees_with_the_oracle_on_small_cases_of_its_domain(adapter):
    module = importlib.import_module(f"benchmarks.upstream.{adapter}")
    try:
        module.upstream() if hasattr(module, "upstream") else _support.load_upstream(module.RELEASE, module.SOURCE)
    except FileNotFoundError:
        pytest.skip("upstream sources not fetched (benchmarks/upstream/fetch.sh)")
    target = get_target(module.TARGET.name)
    kernel = module.TARGET.kernels[-1]
    cases = draw(target.name, module.domain, 4)
    assert cases, "no small case inside the domain"
    for case in cases:
        target.check(case)
        tri = launch_kernel(resolve_entry(kernel.entry), target.output_specs(case), case, DEVICE)
        mismatch = target.compare(case, tri, oracle_outputs(resolve_entry(target.oracle), case))
        assert mismatch is None, f"{case.describe()}\n{mismatch.headline()}"


def test_outside_domain_writes_the_oracle_outputs_without_launching():
    module = importlib.import_module("benchmarks.upstream.sglang_alloc_decode")
    target = get_target("alloc_extend")
    extend_cases = draw("alloc_extend", lambda case: not module.domain(case), 1)
    case = extend_cases[0]
    if _support.takes_domains():
        pytest.skip("moefuzz takes kernel domains: it never launches a case outside one")
    tri = launch_kernel(module.sglang_alloc_decode, target.output_specs(case), case, DEVICE)
    expected = oracle_outputs(resolve_entry(target.oracle), case)
    assert np.array_equal(tri["out_indices"], expected["out_indices"])
