"""Durations, parsed and printed: ``parse_duration`` reads the "90s", "15m", "1h30m" of options
and command lines; ``human_duration`` prints an elapsed time as kubectl and the API server's
Table cells do ("5m2s", "3d4h"), with the thresholds of apimachinery
``util/duration.HumanDuration``: second precision up to two minutes, minutes+seconds below ten
minutes, then progressively coarser units.
"""

from __future__ import annotations

import re
from typing import Final

_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
# "ms" must be tried before "m" so "500ms" is not read as 500 minutes followed by garbage.
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")

DURATION_HINT: Final = "a duration like 90s, 15m, 2h, 1d or 1h30m"


class DurationError(ValueError):
    """Text that is not a duration; the message says what was expected."""


def parse_duration(text: str) -> float:
    """Seconds in ``text``: one or more ``<number><unit>`` parts, units ms, s, m, h, d, w.

    A bare number is rejected on purpose: "15" could mean seconds or minutes, and guessing
    wrong silently exports the wrong window. Raises ``DurationError``.
    """
    compact = text.strip().lower()
    if not compact or _WHOLE.fullmatch(compact) is None:
        raise DurationError(f"expected {DURATION_HINT} (got {text!r})")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(compact))


_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_YEAR = 365 * _DAY


def _pair(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}" if minor == 0 else f"{major}{major_unit}{minor}{minor_unit}"


def human_duration(seconds: float) -> str:
    """Format an elapsed time; small negative skews (>= -1 s) read as "0s"."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 2 * _MINUTE:
        return f"{whole}s"
    minutes = whole // _MINUTE
    if minutes < 10:
        return _pair(minutes, "m", whole % _MINUTE, "s")
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = whole // _HOUR
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 8 * 24:
        return _pair(hours // 24, "d", hours % 24, "h")
    if hours < 2 * 365 * 24:
        return f"{hours // 24}d"
    if hours < 8 * 365 * 24:
        return _pair(whole // _YEAR, "y", (whole // _DAY) % 365, "d")
    return f"{whole // _YEAR}y"
