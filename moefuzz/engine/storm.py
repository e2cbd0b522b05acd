"""Crash storms: a known crash that keeps recurring must not eat the campaign.

Two cheap measures, both counted in the campaign's status and JSON report:

- **More warm spares while crashes are frequent** (:func:`spares_wanted`, used by
  :class:`moefuzz.runtime.isolation.Executor`): a worker replaced after a crash is replaced by a
  spare that has imported torch and the kernel already; one spare is enough for a crash now and
  then, but when crashes come faster than a spare starts, each one waits for a cold worker.
  While :data:`STORM_CRASHES` replacements fall within :data:`STORM_WINDOW_S` seconds, the
  executor keeps :data:`STORM_SPARES` spares warm.
- **Cases like a known crasher's are skipped** (:class:`KnownCrashers`): each crashing case has a
  cheap *fingerprint*, its size class (``target.size(case)``, each entry rounded up to a power of
  two). Once a crash signature the corpus already holds has recurred :data:`SKIP_AFTER` times
  within one fingerprint, and at least half the cases of that fingerprint crashed, workers skip
  (count, never run) later cases of that fingerprint. A storm of a crash spread evenly over all
  sizes (the crash-one-in-ten model) is never skipped: no fingerprint crashes often enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Seconds over which replacements are counted to tell a storm.
STORM_WINDOW_S = 30.0
#: Replacements within :data:`STORM_WINDOW_S` that make a storm.
STORM_CRASHES = 3
#: Warm spares an executor keeps during a storm (one otherwise).
STORM_SPARES = 3
#: Recurrences of a known crash within one fingerprint before its cases are skipped.
SKIP_AFTER = 5
#: Share of a fingerprint's cases that must have crashed before its cases are skipped.
SKIP_RATE = 0.5

Fingerprint = tuple[int, ...]


def spares_wanted(replaced_at: Sequence[float], now: float) -> int:
    """Warm spares to keep at ``now`` given the times of the last replacements
    (``time.perf_counter()`` values): :data:`STORM_SPARES` during a storm, else 1."""
    recent = sum(1 for when in replaced_at if now - when <= STORM_WINDOW_S)
    return STORM_SPARES if recent >= STORM_CRASHES else 1


def fingerprint(size: Sequence[int]) -> Fingerprint:
    """The size class of a case of ``size`` (``target.size(case)``): each entry's bit length,
    so that 300 and 400 tokens fall together and 300 and 3,000 do not."""
    return tuple(int(n).bit_length() for n in size)


class KnownCrashers:
    """Which fingerprints a campaign skips (see the module doc).

    Attributes:
        avoided: the fingerprints whose cases are skipped now.
    """

    def __init__(self, skip_after: int = SKIP_AFTER, skip_rate: float = SKIP_RATE) -> None:
        self.skip_after, self.skip_rate = skip_after, skip_rate
        self._runs: dict[Fingerprint, int] = {}
        self._known_crashes: dict[Fingerprint, int] = {}
        self.avoided: set[Fingerprint] = set()

    def ran(self, print_: Fingerprint) -> None:
        """Count one case of fingerprint ``print_`` that ran."""
        self._runs[print_] = self._runs.get(print_, 0) + 1

    def recurred(self, print_: Fingerprint) -> bool:
        """Count a known crash (one the corpus holds) of a case of fingerprint ``print_``;
        whether that fingerprint is now avoided for the first time."""
        crashes = self._known_crashes[print_] = self._known_crashes.get(print_, 0) + 1
        runs = max(self._runs.get(print_, 0), crashes)
        if print_ in self.avoided or crashes < self.skip_after or crashes / runs < self.skip_rate:
            return False
        self.avoided.add(print_)
        return True


def avoided_size(target: Any, avoid: frozenset[Fingerprint], case: Any) -> tuple[int, ...] | None:
    """``target.size(case)`` of a drawn case, or ``None`` when its fingerprint is in ``avoid``
    (the worker then skips it)."""
    size = tuple(target.size(case))
    return None if avoid and fingerprint(size) in avoid else size
