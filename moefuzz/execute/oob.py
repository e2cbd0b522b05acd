"""Out-of-bounds detection for Triton kernels run by the interpreter (``TRITON_INTERPRET=1``).

On a GPU a load or store outside every buffer is an illegal memory access at best and a silent
read of a neighbour's bytes at worst. Under the interpreter the same access is a raw pointer
dereference in C++: it segfaults the worker, or reads host garbage and shows up as a wrong value.
:func:`checked_memory` makes it a finding of its own: every active (unmasked) lane's address is
checked against the byte ranges of the buffers the launch may touch, and an access outside all of
them raises :class:`OutOfBoundsAccess` *before* the interpreter touches memory.

Hook points, the same in triton 3.6 and 3.9 (read in both sources of
``triton/runtime/interpreter.py``)::

    _interpreter                 module global: the C++ interpreter module whose load(ptrs, mask,
                                 other, dtype), store(ptrs, value, mask), atomic_rmw(op, ptrs,
                                 value, mask, sem) and atomic_cas(ptrs, cmp, value, sem) every
                                 memory op of InterpreterBuilder ends in (masked and unmasked
                                 loads and stores, block pointers, descriptors, atomics)
    GridExecutor.__call__        one launch: self.fn (the kernel), self.arg_names, the tensor args
    interpreter_builder.grid_idx the program id being interpreted

The builder's own ``create_masked_load``/``create_masked_store`` are not hooked: their signatures
changed between 3.6 (``cache_modifier, eviction_policy``) and 3.9 (``cache_policy``), while the
C++ calls they make did not. A missing hook is logged once and the kernel runs unchecked: the
checker never fails a campaign by itself.

What may be touched: the tensors the caller names (a launch's inputs, outputs and scratch) and
every tensor argument of the current kernel launch, each as the byte span its sizes and strides
reach. Limits: an access that lands inside another allowed buffer is not seen (an index off by a
whole buffer, a read of a neighbour that was passed too), nor is one inside a tensor's storage
but outside its view when that storage is also passed whole. CPU tensors only: with CUDA tensors
the interpreter copies to host buffers at other addresses, so such launches run unchecked.

Imported in worker processes (numpy only at import; torch and triton when a check is set up).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

_log = logging.getLogger(__name__)
_warned: set[str] = set()

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


class _Launch:
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


class _Session:
    """One :func:`checked_memory` block: the caller's tensors and the launch in progress."""

    def __init__(self, known: Callable[[], Mapping[str, Any]]) -> None:
        self.known = known
        self.launch: _Launch | None = None
        self.accesses = 0  # accesses checked
        self.seconds = 0.0  # spent checking them

    def begin(self, kernel: str, arguments: Mapping[str, Any]) -> _Launch:
        """The launch of ``kernel`` with tensor ``arguments`` (parameter name -> tensor); an
        argument that is one of the caller's tensors keeps the caller's name and gains ``param``."""
        buffers: dict[tuple[int, int], Buffer] = {}
        for name, tensor in self.known().items():
            b = buffer_of(name, tensor)
            buffers.setdefault((b.base, b.end), b)
        for param, tensor in arguments.items():
            b = buffer_of(param, tensor)
            same = buffers.get((b.base, b.end))
            if same is None:
                buffers[(b.base, b.end)] = b
            elif not same.param and same.name != param:
                buffers[(b.base, b.end)] = replace(same, param=param)
        checked = all(b.device == "cpu" for b in buffers.values())
        if not checked:
            _warn_once("device", "a launch has non-CPU tensors, which the interpreter copies: it runs unchecked")
        return _Launch(kernel, list(buffers.values()), checked)

    def check(self, access: str, ptrs: np.ndarray, mask: np.ndarray | None, width: int, program_id: Any) -> None:
        """Raise :class:`OutOfBoundsAccess` if an active lane of ``ptrs`` is outside every buffer.

        Outside a launch seen by the ``GridExecutor`` hook (a triton without it), the caller's
        tensors alone are allowed, looked up again at each access."""
        launch = self.launch if self.launch is not None else self.begin("?", {})
        if not launch.checked:
            return
        started = time.perf_counter()
        try:
            self._check(launch, access, ptrs, mask, width, program_id)
        finally:
            self.accesses += 1
            self.seconds += time.perf_counter() - started

    def _check(
        self, launch: _Launch, access: str, ptrs: np.ndarray, mask: np.ndarray | None, width: int, program_id: Any
    ) -> None:
        addresses = np.asarray(ptrs)
        if addresses.dtype != np.uint64:
            addresses = addresses.astype(np.uint64)
        if mask is not None:
            addresses = addresses[np.broadcast_to(np.asarray(mask, dtype=bool), addresses.shape)]
        addresses = addresses.reshape(-1)
        if addresses.size == 0:
            return
        if launch.holds(int(addresses.min()), int(addresses.max()), width):
            return
        bad = launch.outside(addresses, width)
        if not bad.any():
            return
        first = int(addresses[np.argmax(bad)])
        first = first - (1 << 64) if first >= 1 << 63 else first
        place = launch.nearest(first)
        if place is None:
            place = (Buffer("<no buffer>", 0, 0, 0, max(width, 1), 0, "?", "cpu"), first // max(width, 1))
        buffer, offset = place
        pid = tuple(int(i) for i in program_id) if program_id is not None else ()
        raise OutOfBoundsAccess(
            Access(access, launch.kernel, pid, first, buffer, offset, int(bad.sum()), int(addresses.size))
        )


#: The session whose checks the hooks run (``None``: the hooks forward unchecked).
_SESSION: _Session | None = None


def _program_id(module: Any) -> Any:
    builder = getattr(module, "interpreter_builder", None)
    return getattr(builder, "grid_idx", None)


class _CheckedInterpreter:
    """Stands in for triton's C++ ``interpreter`` module: checks an access, then forwards it.

    Every other attribute (``MEM_SEMANTIC``, ``RMW_OP``...) is the original's.
    """

    def __init__(self, inner: Any, module: Any) -> None:
        self._inner = inner
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _check(self, access: str, ptrs: Any, mask: Any, width: int) -> None:
        if _SESSION is not None:
            _SESSION.check(access, ptrs, mask, width, _program_id(self._module))

    def load(self, ptrs: Any, mask: Any, other: Any, dtype: Any) -> Any:
        self._check("load", ptrs, mask, np.dtype(dtype).itemsize)
        return self._inner.load(ptrs, mask, other, dtype)

    def store(self, ptrs: Any, value: Any, mask: Any) -> Any:
        self._check("store", ptrs, mask, np.asarray(value).dtype.itemsize)
        return self._inner.store(ptrs, value, mask)

    def atomic_rmw(self, op: Any, ptrs: Any, value: Any, mask: Any, sem: Any) -> Any:
        self._check("atomic", ptrs, mask, np.asarray(value).dtype.itemsize)
        return self._inner.atomic_rmw(op, ptrs, value, mask, sem)

    def atomic_cas(self, ptrs: Any, cmp: Any, value: Any, sem: Any) -> Any:
        self._check("atomic", ptrs, None, np.asarray(cmp).dtype.itemsize)
        return self._inner.atomic_cas(ptrs, cmp, value, sem)


def _tensors_in(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """``(name, tensor)`` for a launch argument: a tensor, the tensors of a tuple, a descriptor's
    base."""
    if hasattr(value, "data_ptr") and hasattr(value, "element_size"):
        yield name, value
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from _tensors_in(f"{name}[{i}]", item)
    elif hasattr(getattr(value, "base", None), "data_ptr"):
        yield from _tensors_in(f"{name}.base", value.base)


def _checked_call(original: Callable[..., Any]) -> Callable[..., Any]:
    """``GridExecutor.__call__`` that makes each launch's tensor arguments allowed buffers."""

    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        session = _SESSION
        if session is None:
            return original(self, *args, **kwargs)
        # fewer positional args than arg_names when some come as keywords
        named = list(zip(getattr(self, "arg_names", ()), args, strict=False)) + list(kwargs.items())
        tensors = dict(t for name, value in named for t in _tensors_in(str(name), value))
        kernel = getattr(getattr(self, "fn", None), "__name__", "?")
        previous, session.launch = session.launch, session.begin(kernel, tensors)
        try:
            return original(self, *args, **kwargs)
        finally:
            session.launch = previous

    call._moefuzz_oob = True  # type: ignore[attr-defined]
    return call


def _warn_once(key: str, text: str) -> None:
    if key not in _warned:
        _warned.add(key)
        _log.warning("moefuzz.execute.oob: %s", text)


def _interpreter_module() -> Any:
    """``triton.runtime.interpreter`` if it has the C++ memory hooks, else ``None`` (logged once)."""
    try:
        import triton.runtime.interpreter as module
    except Exception as exc:  # an import failure of triton itself is the kernel's to report
        _warn_once("import", f"triton.runtime.interpreter cannot be imported ({exc!r}): running unchecked")
        return None
    inner = getattr(module, "_interpreter", None)
    missing = [f for f in ("load", "store", "atomic_rmw", "atomic_cas") if not hasattr(inner, f)]
    if inner is None or missing:
        _warn_once("hook", f"triton.runtime.interpreter._interpreter lacks {missing or 'itself'}: running unchecked")
        return None
    return module


@contextmanager
def checked_memory(known: Callable[[], Mapping[str, Any]]) -> Iterator[_Session | None]:
    """Check every access of Triton kernels interpreted inside the block.

    Args:
        known: returns the named tensors every launch may touch besides its own tensor arguments
            (called at each launch, so scratch allocated since is included), e.g. a launch's
            inputs, outputs and scratch.

    Yields:
        The session (``accesses``: how many accesses it checked; ``seconds``: the time that took),
        or ``None`` when this triton
        has no hook to check through: then the block runs unchecked, and a warning is logged once.

    Raises:
        OutOfBoundsAccess: inside the block, before an access with an active lane outside every
            buffer (wrapped by the interpreter in ``InterpreterError``: use
            :func:`find_out_of_bounds`).
    """
    global _SESSION
    module = _interpreter_module()
    if module is None:
        yield None
        return
    executor: Any = getattr(module, "GridExecutor", None)
    original_call: Any = vars(executor).get("__call__") if executor is not None else None
    if original_call is None:
        _warn_once("launch", "triton.runtime.interpreter.GridExecutor is missing: kernel arguments are not allowed")
    inner = module._interpreter
    previous_session = _SESSION
    session = _Session(known)
    if not isinstance(inner, _CheckedInterpreter):
        module._interpreter = _CheckedInterpreter(inner, module)
    if original_call is not None and not getattr(original_call, "_moefuzz_oob", False):
        executor.__call__ = _checked_call(original_call)
    _SESSION = session
    try:
        yield session
    finally:
        _SESSION = previous_session
        module._interpreter = inner
        if original_call is not None:
            executor.__call__ = original_call
