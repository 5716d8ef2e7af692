"""The object key layout of the archive, defined here once, and names of batches.

``<prefix>/<stream>/[cluster=<name>/]dt=YYYY-MM-DD/hour=HH/<stream_uid>-<first>-<last>.<ext>``:
Hive-style partitions by date and hour of a batch's first record, optionally under a
``cluster=<name>`` level (``cluster.partition``) so several clusters share one bucket. Writers
(the batcher), the HA takeover (which reads back its own hours), the query scan and the
compactor (which parse keys) all go through the functions below, so a change to the layout
cannot leave one of them behind.

The key is computed once, when a batch is closed, and stored with the batch in the spool; a
replay after a crash reuses the stored key, so the name never has to be re-derived.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubestream.config.settings import ClusterSettings

CLUSTER_LEVEL = "cluster="
"""The optional level of an archive several clusters share: ``<stream>/cluster=<name>/dt=…``."""
DAY_LEVEL = "dt="
HOUR_LEVEL = "hour="


def partition_cluster(settings: ClusterSettings) -> str | None:
    """The cluster level of the keys this agent writes: its name with ``cluster.partition``, else None."""
    return settings.name if settings.partition else None


def stream_folder(prefix: str, stream: str) -> str:
    """``<prefix>/<stream>/`` (no leading ``/`` with an empty prefix)."""
    return "/".join(p for p in (prefix.strip("/"), stream) if p) + "/"


def cluster_folder(prefix: str, stream: str, cluster: str) -> str:
    """``<prefix>/<stream>/cluster=<cluster>/``."""
    return f"{stream_folder(prefix, stream)}{CLUSTER_LEVEL}{cluster}/"


def hour_folder(prefix: str, stream: str, hour: datetime, cluster: str | None = None) -> str:
    """``<prefix>/<stream>/[cluster=<cluster>/]dt=YYYY-MM-DD/hour=HH/`` of the hour holding ``hour``."""
    utc = hour.astimezone(UTC) if hour.tzinfo is not None else hour.replace(tzinfo=UTC)
    base = stream_folder(prefix, stream) if cluster is None else cluster_folder(prefix, stream, cluster)
    return f"{base}{DAY_LEVEL}{utc:%Y-%m-%d}/{HOUR_LEVEL}{utc:%H}/"


def batch_key(
    *,
    prefix: str,
    stream: str,
    stream_uid: str,
    timestamp: datetime,
    first_position: int,
    last_position: int,
    extension: str,
    cluster: str | None = None,
    part: int | None = None,
) -> str:
    """``<hour_folder>/<stream_uid>-<first>-<last>[.p<NNN>].<extension>``.

    ``timestamp`` is the batch's first record time, converted to UTC for the partition; an empty
    ``prefix`` yields a key without a leading ``/``; ``cluster`` adds the ``cluster=`` level.
    ``part`` (1-based) names one part of a batch a destination's payload limits split: the parts
    share the batch's name and differ by the ``.p001``, ``.p002``, ... level before the
    extension (the name up to the first ``.`` stays ``<stream_uid>-<first>-<last>``). A batch in
    one payload has no part level, exactly as before destinations could split.
    """
    suffix = f".{PART_LEVEL}{part:03d}" if part is not None else ""
    return (f"{hour_folder(prefix, stream, timestamp, cluster)}{stream_uid}-{first_position}-{last_position}"
            f"{suffix}.{extension}")


PART_LEVEL = "p"
"""The marker of a part number in a split batch's name: ``<stream_uid>-<first>-<last>.p002.<ext>``."""


@dataclass(frozen=True, slots=True)
class KeyPartition:
    """What the layout's levels of one key (or folder) say."""

    hour: datetime | None
    """The start of its ``dt=/hour=`` partition (hour 0 with ``dt=`` alone); None without a valid ``dt=``."""
    cluster: str | None
    """The name of its ``cluster=`` level, None without one."""


def parse_key(key: str) -> KeyPartition:
    """The partition levels of ``key``: an object key or a folder, with or without the prefix."""
    day = hour = cluster = None
    for part in key.split("/"):
        if part.startswith(DAY_LEVEL):
            day = part[len(DAY_LEVEL):]
        elif part.startswith(HOUR_LEVEL):
            hour = part[len(HOUR_LEVEL):]
        elif part.startswith(CLUSTER_LEVEL):
            cluster = part[len(CLUSTER_LEVEL):]
    return KeyPartition(_hour_of(day, hour), cluster)


def day_of_level(name: str) -> str | None:
    """``YYYY-MM-DD`` of a folder named ``dt=YYYY-MM-DD``, else None."""
    value = name[len(DAY_LEVEL):] if name.startswith(DAY_LEVEL) else None
    return value if value is not None and _hour_of(value, "00") is not None else None


def hour_of_level(day: str, name: str) -> datetime | None:
    """The hour a folder named ``hour=HH`` of day ``day`` starts, else None."""
    if not name.startswith(HOUR_LEVEL) or len(name) != len(HOUR_LEVEL) + 2:
        return None
    return _hour_of(day, name[len(HOUR_LEVEL):])


def cluster_of_level(name: str) -> str | None:
    """The cluster of a folder named ``cluster=<name>`` (trailing ``/`` allowed), else None."""
    name = name.rstrip("/").rsplit("/", 1)[-1]
    return name[len(CLUSTER_LEVEL):] or None if name.startswith(CLUSTER_LEVEL) else None


def _hour_of(day: str | None, hour: str | None) -> datetime | None:
    if day is None:
        return None
    try:
        return datetime.strptime(f"{day} {hour or '00'}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    except ValueError:
        return None


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
