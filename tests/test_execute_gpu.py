"""On a GPU: the copy back of a launch's outputs (pinned host buffers, one synchronize) returns
what ``tensor.cpu()`` returns, after the queued work is done. Skipped without CUDA.

    python3 -m pytest -q tests/test_execute_gpu.py
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moefuzz.execute.inprocess import copy_back

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="the pinned copy back is CUDA's"),
]
CUDA = torch.device("cuda")


def test_copy_back_returns_what_cpu_returns_for_every_dtype_and_shape():
    outputs = {
        "sorted_token_ids": torch.randint(-1, 1 << 20, (1031,), dtype=torch.int32, device=CUDA),
        "expert_first_token_offset": torch.arange(257, dtype=torch.int64, device=CUDA),
        "topk_weights": torch.randn(513, 8, device=CUDA),
        "half": torch.randn(3, 5, device=CUDA, dtype=torch.float16),
        "empty": torch.empty(0, 4, dtype=torch.int32, device=CUDA),
        "strided": torch.arange(64, dtype=torch.int32, device=CUDA).view(8, 8).t(),
    }
    host = copy_back(outputs, CUDA)
    assert list(host) == list(outputs)
    for name, tensor in outputs.items():
        expected = tensor.cpu().numpy()
        assert host[name].dtype == expected.dtype and host[name].shape == expected.shape, name
        assert np.array_equal(host[name], expected), name


def test_copy_back_waits_for_every_queued_kernel():
    x = torch.zeros(1 << 22, device=CUDA)
    y = torch.zeros(7, dtype=torch.int32, device=CUDA)
    for _ in range(200):  # milliseconds of queued work before the copies
        x.add_(1)
    y.fill_(200)
    host = copy_back({"x": x, "y": y}, CUDA)
    assert (host["x"] == 200).all() and (host["y"] == 200).all()
