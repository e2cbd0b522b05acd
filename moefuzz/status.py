"""The live status line of a campaign, drawn with rich.

On a terminal the line redraws in place four times a second; elsewhere (CI logs) it is printed
every ``log_interval_s`` seconds, so logs stay short.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from moefuzz.campaign import CampaignStatus


def status_line(status: CampaignStatus) -> str:
    """``[target/kernel on device] 12.3s  execs 456  37.1/s  findings 1 (known 0)  shrinking X``"""
    line = (
        f"[{status.target}/{status.kernel} on {status.device}] {status.elapsed:7.1f}s  "
        f"execs {status.execs}  {status.execs_per_s:.1f}/s  "
        f"findings {len(status.findings)} (known {status.known})  restarts {status.worker_restarts}"
    )
    if status.shrinking:
        line += f"  shrinking {status.shrinking}"
    return line


class StatusDisplay:
    """Shows :func:`status_line` on ``console`` (stderr by default) while a campaign runs."""

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
        line = status_line(status)
        if self._live is not None:
            self._live.update(Text(line))
        elif time.monotonic() - self._last_log >= self._log_interval_s or status.shrinking:
            if status.shrinking and time.monotonic() - self._last_log < 1.0:
                return
            self._last_log = time.monotonic()
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)
