"""Ages as the real server prints them in Table cells ("5m2s", "3d4h", "<unknown>"): the
``translateTimestampSince`` wrapper of the printers around ``HumanDuration``
(``kubestream.util.durations.human_duration``), "<unknown>" for a zero time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubestream.util.durations import human_duration

UNKNOWN = "<unknown>"

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
