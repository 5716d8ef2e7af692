"""Records as one OTLP ``ExportLogsServiceRequest`` (OpenTelemetry logs), protobuf or JSON.

Mapping (docs/schema.md, "OTLP mapping"): records are grouped by resource, so a request carries
each pod's (container's) attributes once: one ``ResourceLogs`` per container for log lines, per
involved object for events (its namespace, and its pod, node or workload when it is one). The
resource attributes follow the OpenTelemetry semantic conventions for Kubernetes
(``k8s.cluster.name``, ``k8s.namespace.name``, ``k8s.pod.name``/``uid``, ``k8s.node.name``,
``k8s.container.name``, ``k8s.<workload>.name``/``uid`` from the owner chain, ``k8s.pod.label.<key>``,
and ``service.name``/``service.namespace`` derived as the conventions' Kubernetes page says:
``resource.opentelemetry.io/`` pod annotations first, else the workload's name).
Every log record carries ``log.record.uid``, derived from the record's identity in the archive,
never from the time of encoding: a receiver can drop the duplicates an at-least-once retry
makes, and the same records always encode to the same bytes.

The protobuf wire format is written directly (the official generated messages cost several
microseconds per field in Python, measured in bench/bench_otlp.py); log lines are encoded a chunk
at a time with the container's constant parts (resource, ``log.file.path``, the ``log.record.uid``
prefix) serialized once, every length computed from the fragments so the request is joined once.
OTLP/JSON (the protobuf JSON mapping: lowerCamelCase names, 64-bit integers as strings, integer
enums) is spliced the same way for log lines; event records, and the rare unusual log lines (no
valid time, truncated, not UTF-8), go through ``google.protobuf.json_format`` of their protobuf
record, so both encodings always carry the same request.

The encoder reads log chunks by their attributes (``block``, ``meta``, ``path``, ...), the shape
the logs source builds; it does not import the source.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections.abc import Iterable, Sequence
from typing import Any, cast

import orjson

from kubestream import __version__
from kubestream.config.outputs import OtlpSinkSettings
from kubestream.model import ParsedBlock, Record, log_chunk
from kubestream.pipeline.encode.compress import GzipCompression

SCOPE_NAME = "kubestream"
"""``InstrumentationScope.name`` of every record."""
UID_ATTRIBUTE = "log.record.uid"

SEVERITY_INFO = 9
SEVERITY_WARN = 13
_EVENT_SEVERITY = {"Normal": SEVERITY_INFO, "Warning": SEVERITY_WARN}
"""As the Collector's k8seventsreceiver maps an Event's ``type``."""

WORKLOAD_ATTRIBUTES = {
    "ReplicaSet": "k8s.replicaset", "Deployment": "k8s.deployment", "StatefulSet": "k8s.statefulset",
    "DaemonSet": "k8s.daemonset", "Job": "k8s.job", "CronJob": "k8s.cronjob",
}
"""Owner kind → semantic-convention attribute prefix (``<prefix>.name``, ``<prefix>.uid``)."""

_GZIP = GzipCompression(level=1)
"""The request body's ``Content-Encoding: gzip`` (level 1: bodies are sent once, soon)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NS_PER_US = 1000


# -- protobuf wire format ---------------------------------------------------------------------

def varint(n: int) -> bytes:
    """``n`` (≥ 0, < 2**64) as a protobuf base-128 varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = 1 << 14
_VARINTS = [varint(n) for n in range(_SMALL)]
"""Varints of 0..16383 (one or two bytes): the lengths of nearly every log record."""
_VARINT_LENS = [len(v) for v in _VARINTS]
_RECORD_HEADS = [b"\x12" + v for v in _VARINTS]
"""ScopeLogs.log_records (field 2) tag and length."""
_BODY_HEADS = [b"\x2a" + v for v in _VARINTS]
"""LogRecord.body (field 5) tag and length."""
_STRING_HEADS = [b"\x0a" + v for v in _VARINTS]
"""AnyValue.string_value (field 1) tag and length."""


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (``tag`` is the key byte: field number << 3 | 2)."""
    return bytes((tag,)) + varint(len(payload)) + payload


