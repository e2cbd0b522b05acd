"""The live status of a campaign, drawn with rich from a :class:`~moefuzz.engine.campaign.CampaignStatus`.

It shows what runs and where (the GPU's name, or "Triton interpreter on CPU"), execs and
execs/s, new findings by kind (divergence, crash, hang, and any other kind met), failures that
matched reproducers already in the corpus, the corpus size, worker restarts, the shrink in
progress (finding, pass, accepted of candidates), and for a campaign over Ray its cluster's nodes,
actors and GPUs. It reads only the status object, never the
engine.

On a terminal a small panel redraws in place four times a second; elsewhere (CI logs) the one-line
form is printed every ``log_interval_s`` seconds, and at most once a second while shrinking.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from moefuzz.cluster.data import ClusterStatus
from moefuzz.engine.campaign import CampaignStatus

#: What the status calls the device when kernels run in Triton's interpreter.
INTERPRETER = "Triton interpreter on CPU"


def device_label(status: CampaignStatus) -> str:
    """The GPU's name, :data:`INTERPRETER` without one, ``starting`` before a worker answered."""
    return INTERPRETER if status.device_kind == "cpu" else status.device


def findings_text(status: CampaignStatus) -> str:
    """``2 new (divergence 1, crash 1, hang 0), 5 known``."""
    kinds = ", ".join(f"{kind} {count}" for kind, count in status.findings_by_kind.items())
    return f"{len(status.findings)} new ({kinds}), {status.known} known"


def shrink_text(status: CampaignStatus) -> str:
    """``<finding id>: pass drop_tokens, 3 accepted of 17 candidates``, or ``""`` when idle."""
    if not status.shrinking:
        return ""
    where = f"pass {status.shrink_pass}" if status.shrink_pass else "starting"
    return f"{status.shrinking}: {where}, {status.shrink_accepted} accepted of {status.shrink_candidates} candidates"


def _generators(status: CampaignStatus) -> str:
    return f" + {status.generators} generators" if status.generators else ""


def status_line(status: CampaignStatus) -> str:
    """One line: ``[target/kernel on device] 12.3s  execs 456  37.1/s  findings ...  corpus 3 ...``."""
    line = (
        f"[{status.target}/{status.kernel} on {device_label(status)}] {status.elapsed:7.1f}s  "
        f"execs {status.execs}  {status.execs_per_s:.1f}/s  findings {findings_text(status)}  "
        f"corpus {status.corpus_size}  workers {status.workers}{_generators(status)}  restarts {status.worker_restarts}"
    )
    if status.skipped_outside_domain:
        line += f"  skipped {status.skipped_outside_domain} outside the kernel's domain"
    if status.build:
        line += f"  cuda build {status.build}"
    if isinstance(status, ClusterStatus):
        line += f"  {status.cluster_text}"
    if status.shrinking:
        line += f"  shrinking {shrink_text(status)}"
    return line


def status_panel(status: CampaignStatus) -> RenderableType:
    """The terminal form: one labelled row per fact."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("moefuzz", f"{status.target} / {status.kernel} on {device_label(status)}")
    grid.add_row(
        "execs",
        f"{status.execs} in {status.elapsed:.1f} s, {status.execs_per_s:.1f}/s, "
        f"{status.workers} workers{_generators(status)}, {status.worker_restarts} restarts",
    )
    if isinstance(status, ClusterStatus):
        grid.add_row("cluster", status.cluster_text)
    grid.add_row("findings", Text(findings_text(status), style="red" if status.findings else ""))
    grid.add_row("corpus", f"{status.corpus_size} reproducers of {status.target}")
    if status.build:
        grid.add_row("cuda build", status.build)
    grid.add_row("shrinking", shrink_text(status) or "-")
    return grid


class StatusDisplay:
    """Shows the status on ``console`` (stderr by default) while a campaign runs."""

    def __init__(self, console: Console | None = None, log_interval_s: float = 10.0) -> None:
        self.console = console or Console(stderr=True)
        self._live: Live | None = None
        self._log_interval_s = log_interval_s
        self._last_log = 0.0

    def __enter__(self) -> StatusDisplay:
        if self.console.is_terminal:
            self._live = Live(Text("starting workers..."), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)

    def update(self, status: CampaignStatus) -> None:
        if self._live is not None:
            self._live.update(status_panel(status))
            return
        since = time.monotonic() - self._last_log
        if since >= self._log_interval_s or (status.shrinking and since >= 1.0):
            self._last_log = time.monotonic()
            self.console.print(status_line(status), highlight=False, markup=False, soft_wrap=True)
