"""Object keys named by a batch's content range, partitioned by date and hour (Hive style).

The key is computed once, when a batch is closed, and stored with the batch in the spool; a
replay after a crash reuses the stored key, so the name never has to be re-derived.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any


def batch_key(
    *,
    prefix: str,
    stream: str,
    stream_uid: str,
    timestamp: datetime,
    first_position: int,
    last_position: int,
    extension: str,
) -> str:
    """``<prefix>/<stream>/dt=YYYY-MM-DD/hour=HH/<stream_uid>-<first>-<last>.<extension>``.

    ``timestamp`` is the batch's first record time, converted to UTC for the partition; an empty
    ``prefix`` yields a key without a leading ``/``.
    """
    utc = timestamp.astimezone(UTC) if timestamp.tzinfo is not None else timestamp.replace(tzinfo=UTC)
    name = f"{stream_uid}-{first_position}-{last_position}.{extension}"
    parts = [prefix.strip("/"), stream, f"dt={utc:%Y-%m-%d}", f"hour={utc:%H}", name]
    return "/".join(part for part in parts if part)


def sort_key_time(sort_key: Any) -> datetime | None:
    """The UTC time of a ``Record.sort_key`` (RFC 3339 string or epoch seconds), or None."""
    if isinstance(sort_key, bool):
        return None
    if isinstance(sort_key, int | float):
        return datetime.fromtimestamp(sort_key, tz=UTC)
    if isinstance(sort_key, str):
        try:
            parsed = datetime.fromisoformat(sort_key)
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


def batch_time(sort_key: Any) -> datetime:
    """The partition time of a batch whose first record has ``sort_key``.

    Falls back to the current time when the sort key is not a time: the key is stored with the
    batch at registration, so it need not be reproducible, only stable once chosen.
    """
    return sort_key_time(sort_key) or datetime.fromtimestamp(time.time(), tz=UTC)


DEAD_LETTER = "dead-letter"
"""The folder, under the sink prefix, of batches an encoder or the sink rejected (docs/operations.md)."""


def dead_letter_key(key: str, prefix: str) -> str:
    """Where ``key`` (under ``prefix``) goes as a dead letter: ``<prefix>/dead-letter/<rest of key>``.

    Derived from the key alone, so a replay of the same batch overwrites its own dead letter.
    """
    base = prefix.strip("/")
    rest = key[len(base) + 1:] if base and key.startswith(base + "/") else key
    return "/".join(part for part in (base, DEAD_LETTER, rest) if part)


def is_dead_letter_key(key: str, prefix: str) -> bool:
    """Whether ``key`` already lies in the dead-letter folder of ``prefix``."""
    return key.startswith(dead_letter_key("", prefix) + "/")
