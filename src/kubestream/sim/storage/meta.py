"""Small metadata helpers: timestamps in the two apimachinery formats, uids, generated names."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

# apimachinery util/rand: generateName suffixes avoid vowels and look-alike characters.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def rfc3339(ts: float | None = None) -> str:
    """metav1.Time: RFC3339 to the second, ``Z`` (spec §5, time.go)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def micro_time(ts: float | None = None) -> str:
    """metav1.MicroTime: ``2006-01-02T15:04:05.000000Z`` (spec §5, micro_time.go)."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    """Parse any RFC3339 form a client sends (``Z``, offsets, fractions)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def normalize_time(value: Any, micro: bool) -> Any:
    """Re-serialise a client-sent time the way the server stores it; None and junk pass through
    unchanged (junk is the validation layer's business)."""
    if not isinstance(value, str) or not value:
        return value
    try:
        dt = parse_time(value)
    except ValueError:
        return value
    if micro:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    """A random UUID as servers assign to metadata.uid."""
    return str(uuid.uuid4())


def generated_name(prefix: str) -> str:
    """``generateName`` + 5 random characters (SimpleNameGenerator)."""
    return prefix + "".join(random.choice(_NAME_ALPHABET) for _ in range(5))
