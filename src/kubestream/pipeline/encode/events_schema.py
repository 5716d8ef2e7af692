"""The Arrow schema of events in Parquet, and turning event NDJSON lines into tables of it.

One schema for every events Parquet file: the agent's batches (``encoding.format: parquet``,
``pipeline.encode.events_parquet``) and the compactor's files (``archive.compact``), documented
in docs/schema.md. The scalar fields users filter and group on are typed columns under the same
names as in the NDJSON records (``event.reason``, ``involved.name``, ``kubernetes.owner_name``), so
one SQL reads both; maps and lists (labels, owners, ``related``) are not columns, and ``record``
holds every record whole as JSON text, so nothing is lost. The typed columns are parsed by
Arrow's JSON reader straight from the NDJSON lines; ``record`` is those lines as they were
written.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pj

from kubestream.pipeline.encode.ndjson import dumps_line

_TS = pa.timestamp("us", "UTC")
_DICT = pa.dictionary(pa.int32(), pa.string())

EVENT_FIELDS: list[tuple[str, pa.DataType]] = [
    ("uid", pa.string()), ("name", pa.string()), ("namespace", pa.string()),
    ("resource_version", pa.int64()), ("reason", pa.string()), ("message", pa.string()),
    ("type", pa.string()), ("action", pa.string()), ("count", pa.int64()), ("count_delta", pa.int64()),
    ("first_timestamp", _TS), ("last_timestamp", _TS), ("event_time", _TS), ("series_count", pa.int64()),
    ("reporting_controller", pa.string()), ("reporting_instance", pa.string()),
    ("source_component", pa.string()), ("source_host", pa.string()), ("api", pa.string()),
]
INVOLVED_FIELDS: list[tuple[str, pa.DataType]] = [
    (name, pa.string()) for name in
    ("kind", "name", "namespace", "uid", "api_version", "field_path", "resource_version")
]
KUBERNETES_FIELDS: list[tuple[str, pa.DataType]] = [
    ("enrichment", pa.string()), ("namespace", pa.string()), ("object_kind", pa.string()),
    ("object_name", pa.string()), ("object_uid", pa.string()), ("object_deleted", pa.bool_()),
    ("pod_name", pa.string()), ("pod_uid", pa.string()), ("pod_ip", pa.string()),
    ("container_name", pa.string()), ("container_image", pa.string()), ("container_id", pa.string()),
    ("owner_kind", pa.string()), ("owner_name", pa.string()), ("owner_uid", pa.string()),
    ("node_name", pa.string()), ("node_ip", pa.string()),
]
STREAM_METADATA_KEY = b"kubestream.stream"
"""The schema metadata key naming the stream (``events`` or ``logs``) of a Parquet file."""

EVENTS_PARSE_SCHEMA = pa.schema([
    ("kind", pa.string()), ("cluster", pa.string()), ("timestamp", _TS),
    ("event", pa.struct(EVENT_FIELDS)), ("involved", pa.struct(INVOLVED_FIELDS)),
    ("kubernetes", pa.struct(KUBERNETES_FIELDS)),
])
"""What Arrow's JSON reader extracts from an event line (everything else is only in ``record``)."""
EVENTS_SCHEMA = pa.schema(
    [pa.field("kind", _DICT), *list(EVENTS_PARSE_SCHEMA)[1:], pa.field("record", pa.string())],
    metadata={STREAM_METADATA_KEY: b"events"},
)
"""The schema of every events Parquet file (docs/schema.md)."""
EVENT_DICTIONARY_COLUMNS = [
    "kind", "cluster", "event.namespace", "event.reason", "event.type", "event.action", "event.api",
    "event.reporting_controller", "event.reporting_instance", "event.source_component", "event.source_host",
    "involved.kind", "involved.namespace", "involved.api_version", "involved.field_path",
    "kubernetes.enrichment", "kubernetes.namespace", "kubernetes.object_kind", "kubernetes.owner_kind",
    "kubernetes.owner_name", "kubernetes.node_name", "kubernetes.node_ip", "kubernetes.container_name",
    "kubernetes.container_image",
]
"""The low-cardinality columns written with Parquet dictionary encoding (the rest plain)."""


