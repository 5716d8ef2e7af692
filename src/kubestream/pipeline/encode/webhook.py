"""Records for an HTTP webhook: NDJSON or one JSON array of the archive's record objects.

Each object is the record exactly as the archive's NDJSON writes it (``kind``, ``cluster``,
``timestamp``, ..., ``kubernetes``; docs/schema.md), one per event occurrence or log line, plus a
stable ``record_uid`` (the OTLP output's ``log.record.uid``: the same id for the same record,
whenever and however often it is encoded) so a receiver can drop the duplicates an
at-least-once retry makes.

A JSON array is written one element per line (``[`` … ``,\\n`` … ``]``): orjson never writes a raw
newline inside a value, so the sink can split an array between records without parsing it.

Log chunks are read by their attributes (the shape the logs source builds) and expanded one object
per line with the same fields, in the same order and under the same rules as the archive's log
encoder (a line without a valid time gets its read time and ``timestamp_invalid``; lossless bytes in
``message_base64``; ``truncated``; ``parsed``).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from kubestream.config.outputs import HttpSinkSettings
from kubestream.model import Record, log_chunk
from kubestream.pipeline.encode.cluster_field import with_cluster
from kubestream.pipeline.encode.compress import GzipCompression
from kubestream.pipeline.encode.ndjson import dumps_line
from kubestream.pipeline.encode.otlp import event_uid, log_uid_prefix

UID_FIELD = "record_uid"
_GZIP = GzipCompression(level=1)
"""The request body's ``Content-Encoding: gzip`` (level 1: bodies are sent once, soon)."""
ARRAY_SEPARATOR = b",\n"


def _epoch_ns_text(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def log_chunk_objects(record: Record, cluster: str | None) -> list[dict[str, Any]]:
    """The archive's objects for the lines of one log chunk, each with its ``record_uid``."""
    chunk = log_chunk(record)
    block = chunk.block
    prefix = log_uid_prefix(record, cluster)
    kubernetes = chunk.meta.kubernetes
    truncated = set(block.truncated_rows)
    raw: dict[int, bytes] = block.raw_messages
    parsed: list[bytes | None] | None = chunk.parsed
    keep_message: bool = chunk.keep_message
    read_time = ""
    out: list[dict[str, Any]] = []
    for row, (stamp, stream, message, offset) in enumerate(zip(
            block.timestamps, block.streams, block.messages, block.offsets, strict=True)):
        item: dict[str, Any] = {"kind": "log"}
        if cluster is not None:
            item["cluster"] = cluster
        if stamp:
            item["timestamp"] = stamp.decode("utf-8", "replace")
        else:
            read_time = read_time or _epoch_ns_text(chunk.read_time_ns)
            item["timestamp"] = read_time
        item["stream"] = stream.decode()
        value = parsed[row] if parsed is not None else None
        if value is None or keep_message:
            item["message"] = message.decode("utf-8", "replace")
        if row in raw:
            item["message_base64"] = base64.b64encode(raw[row]).decode()
        if row in truncated:
            item["truncated"] = True
        if not stamp:
            item["timestamp_invalid"] = True
        if value is not None:
            item["parsed"] = orjson.Fragment(value)
        item["file"] = {"path": chunk.path, "offset": offset}
        item["kubernetes"] = kubernetes
        item[UID_FIELD] = f"{prefix}{offset}"
        out.append(item)
    return out


def event_object(data: dict[str, Any], cluster: str | None) -> dict[str, Any]:
    """An event record as the archive writes it, with its ``record_uid``."""
    stamped = with_cluster(data, cluster) if cluster is not None else dict(data)
    if stamped is data:
        stamped = dict(data)
    stamped[UID_FIELD] = event_uid(data, data.get("cluster") or cluster)
    return stamped


class WebhookEncoder:
    """``Encoder``: a batch as NDJSON or a JSON array (one element per line), compressed as configured."""

    def __init__(self, settings: HttpSinkSettings, *, stream: str, cluster: str | None) -> None:
        self.settings = settings
        self.stream = stream
        self.cluster = cluster
        self._array = settings.format == "json_array"
        self._gzip = settings.compression == "gzip"
        base = "json" if self._array else "ndjson"
        self._extension = f"{base}.gz" if self._gzip else base

    @property
    def extension(self) -> str:
        return self._extension

    @property
    def content_type(self) -> str:
        """The request's ``Content-Type``."""
        return "application/json" if self._array else "application/x-ndjson"

    def objects(self, records: list[Record]) -> list[dict[str, Any]]:
        """The record objects of a batch, in order."""
        out: list[dict[str, Any]] = []
        for record in records:
            chunk = record.chunk
            if chunk is not None:
                out += log_chunk_objects(record, self.cluster)
            else:
                out.append(event_object(record.data, self.cluster))
        return out

    def encode(self, records: list[Record]) -> bytes:
        """The body: one JSON object per line, as NDJSON or inside ``[`` ``]``."""
        lines = [dumps_line(item) for item in self.objects(records)]
        if self._array:
            body = b"[" + ARRAY_SEPARATOR.join(line[:-1] for line in lines) + b"]\n" if lines else b"[]\n"
        else:
            body = b"".join(lines)
        if self._gzip:
            compressor = _GZIP.stream()
            body = compressor.compress(body) + compressor.flush()
        return body


__all__ = ["UID_FIELD", "WebhookEncoder", "event_object", "log_chunk_objects"]
