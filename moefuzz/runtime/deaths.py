"""Naming a worker's death with a stable label: its first CUDA error, its escaping exception, a
host OOM, or else its signal.

A worker that dies leaves three traces: its exit status, its stderr log (often a C++ backtrace
after an abort) and a *note*: a small JSON-lines side file beside the log
(:func:`note_path`) where the worker writes the first CUDA error it saw and the exception that
escaped it, before it dies (:func:`write_note`). :func:`classify_death` reads them in this order:

1. the first CUDA error (the note's, else the first CUDA error line of the log): an abort that
   follows a CUDA error in the same worker is that error, not a second bug;
2. a Python exception that escaped the worker: its type and the innermost frame in the kernel's
   module (never the ``Process moefuzz-worker-7`` line multiprocessing prints, which changes with
   the worker's number);
3. SIGKILL while the host's OOM killer ran (``oom_kill`` of ``/proc/vmstat`` grew since the
   worker started): ``resource:host-oom``, not a kernel finding;
4. else the signal (``SIGSEGV``, ``SIGRTMIN+3`` for a real-time one) or the exit status.

No label holds a pid, a worker number or an address.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from moefuzz.model.outcome import classify_crash_text, is_cuda_oom

#: Bytes of a dead worker's log read to find its first CUDA error (a backtrace comes after it).
LOG_READ_LIMIT = 1 << 20

_CUDA_LINE = re.compile(r"(cuda error|cudaerror|cuda_error|illegal memory access|device-side assert)", re.I)


def note_path(log_path: str | Path) -> Path:
    """The side file of the worker whose stderr goes to ``log_path``."""
    return Path(f"{log_path}.note")


def write_note(path: str | Path | None, key: str, value: Any) -> None:
    """Append ``{key: value}`` as one JSON line to the note at ``path`` (never raises: a worker
    writes it on its way down)."""
    if path is None:
        return
    try:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (json.dumps({key: value}) + "\n").encode())
        finally:
            os.close(fd)
    except (OSError, TypeError, ValueError):
        pass


def read_note(path: str | Path, latest: bool = False) -> dict[str, Any]:
    """The note at ``path``: the first value written for each key, the last one with ``latest``
    (empty when absent)."""
    note: dict[str, Any] = {}
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return note
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            for key, value in entry.items():
                if latest:
                    note[key] = value
                else:
                    note.setdefault(key, value)
    return note


def signal_label(signum: int) -> str:
    """The name of signal ``signum``: ``SIGSEGV``; ``SIGRTMIN+3`` for a real-time signal, which
    :class:`signal.Signals` does not name; ``signal-N`` for anything else. Never raises."""
    rtmin, rtmax = getattr(signal, "SIGRTMIN", None), getattr(signal, "SIGRTMAX", None)
    if rtmin is not None and rtmax is not None and rtmin <= signum <= rtmax:
        return f"SIGRTMIN+{signum - rtmin}" if signum - rtmin <= rtmax - signum else f"SIGRTMAX-{rtmax - signum}"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal-{signum}"


def oom_kills() -> int | None:
    """The host's count of processes its OOM killer ended (``oom_kill`` in ``/proc/vmstat``,
    Linux 4.13 on); ``None`` where the host does not say."""
    try:
        with open("/proc/vmstat") as vmstat:
            for line in vmstat:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def first_cuda_error(text: str) -> str:
    """The first line of ``text`` that reports a CUDA error (empty if none)."""
    for line in text.splitlines():
        if _CUDA_LINE.search(line):
            return line.strip()[:500]
    return ""


_NOT_KERNEL_FILE = re.compile(r"(/moefuzz/|/multiprocessing/|/torch/|/python3\.\d+/)")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+, in (?P<function>\S+)')
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)?)(: .*)?$")


def escaped_exception(log: str, kernel_file: str = "") -> tuple[str, str] | None:
    """``(exception type, where)`` of the last Python traceback in ``log``; ``where`` is
    ``file:function`` of the innermost frame in ``kernel_file`` (the kernel's module), else of
    the innermost frame outside moefuzz, the standard library and torch; ``None`` without a
    traceback."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return None
    block = lines[starts[-1] + 1 :]
    frames = [m for m in (_FRAME.match(line) for line in block) if m]
    tail = [line for line in block if line and not line.startswith(" ")]
    match = _EXCEPTION.match(tail[-1]) if tail else None
    if match is None:
        return None
    kind = match.group("type").rsplit(".", 1)[-1]

    def where(frame: re.Match[str]) -> str:
        return f"{Path(frame.group('file')).name}:{frame.group('function')}"

    if kernel_file:
        own = [f for f in frames if os.path.basename(f.group("file")) == os.path.basename(kernel_file)]
        if own:
            return kind, where(own[-1])
    foreign = [f for f in frames if not _NOT_KERNEL_FILE.search(f.group("file"))]
    return kind, where(foreign[-1]) if foreign else ""


def classify_death(
    exitcode: int | None, log: str, note: dict[str, Any], oom_before: int | None, oom_after: int | None
) -> tuple[str, str, str]:
    """``(kind, detail, message)`` of a worker that died with ``exitcode`` (negative: a signal),
    leaving ``log`` (its stderr) and ``note`` (:func:`read_note`); ``oom_before`` and
    ``oom_after`` are :func:`oom_kills` when it started and now. See the module doc for the
    order. ``kind`` is ``crash`` or ``resource`` (a host or CUDA OOM: not a kernel finding)."""
    died = (
        f"worker killed by {signal_label(-exitcode)}"
        if exitcode is not None and exitcode < 0
        else (f"worker exited with status {exitcode}")
    )
    cuda = str(note.get("cuda_error") or "") or first_cuda_error(log)
    if cuda:
        if is_cuda_oom(cuda):
            return "resource", "cuda-oom", f"{cuda} ({died})"
        return "crash", classify_crash_text(cuda), f"{cuda} ({died})"
    escaped = note.get("exception")
    if isinstance(escaped, dict) and escaped.get("type"):
        kind, where = str(escaped["type"]), str(escaped.get("where") or "")
        return "crash", f"{kind}@{where}" if where else kind, f"{died}: {escaped.get('message', '')}"[:500]
    parsed = escaped_exception(log, str(note.get("kernel_file") or ""))
    if parsed is not None and not (exitcode is not None and exitcode < 0):
        kind, where = parsed
        return "crash", f"{kind}@{where}" if where else kind, f"{died}: {_last_line(log)}"[:500]
    if exitcode is not None and exitcode < 0:
        signum = -exitcode
        if signum == signal.SIGKILL and oom_before is not None and oom_after is not None and oom_after > oom_before:
            evidence = f"oom_kill {oom_before} -> {oom_after}"
            return "resource", "host-oom", f"{died} while the host's OOM killer ran ({evidence})"
        return "crash", signal_label(signum), f"{died}: {_last_line(log)}"[:500] if _last_line(log) else died
    return "crash", f"exit-{exitcode}", f"{died}: {_last_line(log)}"[:500] if _last_line(log) else died


def _last_line(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def module_file(function: Any) -> str:
    """The file of ``function``'s module (empty when unknown)."""
    module = sys.modules.get(getattr(function, "__module__", "") or "")
    return str(getattr(module, "__file__", "") or "")


def escaped_record(exc: BaseException, kernel_file: str) -> dict[str, str]:
    """What the note records of an exception escaping the worker: its type, the innermost frame
    in the kernel's module (``file:function``, else the innermost frame at all) and its line."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if kernel_file and os.path.basename(f.filename) == os.path.basename(kernel_file)]
    chosen = own or list(frames)
    where = f"{os.path.basename(chosen[-1].filename)}:{chosen[-1].name}" if chosen else ""
    return {"type": type(exc).__name__, "where": where, "message": f"{type(exc).__name__}: {exc}".splitlines()[0][:500]}
