"""The seam between reading container log files (logs-source) and parsing/encoding them (logs-parse).

logs-source discovers and tails files and hands each read to a ``FileParser``; the parser returns a
columnar ``ParsedBlock`` (no per-line objects: parallel lists built by C-level ``bytes`` operations).
logs-source wraps a block with the container's metadata and the file identity into a ``LogChunk``
and puts it into the pipeline inside one ``Record``; the encoder from ``make_log_encoder`` turns a
batch of such records into NDJSON (spliced byte fragments, compressed once) or Parquet.

Offsets are byte offsets in the file. ``ParsedBlock.resume_offset`` is the checkpoint: every byte
before it belongs to a record that was emitted (in this block or an earlier one), and no byte after
it does, so restarting a fresh parser there neither loses nor repeats a record.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubestream.config.settings import LogsSettings, Settings
from kubestream.enrich.block import ContainerMeta, encode_meta
from kubestream.obs.metrics import Metrics

if TYPE_CHECKING:
    from kubestream.pipeline.encode import Encoder
    from kubestream.sources.logs.multiline import StartMatcher


class LogFormat(enum.StrEnum):
    """The on-disk format of a container log file."""

    CRI = "cri"
    """containerd / CRI-O: ``<RFC3339Nano> <stdout|stderr> <P|F> <message>\\n``."""
    DOCKER = "docker"
    """Docker's json-file driver: ``{"log":"...\\n","stream":"stdout","time":"..."}\\n``."""


def detect_format(head: bytes) -> LogFormat | None:
    """The format of a file from its first bytes; None while there is not enough to tell.

    Give it at least the first complete line when there is one; an empty or undecidable head
    returns None so the caller can try again once more has been written.
    """
    from kubestream.sources.logs.detect import detect_format as _detect

    return _detect(head)


@dataclass(slots=True)
class ParsedBlock:
    """The logical records completed by one ``feed`` (or ``finish``/``flush_pending``), columnar.

    Row ``i`` is ``timestamps[i]``, ``streams[i]``, ``messages[i]``, ``offsets[i]``. Messages are
    bytes that are guaranteed valid UTF-8: bytes that were not are replaced by U+FFFD, and when
    ``invalid_utf8 = "lossless"`` the original bytes of such a row are in ``raw_messages[i]``.
    """

    timestamps: list[bytes] = field(default_factory=list)
    """The runtime's timestamp as written (RFC3339Nano), of the record's first physical line;
    ``b""`` when that line had no valid RFC 3339 time (``timestamps.is_rfc3339``)."""
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


class FileParser:
    """Parses one log file read sequentially; keeps the state that spans reads.

    The state is the unterminated physical line at the end of the previous read, the pending P/F
    (or docker 16 KiB split) merge, and the pending multi-line record. Feed contiguous reads; a
    parser started at a checkpoint (``resume_offset``) produces exactly the records after it.
    """

    def __init__(
        self,
        fmt: LogFormat,
        settings: LogsSettings,
        *,
        multiline: StartMatcher | None = None,
        metrics: Metrics | None = None,
        last_timestamp: bytes | None = None,
    ) -> None:
        from kubestream.sources.logs.parser import BlockParser

        self.format = fmt
        # ``last_timestamp``: from the checkpoint (``ParsedBlock.resume_timestamp``) when resuming.
        self._impl = BlockParser(fmt, settings, multiline=multiline, metrics=metrics, last_timestamp=last_timestamp)

    def feed(self, data: bytes, offset: int) -> ParsedBlock:
        """Parse ``data`` read from the file at ``offset`` (must continue the previous read)."""
        return self._impl.feed(data, offset)

    def finish(self) -> ParsedBlock:
        """The file is let go: emit everything buffered (an incomplete tail is counted truncated)."""
        return self._impl.finish()

    def flush_pending(self) -> ParsedBlock:
        """Emit a pending multi-line record now (call after ``multiline_timeout_s`` without data).

        Only a *complete* record waiting for the next start line is emitted; an unterminated line
        or an unfinished P/F merge stays buffered (the runtime will finish it).
        """
        return self._impl.flush_pending()

    @property
    def has_pending(self) -> bool:
        """True while a complete multi-line record waits for its next start line."""
        return self._impl.has_pending

    @property
    def has_partial(self) -> bool:
        """True while an unfinished P/F run (docker: a ``log`` without newline) waits for its end."""
        return self._impl.has_partial

    def expire_partials(self) -> ParsedBlock:
        """Emit unfinished P/F runs as written so far (call after ``partial_expiry_s`` without data:
        an exited container's last part never gets its end)."""
        return self._impl.expire_partials()

    @property
    def next_offset(self) -> int:
        """The file offset the next ``feed`` must start at."""
        return self._impl.next_offset

    @property
    def mid_line(self) -> bool:
        """The last read ended inside a line: ``finish`` emits its head (as truncated)."""
        return self._impl.mid_line


@dataclass(slots=True)
class LogChunk:
    """What logs-source hands to the pipeline: ``Record(data={"chunk": chunk}, ...)``.

    ``block`` holds the parsed records, ``meta`` the container metadata, ``path`` the file as read
    (its ``/var/log/pods/...`` path, written into every record's ``file.path``).
    """

    block: ParsedBlock
    meta: ContainerMeta
    path: str
    file_key: str = ""
    """The file's identity as logs-source tracks it (e.g. ``"<dev>:<inode>"``); not written out."""
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


LOG_CHUNK_KEY = "chunk"
"""The key of the ``LogChunk`` in ``Record.data``."""


def make_log_encoder(settings: Settings, *, safe: bool = False) -> Encoder:
    """The encoder for batches of log records: NDJSON (+gzip/zstd/none) or Parquet (zstd).

    ``safe``: always NDJSON, the format poison batches are re-encoded in (see pipeline.batcher).
    """
    from kubestream.sources.logs.encode import make_log_encoder as _make

    return _make(settings, safe=safe)


__all__ = [
    "LOG_CHUNK_KEY",
    "ContainerMeta",
    "FileParser",
    "LogChunk",
    "LogFormat",
    "ParsedBlock",
    "detect_format",
    "encode_meta",
    "format_epoch_ns",
    "make_log_encoder",
]
