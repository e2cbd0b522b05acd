"""On a GPU: every copy mode of a launch (:data:`moefuzz.execute.COPY_MODES`) moves what
``.to(device)`` and ``tensor.cpu()`` move, after the queued work is done, and a reused staging
buffer never leaks one launch's arrays into another's. Skipped without CUDA.

    python3 -m pytest -q tests/test_execute_gpu.py
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import moefuzz.execute
from moefuzz.execute import COPY_MODES, copy_back, copy_in

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="the pinned copy back is CUDA's"),
]
CUDA = torch.device("cuda")


@pytest.fixture(params=COPY_MODES, autouse=True)
def copy_mode(request, monkeypatch):
    monkeypatch.setattr(moefuzz.execute, "COPY_MODE", request.param)
    return request.param


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


def test_copy_in_puts_every_array_on_the_device_unchanged_each_in_its_own_allocation():
    rng = np.random.default_rng(0)
    arrays = {
        "topk_ids": rng.integers(-1, 256, (1031, 8), dtype=np.int32),
        "topk_weights": rng.random((1031, 8), dtype=np.float32),
        "expert_map": np.arange(-1, 63, dtype=np.int64),
        "mask": rng.random(13) > 0.5,
        "empty": np.zeros((0, 8), dtype=np.int32),
        "transposed": np.arange(64, dtype=np.int16).reshape(8, 8).T,
    }
    tensors = copy_in(arrays, CUDA)
    pointers = [t.data_ptr() for t in tensors.values() if t.numel()]
    assert len(set(pointers)) == len(pointers)
    host = copy_back(tensors, CUDA)
    for name, array in arrays.items():
        assert tensors[name].device.type == "cuda" and host[name].dtype == array.dtype, name
        assert np.array_equal(host[name], array), name


def test_arrays_of_one_launch_survive_the_next_launch_through_the_same_buffers():
    first = copy_back(copy_in({"a": np.arange(100, dtype=np.int32)}, CUDA), CUDA)
    bigger = np.arange(3 << 20, dtype=np.int32)[::-1].copy()  # grows a staging buffer past 1 MiB
    second = copy_back(copy_in({"a": bigger, "b": np.full(5, 7, dtype=np.int64)}, CUDA), CUDA)
    third = copy_back(copy_in({"a": np.zeros(100, dtype=np.int32)}, CUDA), CUDA)
    assert np.array_equal(first["a"], np.arange(100, dtype=np.int32))
    assert np.array_equal(second["a"], bigger) and np.array_equal(second["b"], np.full(5, 7))
    assert not third["a"].any()
