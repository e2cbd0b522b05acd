"""Sanitizer escalation: re-run a minimized reproducer under NVIDIA compute-sanitizer.

A divergence says *that* a kernel is wrong; compute-sanitizer often says *why*: memcheck names an
out-of-bounds access (kernel, address, size), initcheck a read of memory nobody wrote, synccheck
an illegal barrier, racecheck a shared-memory hazard (it does not see global-memory races such as
the LightLLM stale start offset: an honest "0 hazards" there is part of the answer). Each tool
runs the reproducer once, in a fresh process (``python -m moefuzz.execute.sanitize PATH``), with
``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` so that every buffer is its own allocation and memcheck sees
the true bounds of each tensor instead of the caching allocator's big blocks.

The table of what each tool said is attached to the finding (``finding.json``'s ``sanitizer``).
Without compute-sanitizer or without a GPU, :func:`sanitize_finding` raises
:class:`SanitizerUnavailable` with a one-line reason: the CLI prints it and exits 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moefuzz.errors import MoefuzzError
from moefuzz.store.corpus import load_finding, save_finding

#: The tools run by default, in this order.
TOOLS = ("memcheck", "initcheck", "synccheck", "racecheck")
#: Exit code compute-sanitizer is told to return when its tool reported an error.
ERROR_EXIT_CODE = 86
#: Lines of a tool's first report kept in the table.
REPORT_LINES = 3

_SUMMARY = re.compile(r"(?:ERROR SUMMARY: (\d+) error|RACECHECK SUMMARY: (\d+) hazard)")
#: A source location in a report line: ``in /path/three_step_sort.cu:57`` (CUDA kernels are built
#: with ``-lineinfo``; Triton kernels carry their ``.py`` lines).
_SOURCE = re.compile(r"([^\s:()]+\.(?:cu|cuh|cpp|cc|h|hpp|py)):(\d+)")
_PREFIX = "========= "


class SanitizerUnavailable(MoefuzzError):
    """compute-sanitizer cannot run here (no binary, or no CUDA device)."""


@dataclass(frozen=True)
class SanitizerReport:
    """What one tool said.

    Attributes:
        tool: memcheck, initcheck, synccheck or racecheck.
        errors: errors (racecheck: hazards) in the tool's summary; None if it printed none (it
            crashed or timed out).
        exit_code: the process's exit code (:data:`ERROR_EXIT_CODE` when the tool found errors).
        first: the first report's lines (``Invalid __global__ read of size 4 bytes``, ``at
            kernel+0x1a0``...), empty when clean.
        seconds: wall time.
        outcome: the reproducer's own last line (``pass``, or the failure it showed).
        source: ``file:line`` of the first report's access (``three_step_sort.cu:57``), "" when
            the report names none.
    """

    tool: str
    errors: int | None
    exit_code: int
    first: tuple[str, ...]
    seconds: float
    outcome: str
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "errors": self.errors,
            "exit_code": self.exit_code,
            "first": list(self.first),
            "seconds": round(self.seconds, 2),
            "outcome": self.outcome,
            "source": self.source,
        }


def find_compute_sanitizer() -> str | None:
    """Path of ``compute-sanitizer``: on PATH, else under ``$CUDA_HOME/bin`` or
    ``/usr/local/cuda/bin``; None if absent."""
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        candidate = Path(root or "/nonexistent") / "bin" / "compute-sanitizer"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def parse_report(tool: str, text: str, exit_code: int, seconds: float) -> SanitizerReport:
    """Read one tool's output (its ``=========`` lines and the reproducer's last line)."""
    errors = None
    first: list[str] = []
    outcome = source = ""
    for line in text.splitlines():
        if line.startswith("moefuzz-sanitize: "):
            outcome = line.removeprefix("moefuzz-sanitize: ").strip()
        if not line.startswith(_PREFIX.rstrip()):
            continue
        body = line[len(_PREFIX) :].strip() if line.startswith(_PREFIX) else ""
        located = _SOURCE.search(body)
        if located and not source and "site-packages" not in located.group(1):
            source = f"{Path(located.group(1)).name}:{located.group(2)}"
        match = _SUMMARY.search(line)
        if match:
            errors = int(match.group(1) or match.group(2))
        elif body and not body.startswith("COMPUTE-SANITIZER") and len(first) < REPORT_LINES:
            if first or not body.startswith(("Saved host backtrace", "Host Frame")):
                first.append(re.sub(r"\s+", " ", body)[:200])
    return SanitizerReport(tool, errors, exit_code, tuple(first), seconds, outcome, source)


def sanitize_finding(
    path: Path, tools: tuple[str, ...] = TOOLS, kernel: str | None = None, timeout_s: float = 600.0
) -> list[SanitizerReport]:
    """Run the reproducer at ``path`` once under each of ``tools``; attach the table to the
    finding (``finding.json`` is rewritten atomically) and return it.

    Raises:
        SanitizerUnavailable: no compute-sanitizer binary, or no CUDA device.
        CorpusError: ``path`` holds no valid finding.
    """
    finding = load_finding(path)
    binary = find_compute_sanitizer()
    if binary is None:
        raise SanitizerUnavailable(
            "compute-sanitizer not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin): no sanitizer table made"
        )
    import torch

    if not torch.cuda.is_available():
        raise SanitizerUnavailable("compute-sanitizer needs a CUDA device and torch sees none: no sanitizer table made")
    unknown = [tool for tool in tools if tool not in TOOLS]
    if unknown:
        raise MoefuzzError(f"tools={unknown!r}: compute-sanitizer tools are {', '.join(TOOLS)}")
    from moefuzz.execute.cuda_build import prebuild_kernel
    from moefuzz.model.registry import get_target

    spec = get_target(finding.target).kernel(kernel or finding.kernel)
    prebuild_kernel(finding.target, spec)  # a CUDA kernel compiles here, not under the sanitizer
    env = {**os.environ, "PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}
    reports = []
    for tool in tools:
        command = [
            binary, "--tool", tool, "--error-exitcode", str(ERROR_EXIT_CODE), "--print-limit", "20",
            sys.executable, "-m", "moefuzz.execute.sanitize", str(path), *(["--kernel", kernel] if kernel else []),
        ]  # fmt: skip
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
            text, code = done.stdout + done.stderr, done.returncode
        except subprocess.TimeoutExpired as exc:
            partial = (exc.stdout or b"") + (exc.stderr or b"")
            text = partial.decode(errors="replace") if isinstance(partial, bytes) else str(partial)
            text, code = f"{text}\nmoefuzz-sanitize: timed out after {timeout_s:g} s", -9
        reports.append(parse_report(tool, text, code, time.perf_counter() - started))
    finding.sanitizer = [report.to_json() for report in reports]
    save_finding(None, finding, directory=path if path.is_dir() else path.parent)
    return reports


def format_table(reports: list[SanitizerReport]) -> str:
    """The table ``moefuzz sanitize`` prints: one row per tool."""
    rows = [("tool", "errors", "exit", "seconds", "first report")]
    for report in reports:
        errors = "?" if report.errors is None else str(report.errors)
        rows.append(
            (
                report.tool,
                errors,
                str(report.exit_code),
                f"{report.seconds:.1f}",
                (f"at {report.source}: " if report.source else "") + (" | ".join(report.first) or "-"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    )


def _run_once(argv: list[str]) -> int:
    """Run one reproducer in this process on the GPU (what each tool wraps) and print
    ``moefuzz-sanitize: <outcome>`` as the last line."""
    path = Path(argv[0])
    kernel = argv[argv.index("--kernel") + 1] if "--kernel" in argv else None
    finding = load_finding(path)
    from moefuzz.execute.perturb import PLAIN, recorded_plan
    from moefuzz.model.registry import get_target
    from moefuzz.runtime.worker import CaseRunner

    runner = CaseRunner(finding.target, kernel or finding.kernel, "cuda")
    plan = recorded_plan(finding.found, get_target(finding.target).launch_knobs) or [PLAIN]
    outcome = runner.run_plan(finding.case, plan)
    print(f"moefuzz-sanitize: {outcome.signature} {outcome.message}".strip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_run_once(sys.argv[1:]))
