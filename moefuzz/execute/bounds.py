"""The byte ranges a Triton launch may touch, and the out-of-bounds access found outside them.

The data types of the interpreter's bounds checker (:mod:`moefuzz.execute.oob`): the span of one
tensor (:class:`Buffer`), the sorted intervals of one launch (:class:`LaunchBounds`), and what an
access outside all of them was (:class:`Access`, raised as :class:`OutOfBoundsAccess`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: The three kinds of access, as they appear in the crash class ``out-of-bounds-<access>``.
ACCESSES = ("load", "store", "atomic")


@dataclass(frozen=True)
class Buffer:
    """The bytes one tensor may be accessed in.

    Attributes:
        name: how reports call it: the caller's name (``expert_map``, ``scratch[0]``), else the
            kernel parameter's (``map_ptr``).
        start: lowest byte address its sizes and strides reach.
        end: one past the highest byte (``start == end`` for an empty tensor).
        base: address of element 0 (``data_ptr``), the origin of a reported index.
        itemsize: bytes of one element.
        numel: elements.
        dtype: torch dtype name without the ``torch.`` prefix.
        device: ``cpu`` or ``cuda``...
        param: the kernel parameter it was passed as, when that is not already its name.
    """

    name: str
    start: int
    end: int
    base: int
    itemsize: int
    numel: int
    dtype: str
    device: str
    param: str = ""


def buffer_of(name: str, tensor: Any) -> Buffer:
    """The :class:`Buffer` of a torch tensor ``tensor`` (any strides, negative ones included)."""
    itemsize = tensor.element_size()
    base = tensor.data_ptr()
    numel = tensor.numel()
    if numel == 0:
        start = end = base
    else:
        low = sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride(), strict=True) if stride < 0)
        high = sum(
            (size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride(), strict=True) if stride > 0
        )
        start, end = base + low * itemsize, base + (high + 1) * itemsize
    dtype = str(tensor.dtype).removeprefix("torch.")
    return Buffer(name, start, end, base, itemsize, numel, dtype, tensor.device.type)


@dataclass(frozen=True)
class Access:
    """One refused access: its first out-of-bounds lane, placed against the nearest buffer.

    Attributes:
        access: ``load``, ``store`` or ``atomic``.
        kernel: the Triton kernel's function name (``?`` outside a known launch).
        program_id: the program being interpreted, ``(x, y, z)``.
        address: the first out-of-bounds lane's byte address.
        buffer: the buffer nearest to it (by bytes: the one the pointer came from when the
            index is off by a little, perhaps an unrelated one for a wild address).
        offset: that address as an element offset from the buffer's element 0 (``-1``: the
            element just before it; ``numel``: the one just past the end).
        lanes: active lanes of the access outside every buffer.
        active: active (unmasked) lanes of the access.
    """

    access: str
    kernel: str
    program_id: tuple[int, ...]
    address: int
    buffer: Buffer
    offset: int
    lanes: int
    active: int

    @property
    def where(self) -> str:
        """``1 element before its start`` / ``3 elements past its end`` / ``overlapping its end``
        (a wider access that starts inside the buffer)."""
        if 0 <= self.offset < self.buffer.numel:
            return "overlapping its end"
        if self.offset < 0:
            count, side = -self.offset, "before its start"
        else:
            count, side = self.offset - self.buffer.numel + 1, "past its end"
        return f"{count} element{'s' if count != 1 else ''} {side}"

    def message(self) -> str:
        b = self.buffer
        passed = f", kernel argument {b.param}" if b.param else ""
        return (
            f"out-of-bounds {self.access} in kernel {self.kernel}, program {self.program_id}: "
            f"{self.lanes} of {self.active} active lanes outside every buffer; the first is "
            f"{b.name}[{self.offset}], {self.where} (nearest buffer {b.name}: {b.numel} x {b.dtype}"
            f"{passed}; address {self.address:#x})"
        )


class OutOfBoundsAccess(Exception):
    """A Triton kernel under the interpreter tried to load, store or update memory outside every
    buffer of its launch; raised before the access, so nothing was read or written. The crash
    class of the outcome is ``out-of-bounds-<access>`` (see :mod:`moefuzz.model.outcome`)."""

    def __init__(self, access: Access) -> None:
        super().__init__(access)
        self.access = access

    def __str__(self) -> str:
        return self.access.message()


def find_out_of_bounds(exc: BaseException | None) -> OutOfBoundsAccess | None:
    """The :class:`OutOfBoundsAccess` behind ``exc`` (the interpreter re-raises a kernel's error
    as ``InterpreterError(...) from error``), or ``None``."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OutOfBoundsAccess):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class LaunchBounds:
    """The buffers one launch may touch, as sorted disjoint byte intervals for searchsorted."""

    def __init__(self, kernel: str, buffers: list[Buffer], checked: bool = True) -> None:
        self.kernel = kernel
        self.buffers = buffers
        self.checked = checked
        merged: list[list[int]] = []
        for b in sorted((b for b in buffers if b.end > b.start), key=lambda b: b.start):
            if merged and b.start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b.end)
            else:
                merged.append([b.start, b.end])
        self.starts = np.array([m[0] for m in merged], dtype=np.uint64)
        self.lengths = np.array([m[1] - m[0] for m in merged], dtype=np.uint64)

    def holds(self, low: int, high: int, width: int) -> bool:
        """Whether one interval holds every byte from ``low`` to ``high + width``: the fast path,
        for the usual access that stays inside one buffer."""
        slot = int(np.searchsorted(self.starts, np.uint64(low), side="right")) - 1
        if slot < 0:
            return False
        return high + width - int(self.starts[slot]) <= int(self.lengths[slot])

    def outside(self, addresses: np.ndarray, width: int) -> np.ndarray:
        """Bool mask of the uint64 ``addresses`` whose ``width`` bytes are not all in one interval."""
        slot = np.searchsorted(self.starts, addresses, side="right").astype(np.int64) - 1
        inside = slot >= 0
        safe = np.where(inside, slot, 0)
        length = self.lengths[safe] if len(self.lengths) else np.zeros_like(addresses)
        start = self.starts[safe] if len(self.starts) else np.zeros_like(addresses)
        fits = length >= np.uint64(width)
        room = np.where(fits, length - np.uint64(width), np.uint64(0))
        return ~(inside & fits & (addresses - start <= room))

    def nearest(self, address: int) -> tuple[Buffer, int] | None:
        """The buffer nearest to ``address`` (bytes to its span) and the element offset there."""
        if not self.buffers:
            return None

        def distance(b: Buffer) -> int:
            return b.start - address if address < b.start else max(0, address - b.end + 1)

        b = min(self.buffers, key=distance)
        return b, (address - b.base) // b.itemsize
