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
from dataclasses import replace
from typing import Any

import numpy as np

from moefuzz.execute.bounds import (
    ACCESSES,
    Access,
    Buffer,
    LaunchBounds,
    OutOfBoundsAccess,
    buffer_of,
    find_out_of_bounds,
)

__all__ = [
    "ACCESSES",
    "Access",
    "Buffer",
    "LaunchBounds",
    "OutOfBoundsAccess",
    "buffer_of",
    "checked_memory",
    "find_out_of_bounds",
]

_log = logging.getLogger(__name__)
_warned: set[str] = set()


class _Session:
    """One :func:`checked_memory` block: the caller's tensors and the launch in progress."""

    def __init__(self, known: Callable[[], Mapping[str, Any]]) -> None:
        self.known = known
        self.launch: LaunchBounds | None = None
        self.accesses = 0  # accesses checked
        self.seconds = 0.0  # spent checking them

    def begin(self, kernel: str, arguments: Mapping[str, Any]) -> LaunchBounds:
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
        return LaunchBounds(kernel, list(buffers.values()), checked)

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
        self, launch: LaunchBounds, access: str, ptrs: np.ndarray, mask: np.ndarray | None, width: int, program_id: Any
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
