"""SIGINT and SIGTERM: a campaign stops fuzzing, saves what it collected and stops its children.

:func:`install` (the CLI does, for every command) makes both signals raise :class:`Interrupted`,
a :class:`KeyboardInterrupt` that remembers its signal, so that every command ends through the
same path: children killed (:func:`moefuzz.runtime.processes.kill_children`) and exit status
``128 + signal`` (130 for SIGINT, 143 for SIGTERM). Code that can stop cleanly runs under
:func:`graceful`: there the first signal only sets :func:`requested`, which the campaign loop
polls (it ends, settles the failures already back without shrinking them, closes its workers and
generators; the CLI then writes its reports); a second signal raises at once. Once fuzzing is
over, :func:`finish` makes the rest of the command (closing workers, writing reports) run to its
end the same way: a first signal there is only recorded, so it cannot cost the reports.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

#: The signals handled.
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested: int | None = None
_graceful = 0
_finishing = False


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; :attr:`exit_status` is ``128 + signum``. ``status`` carries
    a campaign's status when one was under way (its reports can still be written)."""

    def __init__(self, signum: int, status: Any = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.status = status

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _handle(signum: int, frame: FrameType | None) -> None:
    global _requested
    first = _requested is None
    if first:
        _requested = signum
    if first and (_graceful or _finishing):
        return
    raise Interrupted(signum)


def install() -> dict[int, Any]:
    """Handle SIGINT and SIGTERM as described in the module doc (main thread only; elsewhere
    nothing changes); return the handlers replaced, for :func:`restore`."""
    global _requested, _finishing
    if threading.current_thread() is not threading.main_thread():
        return {}
    _requested = None
    _finishing = False
    return {int(s): signal.signal(s, _handle) for s in SIGNALS}


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers :func:`install` replaced (and end :func:`finish`)."""
    global _finishing
    _finishing = False
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def finish() -> None:
    """The command is finishing: from now until :func:`restore` (or the next :func:`install`), a
    first SIGINT or SIGTERM only sets :func:`requested`, as within :func:`graceful`, and a second
    raises. Called once a campaign's fuzzing is over, so that closing its workers and writing its
    reports are not cut short by the signal that asked it to stop, or by one that came late."""
    global _finishing
    _finishing = True


def requested() -> int | None:
    """The signal that asked to stop, if one came since :func:`install`."""
    return _requested


def stopped_by() -> str:
    """The name of the signal that asked to stop (``SIGTERM``, ``SIGINT``), ``""`` if none came
    since :func:`install`: what a campaign's status records as ``interrupted``."""
    return "" if _requested is None else signal.Signals(_requested).name


@contextmanager
def graceful() -> Iterator[None]:
    """Within: the first SIGINT or SIGTERM only sets :func:`requested` (the code polls it);
    one that came before entering raises at once."""
    global _graceful
    if _requested is not None:
        raise Interrupted(_requested)
    _graceful += 1
    try:
        yield
    finally:
        _graceful -= 1
