"""Parsing durations like ``90s``, ``10m``, ``1h``, ``1h30m`` or ``45`` (seconds)."""

from __future__ import annotations

import re

from moefuzz.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit (s, m, h, d), or several such parts.

    Raises:
        UsageError: empty, negative, zero or malformed durations (``duration='5x'``).
    """
    spec = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", spec):
        seconds = float(spec)
    elif spec and _PART.sub("", spec) == "":
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(spec))
    else:
        raise UsageError(f"bad duration={text!r} (use e.g. 90s, 10m, 1h, 1h30m)")
    if seconds <= 0:
        raise UsageError(f"duration={text!r} must be positive")
    return seconds
