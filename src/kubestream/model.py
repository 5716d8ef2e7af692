"""Plain data that flows between the stages of the data's walk.

A source emits ``Record``s; the batcher groups them; the encoder turns a closed batch into bytes;
the spool registers the encoded batch *and* the records' checkpoint updates in one state
transaction (see docs/design.md, "Delivery"). Records are cheap plain data on purpose.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Protocol


class CheckpointUpdate(Protocol):
    """A change to a source's persisted position, applied in the batch's commit transaction.

    ``apply`` runs inside the same SQLite transaction that registers the batch in the spool, so
    a position never advances unless the batch holding its records is durably registered.
    """

    def apply(self, conn: sqlite3.Connection) -> None: ...


@dataclass(slots=True)
class Record:
    """One output record.

    ``data`` is the record as written (schema in docs/schema.md). ``sort_key`` orders records
    inside a batch (event time, RFC 3339 UTC string or epoch seconds; one kind per stream).
    ``position`` is a monotonically increasing integer within the stream (resourceVersion for
    events, byte offset for logs) used to name the batch deterministically. ``checkpoint`` is the
    position update to commit when the batch holding this record is registered.
    """

    data: dict[str, Any]
    sort_key: Any
    position: int
    checkpoint: CheckpointUpdate | None = None
    size_hint: int = 512


@dataclass(slots=True)
class Batch:
    """A closed batch of one stream (``stream`` is e.g. ``"events"`` or ``"logs"``)."""

    stream: str
    records: list[Record] = field(default_factory=list)
    opened_at: float = 0.0
    bytes_estimate: int = 0


class RecordSink(Protocol):
    """Where a source hands its records (the batcher implements it).

    ``put`` may wait: that is backpressure (spool full, sink slow), and the source must let it.
    """

    async def put(self, record: Record) -> None: ...
