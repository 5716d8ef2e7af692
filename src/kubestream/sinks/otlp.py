"""The OTLP/HTTP logs sink: ``POST <endpoint>`` of the ExportLogsServiceRequest ``OtlpEncoder`` made.

Delivery is at least once (a failed attempt is retried whole); every log record carries a stable
``log.record.uid`` so a receiver can drop the duplicates.

Answers, as the OTLP/HTTP specification's "Failures" and "Retryable Response Codes" sections
define them: 2xx is success; a 2xx whose ``partial_success.rejected_log_records`` is above zero
means the rest was accepted and the rejected records must not be sent again, so they are counted
(``kubestream_records_dropped_total{reason="otlp_rejected"}``) and the server's message is logged
once; 429, 502, 503 and 504 are retryable (``SinkRetryableError`` with the ``Retry-After`` delay,
seconds or an HTTP date); every other 4xx and 5xx must not be retried: 401/403 (credentials) are a
``SinkFatalError``, the rest (400 bad data, 413 too large, 500, ...) a ``SinkRejectedError`` (the
payload becomes a dead letter). No answer at all is a ``SinkUnreachableError``.

A payload whose uncompressed request is larger than ``max_request_bytes`` is sent as several
requests, split between ResourceLogs and, inside one that is too large, between log records (its
resource and scope repeated), deterministically; a retry re-sends every part.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from kubestream.config.outputs import OtlpSinkSettings
from kubestream.errors import SinkError, SinkRejectedError, SinkRetryableError
from kubestream.obs.metrics import Metrics
from kubestream.sinks.http import (
    Answer,
    HttpClient,
    answer_detail,
    classify_common,
    parse_retry_after,
    split_payload,
)

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""The OTLP/HTTP retryable response codes; every other failure status must not be retried."""
DROPPED_REASON = "otlp_rejected"
_OVERHEAD = 16
"""Room for the tags and length varints around a unit when packing requests."""


# -- splitting a request on the wire ----------------------------------------------------------

