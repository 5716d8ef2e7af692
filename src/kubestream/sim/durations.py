"""Human ages as the real server prints them in Table cells ("5m2s", "3d4h", "<unknown>").

Same thresholds as apimachinery ``util/duration.HumanDuration``: second precision up to two
minutes, minutes+seconds below ten minutes, then progressively coarser units; the
``translateTimestampSince`` wrapper of the printers answers "<unknown>" for a zero time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

UNKNOWN = "<unknown>"

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


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 Time/MicroTime string as an aware datetime; None for null/empty/garbage."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def since(value: Any, now: datetime) -> str:
    """``translateTimestampSince``: the age of a timestamp, "<unknown>" when it is unset."""
    moment = parse_time(value)
    if moment is None:
        return UNKNOWN
    return human_duration((now - moment).total_seconds())