def events_table_from_lines(lines: Sequence[bytes]) -> pa.Table:
    """The events table of NDJSON lines (one event record each, no newline).

    A line that is not valid UTF-8 (another writer) is kept in ``record`` with U+FFFD.
    """
    if not lines:
        return EVENTS_SCHEMA.empty_table()
    return _table(lines, pa.array([line.decode("utf-8", "replace") for line in lines], pa.string()))


def events_table_from_records(records: Iterable[dict[str, Any]]) -> pa.Table:
    """The events table of record dicts: each serialized as NDJSON would write it, the whole
    batch then parsed at once (``record`` is built straight from those UTF-8 bytes).

    Raises ``ValueError`` for a record NDJSON can only write as non-standard JSON (``NaN``
    beside an integer beyond 64 bits), which no reader of ``record`` could parse.
    """
    lines = events_lines(records)
    if not lines:
        return EVENTS_SCHEMA.empty_table()
    return _table(lines, _string_array(lines))


def events_lines(records: Iterable[dict[str, Any]]) -> list[bytes]:
    """NDJSON lines (no newline) of record dicts, as ``NdjsonFormat`` writes them."""
    out: list[bytes] = []
    append = out.append
    dumps = orjson.dumps
    for record in records:
        try:
            append(dumps(record))
        except TypeError:  # orjson refuses it: the slower path NDJSON takes too
            append(dumps_line(record).rstrip(b"\n"))
    return out


def _string_array(lines: Sequence[bytes]) -> pa.Array:
    """A string array of ``lines`` (valid UTF-8) without decoding each one: one buffer, offsets."""
    offsets = [0] * (len(lines) + 1)
    total = 0
    for i, line in enumerate(lines, 1):
        total += len(line)
        offsets[i] = total
    if total >= 1 << 31:
        raise ValueError(f"an events batch of {total} bytes of records is more than one Parquet column holds")
    data = pa.py_buffer(b"".join(lines))
    array = pa.StringArray.from_buffers(len(lines), pa.array(offsets, pa.int32()).buffers()[1], data)
    array.validate(full=True)  # UTF-8 and offsets: a bad value fails here, not in a reader
    return array


def _table(lines: Sequence[bytes], records: pa.Array) -> pa.Table:
    try:
        parsed = pj.read_json(
            io.BytesIO(b"\n".join(lines)),
            read_options=pj.ReadOptions(use_threads=False, block_size=1 << 26),
            parse_options=pj.ParseOptions(explicit_schema=EVENTS_PARSE_SCHEMA, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # A record whose field has another type than the schema's (hostile or from another
        # writer): the typed columns of such values are null, the record is kept whole.
        parsed = pa.Table.from_pylist([_coerced(orjson.loads(line)) for line in lines], schema=EVENTS_PARSE_SCHEMA)
    columns = [parsed.column(name) for name in EVENTS_PARSE_SCHEMA.names]
    columns[0] = columns[0].cast(_DICT)
    return pa.Table.from_arrays([*columns, records], schema=EVENTS_SCHEMA)


def _coerced(record: Any) -> dict[str, Any]:
    """``record`` reduced to the parse schema's fields, values of the wrong type as null."""
    return _coerce_struct(record if isinstance(record, dict) else {}, EVENTS_PARSE_SCHEMA)


def _coerce_struct(value: dict[str, Any], fields: Iterable[pa.Field]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields:
        item = value.get(field.name)
        if pa.types.is_struct(field.type):
            out[field.name] = _coerce_struct(item, list(field.type)) if isinstance(item, dict) else None
        else:
            out[field.name] = _coerce_scalar(item, field.type)
    return out


def _coerce_scalar(value: Any, type_: pa.DataType) -> Any:
    try:
        pa.scalar(value, type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return None
    return value