def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def fields(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(field number, the whole field's bytes: tag, length and value) of a message's fields."""
    pos, size = 0, len(data)
    while pos < size:
        start = pos
        key, pos = _varint_at(data, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _varint_at(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _varint_at(data, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire} at offset {start}")
        if pos > size:
            raise ValueError("truncated message")
        yield key >> 3, data[start:pos]


def _payload(field: bytes) -> bytes:
    """The value of a length-delimited field (its bytes after the tag and length)."""
    _, pos = _varint_at(field, 0)
    _, pos = _varint_at(field, pos)
    return field[pos:]


def _wrap(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _split_resource_logs(field: bytes, limit: int) -> Iterator[bytes]:
    """A too-large ResourceLogs field as several, each with its resource and scope, split between records."""
    kept: list[bytes] = []
    scopes: list[bytes] = []
    for number, sub in fields(_payload(field)):
        (scopes if number == 2 else kept).append(sub)
    head = b"".join(kept)
    for scope_field in scopes:
        scope_kept: list[bytes] = []
        records: list[bytes] = []
        for number, sub in fields(_payload(scope_field)):
            (records if number == 2 else scope_kept).append(sub)
        scope_head = b"".join(scope_kept)
        budget = max(1, limit - len(head) - len(scope_head) - 2 * _OVERHEAD)
        group: list[bytes] = []
        size = 0
        for record in records:
            if group and size + len(record) > budget:
                yield _wrap(b"\x0a", head + _wrap(b"\x12", scope_head + b"".join(group)))
                group, size = [], 0
            group.append(record)
            size += len(record)
        if group or not records:
            yield _wrap(b"\x0a", head + _wrap(b"\x12", scope_head + b"".join(group)))


def split_protobuf(data: bytes, limit: int) -> list[bytes]:
    """An ExportLogsServiceRequest as several, each at most ``limit`` bytes where a single log
    record allows it."""
    units: list[bytes] = []
    for _, field in fields(data):
        if len(field) <= limit - _OVERHEAD:
            units.append(field)
        else:
            units += _split_resource_logs(field, limit)
    requests: list[bytes] = []
    group: list[bytes] = []
    size = 0
    for unit in units:
        if group and size + len(unit) > limit:
            requests.append(b"".join(group))
            group, size = [], 0
        group.append(unit)
        size += len(unit)
    if group:
        requests.append(b"".join(group))
    return requests


def split_json(data: bytes, limit: int) -> list[bytes]:
    """The OTLP/JSON form of ``split_protobuf``."""
    request = orjson.loads(data)
    units: list[dict[str, object]] = []
    for resource_logs in request.get("resourceLogs", []):
        if len(orjson.dumps(resource_logs)) <= limit - _OVERHEAD:
            units.append(resource_logs)
            continue
        for scope_logs in resource_logs.get("scopeLogs", []):
            records = scope_logs.get("logRecords", [])
            head = {**resource_logs, "scopeLogs": [{**scope_logs, "logRecords": []}]}
            budget = max(1, limit - len(orjson.dumps(head)) - _OVERHEAD)
            group: list[object] = []
            size = 0
            for record in records:
                length = len(orjson.dumps(record)) + 1
                if group and size + length > budget:
                    units.append({**resource_logs, "scopeLogs": [{**scope_logs, "logRecords": group}]})
                    group, size = [], 0
                group.append(record)
                size += length
            units.append({**resource_logs, "scopeLogs": [{**scope_logs, "logRecords": group}]})
    bodies: list[bytes] = []
    batch: list[object] = []
    size = 0
    for unit in units:
        length = len(orjson.dumps(unit)) + 1
        if batch and size + length > limit - _OVERHEAD:
            bodies.append(orjson.dumps({"resourceLogs": batch}))
            batch, size = [], 0
        batch.append(unit)
        size += length
    if batch:
        bodies.append(orjson.dumps({"resourceLogs": batch}))
    return bodies


# -- the answer -------------------------------------------------------------------------------

def rejected_records(answer: Answer) -> tuple[int, str]:
    """``partial_success``: (rejected log records, the server's message) of a 2xx answer."""
    body = answer.body
    if not body.strip():
        return 0, ""
    content_type = answer.headers.get("Content-Type", "")
    try:
        if "json" in content_type or body.lstrip().startswith(b"{"):
            partial = orjson.loads(body).get("partialSuccess") or {}
            return int(partial.get("rejectedLogRecords") or 0), str(partial.get("errorMessage") or "")
        response = logs_service_pb2.ExportLogsServiceResponse.FromString(body)
    except (orjson.JSONDecodeError, DecodeError, AttributeError, TypeError, ValueError):
        log.debug("OTLP answer not understood as an ExportLogsServiceResponse: %r", body[:100])
        return 0, ""
    partial_success = response.partial_success
    return int(partial_success.rejected_log_records), partial_success.error_message


def classify(answer: Answer, where: str) -> SinkError | None:
    """None for a 2xx answer, else the error to raise (see the module docstring)."""
    status = answer.status
    if 200 <= status < 300:
        return None
    if status in RETRYABLE_STATUSES:
        return SinkRetryableError(f"{where}: {status}: {answer_detail(answer)}",
                                  retry_after=parse_retry_after(answer.headers.get("Retry-After")))
    common = classify_common(answer, where)
    if common is not None:
        return common
    return SinkRejectedError(f"{where}: {status} (not retryable per OTLP): {answer_detail(answer)}")


class OtlpSink:
    """``Sink`` exporting OTLP/HTTP logs payloads (see the module docstring)."""

    def __init__(self, settings: OtlpSinkSettings, *, metrics: Metrics | None = None, name: str = "otlp") -> None:
        self.settings = settings
        self.name = name
        self._metrics = metrics
        self._client = HttpClient(settings, url=settings.endpoint, name=name, key=f"{name}.endpoint")
        self._content_type = "application/json" if settings.encoding == "json" else "application/x-protobuf"
        self._partial_logged = False
        self.rejected_total = 0
        """Log records the receiver rejected in partial successes (also in the metrics)."""

    async def check(self) -> None:
        """A connection (and TLS handshake) to the endpoint's host; nothing is sent."""
        if self.settings.bearer_token_file is not None:
            self._client.headers(self._content_type, compressed=False)
        await self._client.check_connection()

    def requests(self, payload: bytes) -> list[bytes]:
        """The request bodies of one payload (compressed as it is), in order."""
        return split_payload(payload, self.settings.max_request_bytes, self._split)[0]

    def _split(self, data: bytes, limit: int) -> list[bytes]:
        return split_json(data, limit) if self.settings.encoding == "json" else split_protobuf(data, limit)

    async def put(self, key: str, source: Path, size: int) -> None:
        """POST the request(s) of ``source``; returns once every part was accepted (2xx)."""
        payload = await asyncio.to_thread(source.read_bytes)
        bodies, compressed = split_payload(payload, self.settings.max_request_bytes, self._split)
        await self._client.post_all(bodies, self._content_type, compressed=compressed, key=key,
                                    classify=classify, accepted=self._count_partial)

    def _count_partial(self, answer: Answer, where: str) -> None:
        rejected, message = rejected_records(answer)
        if rejected <= 0:
            return
        self.rejected_total += rejected
        if self._metrics is not None:
            self._metrics.records_dropped.labels(source=self.name, reason=DROPPED_REASON).inc(rejected)
        if not self._partial_logged:
            self._partial_logged = True
            log.warning("%s: the receiver rejected %d log records (the rest was accepted, not sent again): %s "
                        "(counted in kubestream_records_dropped_total{reason=%r}; logged once)",
                        where, rejected, message or "no message", DROPPED_REASON)

    async def close(self) -> None:
        await self._client.close()


__all__ = ["OtlpSink", "classify", "rejected_records", "split_json", "split_protobuf"]
