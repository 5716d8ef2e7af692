"""The time window of a query (``--since``/``--until``) and the partitions that can hold it.

A batch lands in the ``dt=/hour=`` partition of its FIRST record, and is closed at most
``batch.max_age_s`` later (10 s by default), so a record can sit in the partition of the hour
before its own. Listing therefore starts ``PARTITION_SLACK_S`` before ``since``: enough for the
default batching many times over, and it adds the previous hour only for windows that start in
the first minutes of an hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from kubestream.errors import ConfigError
from kubestream.pipeline.naming import parse_key
from kubestream.util.durations import DURATION_HINT, DurationError, parse_duration

PARTITION_SLACK_S: Final = 300.0
_HOUR = timedelta(hours=1)


def parse_instant(text: str, *, now: datetime, option: str) -> datetime:
    """``2h`` (that long before ``now``) or an RFC 3339 time (``2026-01-01T10:00:00Z``), in UTC."""
    value = text.strip()
    try:
        return now - timedelta(seconds=parse_duration(value))
    except DurationError:
        pass
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ConfigError(f"expected {DURATION_HINT} or an RFC 3339 time like 2026-01-01T10:00:00Z "
                          f"(got {text!r})", key=option) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TimeWindow:
    """``since <= time < until``; either end may be open (None)."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None, *, now: datetime | None = None) -> TimeWindow:
        """The window of ``--since``/``--until``; ``ConfigError`` when it is empty."""
        now = now or datetime.now(UTC)
        window = cls(parse_instant(since, now=now, option="--since") if since else None,
                     parse_instant(until, now=now, option="--until") if until else None)
        if window.since is not None and window.until is not None and window.since >= window.until:
            raise ConfigError(f"empty time range: --since {_show(window.since)} is not before "
                              f"--until {_show(window.until)}")
        return window

    def describe(self) -> str:
        return f"{_show(self.since) if self.since else 'the beginning'} to {_show(self.until) if self.until else 'now'}"

    def hours(self, now: datetime | None = None, *, slack_s: float = PARTITION_SLACK_S) -> Iterator[datetime]:
        """The start of every hour partition that may hold a record of the window (``since`` set)."""
        if self.since is None:
            raise ValueError("an open window has no bounded list of hours")
        end = self.until or max(now or datetime.now(UTC), self.since)
        hour = _floor_hour(self.since - timedelta(seconds=slack_s))
        # ``until`` is exclusive: a window ending at 11:00 needs nothing of hour 11.
        last = _floor_hour(end - timedelta(microseconds=1)) if self.until else _floor_hour(end)
        while hour <= last:
            yield hour
            hour += _HOUR

    def holds_partition(self, hour: datetime, *, slack_s: float = PARTITION_SLACK_S) -> bool:
        """Whether the partition starting at ``hour`` may hold a record of the window."""
        if self.until is not None and hour >= self.until:
            return False
        return self.since is None or hour + _HOUR > self.since - timedelta(seconds=slack_s)


def _floor_hour(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _show(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def partition_hour(key: str) -> datetime | None:
    """The hour of the ``dt=YYYY-MM-DD/hour=HH`` partition in ``key``, or None if it has none
    (the layout is ``pipeline.naming``'s)."""
    return parse_key(key).hour