def any_value(value: Any) -> bytes:
    """An ``AnyValue`` message for a JSON-like value."""
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _field(0x3A, value)
    if isinstance(value, dict):
        return _field(0x32, b"".join(_field(0x0A, key_value(str(k), v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return _field(0x2A, b"".join(_field(0x0A, any_value(v)) for v in value))
    if value is None:
        return b""
    return _field(0x0A, str(value).encode())


def key_value(key: str, value: Any) -> bytes:
    """A ``KeyValue`` message."""
    return _field(0x0A, key.encode()) + _field(0x12, any_value(value))


def attribute(tag: int, key: str, value: Any) -> bytes:
    """A ``KeyValue`` as a repeated ``attributes`` field (``tag`` 0x0A in Resource, 0x32 in LogRecord)."""
    return _field(tag, key_value(key, value))


def _scope() -> bytes:
    return _field(0x0A, _field(0x0A, SCOPE_NAME.encode()) + _field(0x12, __version__.encode()))


_SCOPE = _scope()
_NO_VALUE = object()


# -- identity ---------------------------------------------------------------------------------

def _digest(*parts: object, size: int) -> str:
    return hashlib.blake2b("\x00".join(map(str, parts)).encode(), digest_size=size).hexdigest()


def event_uid(data: dict[str, Any], cluster: str | None) -> str:
    """The stable id of an event record: its cluster, the Event's uid, the resourceVersion and
    the occurrence count it was made for (32 hex digits)."""
    event = data.get("event") or {}
    return _digest(cluster or "", "events", event.get("uid", ""), event.get("resource_version", ""),
                   event.get("count", ""), data.get("timestamp", ""), size=16)


def log_file_identity(record: Record) -> str:
    """A log file's identity that survives rotation, gzip and restarts: the logs source's content
    fingerprint (in the record's checkpoint, scoped to the container's directory); without one,
    the file's path and ``dev:inode``."""
    fingerprint = getattr(record.checkpoint, "fingerprint", None)
    if isinstance(fingerprint, str) and fingerprint:
        return fingerprint
    chunk = log_chunk(record)
    return f"{chunk.path}@{chunk.file_key}"


def log_uid_prefix(record: Record, cluster: str | None) -> str:
    """The start of the ids of a chunk's lines: ``<16 hex digits>-``; a line's id adds its byte
    offset in the file (``log.record.uid`` = ``<file hash>-<offset>``)."""
    return _digest(cluster or "", "logs", log_file_identity(record), size=8) + "-"


# -- resources --------------------------------------------------------------------------------

def workload_attributes(kubernetes: dict[str, Any]) -> list[tuple[str, str]]:
    """``k8s.<workload>.name``/``uid`` of every owner in the chain (nearest first)."""
    owners = kubernetes.get("owners")
    if not isinstance(owners, list) or not owners:
        owners = [{"kind": kubernetes.get("owner_kind"), "name": kubernetes.get("owner_name"),
                   "uid": kubernetes.get("owner_uid")}]
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for owner in owners:
        if not isinstance(owner, dict):
            continue
        prefix = WORKLOAD_ATTRIBUTES.get(str(owner.get("kind")))
        if prefix is None or prefix in seen or not owner.get("name"):
            continue
        seen.add(prefix)
        out.append((f"{prefix}.name", str(owner["name"])))
        if owner.get("uid"):
            out.append((f"{prefix}.uid", str(owner["uid"])))
    return out


RESOURCE_ANNOTATION_PREFIX = "resource.opentelemetry.io/"
"""Pod annotations that name resource attributes (semantic conventions, "Specify resource
attributes using Kubernetes annotations")."""
_SERVICE_NAME_ORDER = ("k8s.deployment.name", "k8s.replicaset.name", "k8s.statefulset.name", "k8s.daemonset.name",
                       "k8s.cronjob.name", "k8s.job.name", "k8s.pod.name", "k8s.container.name")
"""Where ``service.name`` comes from without an annotation, first found (same source; the
well-known ``app.kubernetes.io`` labels are opt-in there and not used)."""


def _pod_attributes(kubernetes: dict[str, Any]) -> list[tuple[str, str]]:
    out = [(attr, str(kubernetes[key])) for key, attr in (
        ("pod_name", "k8s.pod.name"), ("pod_uid", "k8s.pod.uid"), ("node_name", "k8s.node.name"),
        ("container_name", "k8s.container.name")) if kubernetes.get(key)]
    out += workload_attributes(kubernetes)
    labels = kubernetes.get("labels")
    if isinstance(labels, dict):
        out += [(f"k8s.pod.label.{k}", str(v)) for k, v in sorted(labels.items())]
    return out + _service_attributes(kubernetes, dict(out))


def _service_attributes(kubernetes: dict[str, Any], known: dict[str, str]) -> list[tuple[str, str]]:
    """``service.name`` / ``service.namespace`` and the ``resource.opentelemetry.io/`` annotations."""
    annotations = kubernetes.get("annotations")
    named = {key.removeprefix(RESOURCE_ANNOTATION_PREFIX): str(value)
             for key, value in sorted(annotations.items()) if key.startswith(RESOURCE_ANNOTATION_PREFIX)
             and len(key) > len(RESOURCE_ANNOTATION_PREFIX)} if isinstance(annotations, dict) else {}
    out = [(key, value) for key, value in named.items() if key not in known]
    if "service.name" not in named:
        service = next((known[key] for key in _SERVICE_NAME_ORDER if known.get(key)), None)
        if service:
            out.append(("service.name", service))
    if "service.namespace" not in named and kubernetes.get("namespace"):
        out.append(("service.namespace", str(kubernetes["namespace"])))
    return out


def log_resource_attributes(kubernetes: dict[str, Any], cluster: str | None) -> list[tuple[str, str]]:
    """The resource of a container's log lines."""
    out = [("k8s.cluster.name", cluster)] if cluster else []
    if kubernetes.get("namespace"):
        out.append(("k8s.namespace.name", str(kubernetes["namespace"])))
    return out + _pod_attributes(kubernetes)


def event_resource_attributes(data: dict[str, Any], cluster: str | None) -> list[tuple[str, str]]:
    """The resource of an event: its namespace, and its object when that is a pod, a node or a workload."""
    involved = data.get("involved") or {}
    kubernetes = data.get("kubernetes") or {}
    out = [("k8s.cluster.name", cluster)] if cluster else []
    namespace = involved.get("namespace") or kubernetes.get("namespace")
    if namespace:
        out.append(("k8s.namespace.name", str(namespace)))
    kind = involved.get("kind")
    if kind == "Pod":
        pod = {"pod_name": involved.get("name"), "pod_uid": involved.get("uid"), **kubernetes}
        out += _pod_attributes(pod)
    elif kind == "Node" and involved.get("name"):
        out.append(("k8s.node.name", str(involved["name"])))
    elif kind in WORKLOAD_ATTRIBUTES and involved.get("name"):
        prefix = WORKLOAD_ATTRIBUTES[kind]
        out.append((f"{prefix}.name", str(involved["name"])))
        if involved.get("uid"):
            out.append((f"{prefix}.uid", str(involved["uid"])))
    return out


def _resource(attributes: Iterable[tuple[str, str]]) -> bytes:
    return _field(0x0A, b"".join(attribute(0x0A, k, v) for k, v in attributes))


# -- times ------------------------------------------------------------------------------------

def rfc3339_to_ns(text: str) -> int | None:
    """Unix nanoseconds of an RFC 3339 time (nine fraction digits kept), None if it is not one."""
    text = text.strip()
    if len(text) < 20 or text[10] not in "Tt":
        return None
    head, fraction, rest = text[:19], "", text[19:]
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        fraction, rest = rest[1:end], rest[end:]
        if not fraction or len(fraction) > 9:
            return None
    if rest in ("Z", "z"):
        rest = "+00:00"
    try:
        when = dt.datetime.fromisoformat(head.replace("t", "T") + rest)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    seconds = (when - _EPOCH) // dt.timedelta(seconds=1)
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def _stamps_ns(timestamps: Sequence[bytes]) -> list[bytes | None]:
    """Each log timestamp as the 8 little-endian bytes of a fixed64, None where it is no time."""
    import pyarrow as pa

    try:
        parsed = pa.array(timestamps, pa.binary()).view(pa.string()).cast(pa.timestamp("ns", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = None
    if parsed is not None and not parsed.null_count:
        raw = parsed.buffers()[1].to_pybytes()[parsed.offset * 8:(parsed.offset + len(parsed)) * 8]
        return [raw[i:i + 8] for i in range(0, len(raw), 8)]
    out: list[bytes | None] = []
    for stamp in timestamps:
        ns = rfc3339_to_ns(stamp.decode("ascii", "replace")) if stamp else None
        out.append(None if ns is None or ns < 0 else struct.pack("<Q", ns))
    return out


# -- log chunks -------------------------------------------------------------------------------

_IOSTREAM = {s: attribute(0x32, "log.iostream", s.decode()) for s in (b"stdout", b"stderr")}
_TRUNCATED = attribute(0x32, "kubestream.truncated", True)
_LIMIT_MARGIN = 256


def _uid_heads(prefix: bytes) -> list[bytes]:
    """Per number of offset digits (index), the bytes of a ``log.record.uid`` attribute up to its
    value's last part (the digits follow)."""
    key = _field(0x0A, UID_ATTRIBUTE.encode())
    heads = [b""]
    for digits in range(1, 21):
        length = len(prefix) + digits
        value = b"\x0a" + varint(length)
        any_value_len = len(value) + length
        kv_len = len(key) + 1 + len(varint(any_value_len)) + any_value_len
        heads.append(b"\x32" + varint(kv_len) + key + b"\x12" + varint(any_value_len) + value + prefix)
    return heads


def log_chunk_records(record: Record, cluster: str | None) -> tuple[list[bytes], int]:
    """The ``log_records`` fields (ScopeLogs field 2, tag included) of one chunk, as fragments,
    and their total size."""
    chunk = log_chunk(record)
    block = chunk.block
    messages = block.messages
    if not messages:
        return [], 0
    prefix = log_uid_prefix(record, cluster).encode()
    heads = _uid_heads(prefix)
    observed = b"\x59" + struct.pack("<Q", chunk.read_time_ns)
    path_attr = attribute(0x32, "log.file.path", chunk.path)
    stamps = _stamps_ns(block.timestamps)
    digits = " ".join(map(str, block.offsets)).encode().split(b" ")
    extras = _row_extras(block)
    fast = not extras and None not in stamps and max(map(len, messages)) < _SMALL - 18 - len(path_attr) - _LIMIT_MARGIN
    out: list[bytes] = []
    total = 0
    if fast:
        # Per line: tag + length, time + observed time, body, then the attributes (the stream's and
        # the path's are one constant fragment, the uid's head depends only on the digit count).
        times = [b"\x09" + stamp + observed for stamp in cast("list[bytes]", stamps)]
        tails = {stream: attr + path_attr for stream, attr in _IOSTREAM.items()}
        tail_lens = {stream: len(tail) for stream, tail in tails.items()}
        head_lens = [len(head) for head in heads]
        vl, record_heads, body_heads, string_heads = _VARINT_LENS, _RECORD_HEADS, _BODY_HEADS, _STRING_HEADS
        for message, stamp_field, stream, digit in zip(messages, times, block.streams, digits, strict=True):
            length = len(message)
            count = len(digit)
            value_len = 1 + vl[length] + length
            record_len = 19 + vl[value_len] + value_len + tail_lens[stream] + head_lens[count] + count
            out += (record_heads[record_len], stamp_field, body_heads[value_len], string_heads[length], message,
                    tails[stream], heads[count], digit)
            total += 1 + vl[record_len] + record_len
        return out, total
    for row, (message, maybe_stamp, stream, digit) in enumerate(zip(messages, stamps, block.streams, digits,
                                                                    strict=True)):
        body = _field(0x2A, _field(0x0A, message))
        time_field = b"\x09" + maybe_stamp if maybe_stamp is not None else b""
        rest = _IOSTREAM.get(stream) or attribute(0x32, "log.iostream", stream.decode("utf-8", "replace"))
        log_record = time_field + observed + body + rest + path_attr + heads[len(digit)] + digit + extras.get(row, b"")
        field = _field(0x12, log_record)
        out.append(field)
        total += len(field)
    return out, total


def _row_extras(block: ParsedBlock) -> dict[int, bytes]:
    """Attributes of the rare rows: truncated, or not UTF-8 (the original bytes, lossless mode)."""
    extras: dict[int, bytes] = {}
    for row, raw in block.raw_messages.items():
        extras[row] = attribute(0x32, "kubestream.message_bytes", bytes(raw))
    for row in block.truncated_rows:
        extras[row] = extras.get(row, b"") + _TRUNCATED
    return extras


# -- events -----------------------------------------------------------------------------------

_EVENT_ATTRIBUTES = (
    ("reason", "k8s.event.reason"), ("name", "k8s.event.name"), ("uid", "k8s.event.uid"),
    ("action", "k8s.event.action"), ("count", "k8s.event.count"), ("count_delta", "k8s.event.count_delta"),
    ("reporting_controller", "k8s.event.reporting_controller"),
    ("reporting_instance", "k8s.event.reporting_instance"),
    ("source_component", "k8s.event.source_component"), ("source_host", "k8s.event.source_host"),
)
_INVOLVED_ATTRIBUTES = (
    ("kind", "k8s.object.kind"), ("name", "k8s.object.name"), ("uid", "k8s.object.uid"),
    ("namespace", "k8s.object.namespace"), ("api_version", "k8s.object.api_version"),
    ("field_path", "k8s.object.field_path"),
)


def event_log_record(data: dict[str, Any], cluster: str | None) -> bytes:
    """The ``LogRecord`` (without its field tag) of one event record."""
    event = data.get("event") or {}
    involved = data.get("involved") or {}
    stamp = rfc3339_to_ns(str(data.get("timestamp") or ""))
    parts: list[bytes] = []
    if stamp is not None and stamp >= 0:
        packed = struct.pack("<Q", stamp)
        parts += (b"\x09", packed, b"\x59", packed)
    event_type = str(event.get("type") or "")
    severity = _EVENT_SEVERITY.get(event_type)
    if severity is not None:
        parts.append(b"\x10" + varint(severity))
    if event_type:
        parts.append(_field(0x1A, event_type.encode()))
    parts.append(_field(0x2A, any_value(str(event.get("message") or ""))))
    for key, name in _EVENT_ATTRIBUTES:
        value = event.get(key, _NO_VALUE)
        if value is not _NO_VALUE and value not in ("", None):
            parts.append(attribute(0x32, name, value))
    for key, name in _INVOLVED_ATTRIBUTES:
        if involved.get(key):
            parts.append(attribute(0x32, name, str(involved[key])))
    parts.append(attribute(0x32, UID_ATTRIBUTE, event_uid(data, cluster)))
    return b"".join(parts)


# -- the request ------------------------------------------------------------------------------

class _Group:
    __slots__ = ("fragments", "resource", "size")

    def __init__(self, resource: bytes) -> None:
        self.resource = resource
        self.fragments: list[bytes] = []
        self.size = 0
        """Total length of ``fragments``."""


def _request(groups: Iterable[_Group]) -> bytes:
    """The ExportLogsServiceRequest, joined once: every length is known from the fragment sizes."""
    out: list[bytes] = []
    for group in groups:
        scope_logs_len = len(_SCOPE) + group.size
        scope_field = b"\x12" + varint(scope_logs_len)
        resource_logs_len = len(group.resource) + len(scope_field) + scope_logs_len
        out += (b"\x0a", varint(resource_logs_len), group.resource, scope_field, _SCOPE)
        out += group.fragments
    return b"".join(out)


class OtlpEncoder:
    """``Encoder``: a batch of one stream as one ExportLogsServiceRequest body, compressed as configured."""

    def __init__(self, settings: OtlpSinkSettings, *, stream: str, cluster: str | None) -> None:
        self.settings = settings
        self.stream = stream
        self.cluster = cluster
        self._json = settings.encoding == "json"
        self._gzip = settings.compression == "gzip"
        base = "otlp.json" if self._json else "otlp.pb"
        self._extension = f"{base}.gz" if self._gzip else base
        self._resources: dict[tuple[bytes, str | None], bytes] = {}

    @property
    def extension(self) -> str:
        return self._extension

    @property
    def content_type(self) -> str:
        """The request's ``Content-Type``."""
        return "application/json" if self._json else "application/x-protobuf"

    def encode(self, records: list[Record]) -> bytes:
        """One request body for ``records`` (protobuf or JSON), gzip-compressed if configured."""
        body = self.encode_json(records) if self._json else self.encode_protobuf(records)
        if self._gzip:
            compressor = _GZIP.stream()
            body = compressor.compress(body) + compressor.flush()
        return body

    def encode_protobuf(self, records: list[Record]) -> bytes:
        """The uncompressed protobuf ``ExportLogsServiceRequest`` of ``records``."""
        groups: dict[Any, _Group] = {}
        for record in records:
            chunk = record.chunk
            if chunk is not None:
                group = self._log_group(groups, chunk.meta, record.data.get("cluster") or self.cluster)
                fragments, size = log_chunk_records(record, self.cluster)
                group.fragments += fragments
                group.size += size
            else:
                cluster = record.data.get("cluster") or self.cluster
                attributes = event_resource_attributes(record.data, cluster)
                key = ("event", tuple(attributes))
                event_group = groups.get(key)
                if event_group is None:
                    event_group = groups[key] = _Group(_resource(attributes))
                field = _field(0x12, event_log_record(record.data, cluster))
                event_group.fragments.append(field)
                event_group.size += len(field)
        return _request(groups.values())

    def _log_group(self, groups: dict[Any, _Group], meta: Any, cluster: str | None) -> _Group:
        encoded: bytes = meta.encoded
        key = (encoded, cluster)
        group = groups.get(key)
        if group is None:
            resource = self._resources.get(key)
            if resource is None:
                if len(self._resources) > 4096:
                    self._resources.clear()
                resource = self._resources[key] = _resource(log_resource_attributes(meta.kubernetes, cluster))
            group = groups[key] = _Group(resource)
        return group


    def encode_json(self, records: list[Record]) -> bytes:
        """The uncompressed OTLP/JSON ``ExportLogsServiceRequest`` of ``records`` (the same request
        as ``encode_protobuf``, in the protobuf JSON mapping OTLP/JSON uses)."""
        groups: dict[Any, tuple[list[tuple[str, str]], list[bytes]]] = {}
        for record in records:
            chunk = record.chunk
            if chunk is not None:
                cluster = record.data.get("cluster") or self.cluster
                key: Any = (chunk.meta.encoded, cluster)
                if key not in groups:
                    groups[key] = (log_resource_attributes(chunk.meta.kubernetes, cluster), [])
                groups[key][1].extend(log_chunk_json(record, self.cluster))
            else:
                cluster = record.data.get("cluster") or self.cluster
                attributes = event_resource_attributes(record.data, cluster)
                key = ("event", tuple(attributes))
                if key not in groups:
                    groups[key] = (attributes, [])
                groups[key][1].append(b"," + _log_record_json(event_log_record(record.data, cluster)))
        out: list[bytes] = []
        for attributes, fragments in groups.values():
            resource = orjson.dumps({"attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes]})
            out += (b',{"resource":', resource, _JSON_SCOPE_OPEN)
            if fragments:
                out.append(fragments[0][1:])  # every record starts with its separating comma
                out += fragments[1:]
            out.append(b"]}]}")
        if out:
            out[0] = out[0][1:]
        return b'{"resourceLogs":[' + b"".join(out) + b"]}"


_JSON_SCOPE_OPEN = b',"scopeLogs":[{"scope":' + orjson.dumps({"name": SCOPE_NAME, "version": __version__}) + \
    b',"logRecords":['


def _log_record_json(log_record: bytes) -> bytes:
    """One LogRecord (protobuf, without its tag) in the OTLP/JSON mapping."""
    from google.protobuf import json_format
    from opentelemetry.proto.logs.v1 import logs_pb2

    message = logs_pb2.LogRecord.FromString(log_record)
    return orjson.dumps(json_format.MessageToDict(message, use_integers_for_enums=True))


def log_chunk_json(record: Record, cluster: str | None) -> list[bytes]:
    """The OTLP/JSON log records of one chunk, as fragments each starting with a comma."""
    chunk = log_chunk(record)
    block = chunk.block
    messages = block.messages
    if not messages:
        return []
    stamps = _stamps_ns(block.timestamps)
    if _row_extras(block) or None in stamps:
        # The rare rows (no valid time, truncated, not UTF-8): through the protobuf record.
        fields_, _ = log_chunk_records(record, cluster)
        return [b"," + _log_record_json(_field_value(field)) for field in fields_]
    times = struct.unpack(f"<{len(stamps)}Q", b"".join(cast("list[bytes]", stamps)))
    observed = str(chunk.read_time_ns).encode()
    head = b',{"timeUnixNano":"'
    middle = b'","observedTimeUnixNano":"' + observed + b'","body":{"stringValue":'
    path = orjson.dumps({"key": "log.file.path", "value": {"stringValue": chunk.path}})
    tails = {stream: b'},"attributes":[' + orjson.dumps({"key": "log.iostream", "value": {"stringValue": stream.decode()}})
             + b"," + path + b',{"key":"log.record.uid","value":{"stringValue":"'
             + log_uid_prefix(record, cluster).encode() for stream in (b"stdout", b"stderr")}
    end = b'"}}]}'
    digits = " ".join(map(str, block.offsets)).encode().split(b" ")
    out: list[bytes] = []
    dumps = orjson.dumps
    for ns, message, stream, digit in zip(map(str, times), messages, block.streams, digits, strict=True):
        out += (head, ns.encode(), middle, dumps(message.decode()), tails[stream], digit, end)
    return [b"".join(out)]


def _field_value(field: bytes) -> bytes:
    """The value of a length-delimited protobuf field (after its one-byte tag and its length)."""
    pos = 1
    while field[pos] & 0x80:
        pos += 1
    return field[pos + 1:]


__all__ = ["OtlpEncoder", "event_uid", "log_chunk_json", "log_chunk_records", "log_uid_prefix", "varint"]
