"""Plain data that flows between the stages of the data's walk.

A source emits ``Record``s; the batcher groups them; the encoder turns a closed batch into bytes;
the spool registers the encoded batch *and* the records' checkpoint updates in one state
transaction (see docs/design.md, "Delivery"). Records are cheap plain data on purpose.

An event record is a dict (``Record.data``). A log record carries a ``LogChunk`` instead
(``Record.chunk``): the lines of one read of one container's file as parallel columns
(``ParsedBlock``) plus that container's metadata, so the log encoders
(``pipeline.encode.logs_ndjson``, ``logs_parquet``, ``otlp``, ``webhook``) never build a dict
per line. The log source builds chunks; this module is where both sides learn their shape.
"""

from __future__ import annotations

import sqlite3
import time
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
    events, line number for logs) used to name the batch deterministically. ``checkpoint`` is the
    position update to commit when the batch holding this record is registered.
    """

    data: dict[str, Any]
    sort_key: Any
    position: int
    checkpoint: CheckpointUpdate | None = None
    size_hint: int = 512
    chunk: LogChunk | None = None
    """A log record's lines (``data`` is then empty); None for an event record."""


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


def log_chunk(record: Record) -> LogChunk:
    """The chunk of a log record; ``TypeError`` for a record without one (an event in the logs
    stream: the batcher sets such a batch aside as a dead letter)."""
    chunk = record.chunk
    if chunk is None:
        raise TypeError(f"record at position {record.position} is not a log record (no chunk)")
    return chunk


class ContainerMetadata(Protocol):
    """The ``kubernetes`` block of one container as the log encoders need it
    (``enrich.block.ContainerMeta`` builds it)."""

    @property
    def kubernetes(self) -> dict[str, Any]:
        """The block's fields (docs/schema.md)."""
        ...

    @property
    def encoded(self) -> bytes:
        """The JSON tail of a record, encoded once: ``b',"kubernetes":{...}}\\n'``."""
        ...


@dataclass(slots=True)
class ParsedBlock:
    """The logical records completed by one parser ``feed`` (or ``finish``/``flush_pending``), columnar.

    Row ``i`` is ``timestamps[i]``, ``streams[i]``, ``messages[i]``, ``offsets[i]``. Messages are
    bytes that are guaranteed valid UTF-8: bytes that were not are replaced by U+FFFD, and when
    ``invalid_utf8 = "lossless"`` the original bytes of such a row are in ``raw_messages[i]``.

    Offsets are byte offsets in the file. ``resume_offset`` is the checkpoint: every byte before
    it belongs to a record that was emitted (in this block or an earlier one), and no byte after
    it does, so restarting a fresh parser there neither loses nor repeats a record.
    """

    timestamps: list[bytes] = field(default_factory=list)
    """The runtime's timestamp as written (RFC3339Nano), of the record's first physical line;
    ``b""`` when that line had no valid RFC 3339 time (``util.rfc3339.is_rfc3339``)."""
    streams: list[bytes] = field(default_factory=list)
    """``b"stdout"`` or ``b"stderr"``."""
    messages: list[bytes] = field(default_factory=list)
    """The message without its trailing newline (P/F parts and multiline continuations joined)."""
    offsets: list[int] = field(default_factory=list)
    """File offset of the first byte of the record's first physical line."""
    resume_offset: int = 0
    """The checkpoint: the offset just after the last byte of the last emitted record."""
    resume_timestamp: bytes = b""
    """The timestamp of the last line with a valid time before ``resume_offset`` (kept in the
    checkpoint; informative only: a line without a valid time gets ``b""``, it borrows nothing)."""
    truncated: int = 0
    """Records shortened by ``max_line_bytes`` / ``max_merged_bytes`` (also in ``truncated_rows``)."""
    invalid_utf8: int = 0
    """Records whose bytes were not valid UTF-8."""
    malformed: int = 0
    """Physical lines that were not CRI/docker-shaped (kept whole as stdout messages)."""
    truncated_rows: list[int] = field(default_factory=list)
    """Indexes of the truncated records."""
    raw_messages: dict[int, bytes] = field(default_factory=dict)
    """Lossless mode only: row index → the original (non-UTF-8) bytes of that message."""

    @property
    def count(self) -> int:
        """The number of records."""
        return len(self.messages)


@dataclass(slots=True)
class LogChunk:
    """What the log source hands to the pipeline: ``Record(data={}, chunk=chunk, ...)``.

    ``block`` holds the parsed records, ``meta`` the container metadata, ``path`` the file as read
    (its ``/var/log/pods/...`` path, written into every record's ``file.path``).
    """

    block: ParsedBlock
    meta: ContainerMetadata
    path: str
    file_key: str = ""
    """The file's identity as the log source tracks it (e.g. ``"<dev>:<inode>"``); not written out."""
    read_time_ns: int = field(default_factory=time.time_ns)
    """When the chunk was read (Unix ns): the time of its records that carry no valid time
    (an empty timestamp), written with ``timestamp_invalid``. Built right after the read."""
    parsed: list[bytes | None] | None = None
    """``logs.parse_json`` on for the container: row ``i``'s ``parsed`` field (compact JSON of an
    object) or None where the message stayed text. None for the whole chunk when off."""
    keep_message: bool = True
    """False: a row with a ``parsed`` value is written without its ``message``."""
    parsed_bytes: int = 0
    """Total size of the ``parsed`` values (for the size hints)."""

    @property
    def sort_key(self) -> str:
        """The first valid record time (RFC 3339), else the read time, for ``Record.sort_key``.

        The batch's partition comes from it, so a line without a time never lands in a 1970 (or
        "now at commit") partition beside valid records. "" when the chunk is empty.
        """
        stamps = self.block.timestamps
        if not stamps:
            return ""
        # The parser leaves a line without a valid time an empty timestamp; usually row 0 has one.
        first = stamps[0] or next(filter(None, stamps), b"")
        return first.decode("ascii", "replace") if first else format_epoch_ns(self.read_time_ns)

    @property
    def size_hint(self) -> int:
        """Uncompressed NDJSON size, for ``Record.size_hint``: the metadata repeats on every line."""
        b = self.block
        return sum(map(len, b.messages)) + b.count * (len(self.meta.encoded) + 80) + self.parsed_bytes

    @property
    def columnar_size_hint(self) -> int:
        """Uncompressed Parquet column data: per-container metadata is one dictionary entry per
        chunk, not per line, so counting it per line would close batches ~5x too early."""
        b = self.block
        return sum(map(len, b.messages)) + b.count * 48 + len(self.meta.encoded) + self.parsed_bytes


def format_epoch_ns(ns: int) -> str:
    """``ns`` (Unix nanoseconds) as RFC 3339 UTC with nine fraction digits."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"
