"""The body of an exported reproducer: copied verbatim into every script ``moefuzz export`` writes.

This module is never imported by moefuzz itself: :mod:`moefuzz.ui.export.script` reads its source
and writes it into ``repro.py`` after the header and before the case's data. So it must run where
moefuzz is not installed: it imports only the standard library, numpy and (in ``main``) torch,
and it restates the two things of moefuzz it needs, the launch context and the poison values, from
``moefuzz/execute/launch.py``. Everything above the ``end of imports`` marker goes to the top of the
script.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import time
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# -- end of imports --

#: Names the inline float literals use.
nan = float("nan")
inf = float("inf")

#: Poison for integer buffers, as in moefuzz/execute/launch.py: an entry the kernel never writes shows up
#: as this value instead of as whatever the allocator left there.
INT_POISON = 0x7FFFFFFF - 0x2A
#: Poison for float buffers.
FLOAT_POISON = float("nan")
#: Mismatching entries printed per output.
SHOW_ENTRIES = 8


def poison_value(dtype: Any) -> int | float | bool:
    """The poison a torch buffer of ``dtype`` is filled with (moefuzz/execute/launch.py's rule)."""
    import torch

    if dtype.is_floating_point:
        return FLOAT_POISON
    if dtype == torch.bool:
        return True
    return INT_POISON if torch.iinfo(dtype).max >= INT_POISON else -1


def poisoned(shape: Sequence[int], dtype: Any, device: Any) -> Any:
    """A new tensor of ``shape`` and ``dtype`` on ``device``, every entry the poison value."""
    import torch

    return torch.full(tuple(shape), poison_value(dtype), dtype=dtype, device=device)


class LaunchContext:
    """Stand-in for ``moefuzz.execute.launch.LaunchContext``: the attributes a kernel entry reads.

    Attributes:
        inputs: the case's arrays as tensors on ``device``.
        outputs: poisoned output buffers on ``device``, which the kernel writes.
        params: the case's scalars.
        device: a ``torch.device``.
        config: launch-configuration overrides (``num_warps``...); empty here.
    """

    def __init__(
        self,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        params: Mapping[str, Any],
        device: Any,
        config: Mapping[str, int] | None = None,
    ) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.params = params
        self.device = device
        self.config = dict(config or {})

    def scratch(self, shape: Sequence[int], dtype: Any) -> Any:
        """A poisoned scratch buffer on the context's device."""
        return poisoned(shape, dtype, self.device)


def import_entry(entry: str) -> Callable[..., Any]:
    """The function an entry ``"package.module:function"`` names.

    The packages above the module are bound as bare packages (their directory found on
    ``sys.path``, their ``__init__`` not run): the ``__init__`` of a moefuzz target package
    registers the target with moefuzz, which this script must not need. The module itself, and
    whatever it imports, is imported normally.
    """
    module_name, _, attr = entry.partition(":")
    parts = module_name.split(".")
    for depth in range(1, len(parts)):
        package = ".".join(parts[:depth])
        if package in sys.modules:
            continue
        found = importlib.util.find_spec(package)
        if found is None or found.submodule_search_locations is None:
            raise ImportError(f"package {package!r} of {entry!r} is not on sys.path; run from the kernel's repository")
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = list(found.submodule_search_locations)
        shell = types.ModuleType(package)
        shell.__spec__ = spec
        shell.__path__ = list(found.submodule_search_locations)
        shell.__package__ = package
        sys.modules[package] = shell
        if depth > 1:
            setattr(sys.modules[".".join(parts[: depth - 1])], parts[depth - 1], shell)
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def from_npz(name: str, npz_name: str) -> np.ndarray:
    """Array ``name`` of the ``.npz`` beside this script (read with ``allow_pickle=False``)."""
    with np.load(Path(__file__).with_name(npz_name), allow_pickle=False) as data:
        return np.array(data[name])


def choose_device(requested: str) -> tuple[str, str]:
    """``(device, description)`` for ``auto``, ``cuda`` or ``cpu``; ``cpu`` sets
    ``TRITON_INTERPRET=1`` (before triton is imported) so that Triton kernels run in its
    interpreter."""
    import torch

    device = requested
    if requested == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("repro: --device cuda, but torch sees no CUDA device")
        return device, f"cuda ({torch.cuda.get_device_name(0)})"
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("repro: triton was imported before TRITON_INTERPRET=1 could be set")
    os.environ["TRITON_INTERPRET"] = "1"
    why = "no GPU present" if requested == "auto" else "--device cpu"
    return device, f"cpu: Triton interpreter on CPU (TRITON_INTERPRET=1, {why})"


def checked_mask(size: int, entries: Sequence[tuple[int, int]] | None) -> np.ndarray:
    """[size] bool: True on the flat ``[start, stop)`` ranges of ``entries`` (all for ``None``)."""
    if entries is None:
        return np.ones(size, dtype=bool)
    mask = np.zeros(size, dtype=bool)
    for start, stop in entries:
        mask[start:stop] = True
    return mask


def compare_output(name: str, tri: np.ndarray, ref: np.ndarray, check: Mapping[str, Any]) -> list[str]:
    """Lines describing how ``tri`` differs from ``ref`` on the checked entries; empty if equal.

    ``check``: ``entries`` (flat ``[start, stop)`` ranges the contract specifies, ``None`` for
    all), ``any_order`` (compare the checked entries as sorted lists) and ``rtol`` (for floats:
    ``|tri - ref| <= rtol * |ref|``; 0 means exact; a NaN never matches).
    """
    if tri.shape != ref.shape:
        return [f"{name}: tri_{name} has shape {list(tri.shape)}, ref_{name} {list(ref.shape)}"]
    mask = checked_mask(ref.size, check.get("entries"))
    where = np.flatnonzero(mask)
    tri_values, ref_values = tri.reshape(-1)[mask], ref.reshape(-1)[mask]
    if check.get("any_order"):
        tri_values, ref_values = np.sort(tri_values), np.sort(ref_values)
    if ref.dtype.kind == "f":
        with np.errstate(invalid="ignore", over="ignore"):
            close = (tri_values == ref_values) | (
                np.abs(tri_values - ref_values) <= float(check.get("rtol", 0.0)) * np.abs(ref_values)
            )
        bad = np.flatnonzero(~close)
    else:
        bad = np.flatnonzero(tri_values != ref_values)
    if bad.size == 0:
        return []
    how = "sorted checked entries" if check.get("any_order") else "checked entries"
    lines = [f"{name}: {bad.size} of {where.size} {how} differ"]
    for position in bad[:SHOW_ENTRIES]:
        if check.get("any_order"):
            label = f"{name} sorted[{int(position)}]"
        else:
            label = f"{name}{list(int(i) for i in np.unravel_index(int(where[position]), ref.shape))}"
        lines.append(
            f"  {label}: tri_{name}={tri_values[position].item()!r} ref_{name}={ref_values[position].item()!r}"
        )
    if bad.size > SHOW_ENTRIES:
        lines.append(f"  ... {bad.size - SHOW_ENTRIES} more")
    return lines


def main(
    argv: Sequence[str],
    *,
    kernel: str,
    oracle: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, np.ndarray],
    outputs: Mapping[str, tuple[Sequence[int], str]],
    checks: Mapping[str, Mapping[str, Any]],
    recorded: str,
) -> int:
    """Launch ``kernel`` on ``inputs`` into poisoned ``outputs``, run ``oracle`` on the CPU and
    compare; 0 when every checked entry matches, 1 when some differ. The kernel's own exceptions
    (a crash, a CUDA error) propagate."""
    parser = argparse.ArgumentParser(description="Reproduce a moefuzz finding.")
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--kernel", default=kernel, help="module:function to launch instead (a fixed kernel)")
    args = parser.parse_args(list(argv))
    device_name, description = choose_device(args.device)
    print(f"device: {description}")

    import torch

    device = torch.device(device_name)
    run_kernel = import_entry(args.kernel)
    run_oracle = import_entry(oracle)
    print(f"kernel: {args.kernel}")
    print(f"oracle: {oracle}")

    buffers = {name: poisoned(shape, getattr(torch, dtype), device) for name, (shape, dtype) in outputs.items()}
    context = LaunchContext(
        {name: torch.from_numpy(array).to(device) for name, array in inputs.items()}, buffers, params, device
    )
    started = time.perf_counter()
    run_kernel(context)
    if device.type == "cuda":
        torch.cuda.synchronize()
    tri = {name: tensor.cpu().numpy() for name, tensor in buffers.items()}
    print(f"kernel returned in {time.perf_counter() - started:.2f} s")
    ref_tensors = run_oracle({name: torch.from_numpy(array) for name, array in inputs.items()}, params)
    ref = {name: tensor.numpy() for name, tensor in ref_tensors.items()}

    report: list[str] = []
    for name in outputs:
        report += compare_output(name, tri[name], ref[name], checks.get(name, {}))
    if not report:
        print(f"OK: the kernel's {len(outputs)} outputs equal the oracle's on every checked entry")
        return 0
    print("DIVERGENCE (tri_* = kernel, ref_* = oracle)")
    print("\n".join(report))
    print(f"moefuzz recorded: {recorded}")
    return 1
