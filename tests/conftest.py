"""Test setup: the repository root on sys.path, and the Triton interpreter when there is no GPU.

``TRITON_INTERPRET`` is read when triton is imported, so it is set here, before any test module
imports a kernel.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"


import pytest  # noqa: E402

FAKE_TARGETS = str(ROOT / "tests" / "fake_targets.py")


@pytest.fixture
def fake_targets(monkeypatch):
    """Make the ``fake_sort`` test-double target visible to the registry and to workers."""
    monkeypatch.setenv("MOEFUZZ_TARGETS", FAKE_TARGETS)
    return FAKE_TARGETS


@pytest.fixture
def executor_of(fake_targets):
    """``executor_of(kernel, **kwargs)``: a started Executor of a ``fake_sort`` test double on the
    CPU, closed after the test."""
    from moefuzz.runtime.isolation import Executor

    executors = []

    def make(kernel, **kwargs):
        executor = Executor("fake_sort", kernel, "cpu", **kwargs)
        executor.start()
        executors.append(executor)
        return executor

    yield make
    for executor in executors:
        executor.close()
