"""The flat shape of the ``events`` and ``logs`` views, and the conversions into it.

Records are nested (docs/schema.md) and their encodings differ: NDJSON and kubestream protobuf
carry maps as objects, Parquet as JSON text in dictionary columns, k8stream's ``L9Event`` has its
own field names and no counts. SQL written against one archive must work on every other, so every
object is converted into one flat Arrow table per stream, whatever its format:

* dict records (NDJSON, protobuf) through ``events_table`` / ``logs_table``;
* Parquet tables (the logs encoder's, compacted files) through ``flatten_parquet``, column-wise.

Text columns hold NULL rather than ``""`` for "unset" (the formats disagree on which they write),
except ``message``, where an empty log line is a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc

_TIME = pa.timestamp("us", "UTC")
_LABELS = pa.map_(pa.string(), pa.string())
_CHAIN = pa.list_(pa.string())

# The kinds a record "belongs to" as a workload when it is about the workload object itself.
WORKLOAD_KINDS: Final = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet"})


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a view: name, Arrow type, and the sentence docs/querying.md shows."""

    name: str
    type: pa.DataType
    doc: str


_COMMON_HEAD = (
    Column("time", _TIME, "when it happened (event: the occurrence's `timestamp`; log: the runtime's)"),
    Column("cluster", pa.string(), "the record's top-level `cluster` field (NULL when the archive has none)"),
    Column("namespace", pa.string(), "the namespace of the object (event) or pod (log)"),
)
_COMMON_POD = (
    Column("pod", pa.string(), "pod name (`kubernetes.pod_name`, or the involved object when it is a Pod)"),
    Column("pod_uid", pa.string(), "pod UID: joins events and logs of one pod incarnation"),
    Column("container", pa.string(), "container name"),
    Column("node", pa.string(), "node name (for events without enrichment: `source_host`)"),
)
_COMMON_OWNER = (
    Column("workload_kind", pa.string(),
           "top of the owner chain (`Deployment`, `StatefulSet`, `DaemonSet`, `CronJob`, `Job`...), "
           "or the object itself when it is a workload"),
    Column("workload_name", pa.string(), "its name"),
    Column("owner_chain", _CHAIN, "owners nearest first as `Kind/name`, e.g. `['ReplicaSet/web-7d9f8', "
                                  "'Deployment/web']`"),
    Column("labels", _LABELS, "the object's labels: `labels['app']`"),
)

EVENT_COLUMNS: Final[tuple[Column, ...]] = (
    *_COMMON_HEAD,
    Column("reason", pa.string(), "event reason (`BackOff`, `Unhealthy`...)"),
    Column("type", pa.string(), "`Normal` or `Warning` (NULL in k8stream archives)"),
    Column("message", pa.string(), "event message"),
    Column("count", pa.int64(), "occurrences so far (NULL in k8stream archives)"),
    Column("count_delta", pa.int64(), "occurrences this record adds: `sum(count_delta)` counts occurrences "
                                      "(NULL in k8stream archives)"),
    Column("involved_kind", pa.string(), "kind of the object the event is about"),
    Column("involved_name", pa.string(), "its name"),
    Column("involved_uid", pa.string(), "its UID"),
    Column("field_path", pa.string(), "`involvedObject.fieldPath`, e.g. `spec.containers{web}`"),
    *_COMMON_POD,
    *_COMMON_OWNER,
    Column("event_uid", pa.string(), "the Event object's UID"),
    Column("event_name", pa.string(), "the Event object's name"),
    Column("resource_version", pa.int64(), "the Event's resourceVersion when recorded"),
    Column("source_component", pa.string(), "who reported it (`kubelet`, `default-scheduler`...)"),
    Column("reporting_controller", pa.string(), "`reportingController` / `reportingComponent`"),
    Column("first_time", _TIME, "`firstTimestamp`"),
    Column("last_time", _TIME, "`lastTimestamp`"),
    Column("api", pa.string(), "`core/v1` or `events.k8s.io/v1`"),
)

LOG_COLUMNS: Final[tuple[Column, ...]] = (
    *_COMMON_HEAD,
    *_COMMON_POD,
    Column("stream", pa.string(), "`stdout` or `stderr`"),
    Column("message", pa.string(), "the log line (multi-line records joined with newlines)"),
    Column("truncated", pa.bool_(), "the line was cut at `logs.max_line_bytes` / `max_merged_bytes`"),
    *_COMMON_OWNER,
    Column("image", pa.string(), "container image"),
    Column("file_path", pa.string(), "the node's log file the line was read from"),
    Column("file_offset", pa.int64(), "byte offset of the line in that file"),
    Column("parsed", pa.string(), "the line's JSON object as JSON text (`logs.parse_json`), NULL when it was "
                                  "not parsed or the archive has none: `json_extract_string(parsed, '$.level')`"),
)

VIEWS: Final[dict[str, tuple[Column, ...]]] = {"events": EVENT_COLUMNS, "logs": LOG_COLUMNS}


def view_schema(view: str) -> pa.Schema:
    """The Arrow schema of ``view`` (``events`` or ``logs``)."""
    return pa.schema([pa.field(c.name, c.type) for c in VIEWS[view]])


def empty_table(view: str) -> pa.Table:
    """A table of ``view``'s shape without rows."""
    return view_schema(view).empty_table()


# -- dict records (NDJSON, protobuf) --------------------------------------------------------------


def _section(record: dict[str, Any], name: str) -> dict[str, Any]:
    value = record.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A text cell: NULL for absent or empty, numbers as their text."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _loads(value: Any) -> Any:
    """Maps and lists arrive as objects (NDJSON, protobuf) or as JSON text (Parquet)."""
    if isinstance(value, str | bytes) and value:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def _labels(value: Any) -> list[tuple[str, str]] | None:
    value = _loads(value)
    if not isinstance(value, dict):
        return None
    return [(str(k), v if isinstance(v, str) else orjson.dumps(v).decode()) for k, v in value.items()]


def _chain(value: Any) -> list[str] | None:
    value = _loads(value)
    if not isinstance(value, list):
        return None
    return [f"{o.get('kind', '')}/{o.get('name', '')}" for o in value if isinstance(o, dict)]


def _is_pod(involved: dict[str, Any]) -> bool:
    return involved.get("kind") == "Pod"


def _workload(kube: dict[str, Any], involved: dict[str, Any]) -> tuple[str | None, str | None]:
    kind, name = _text(kube.get("owner_kind")), _text(kube.get("owner_name"))
    if kind is None and involved.get("kind") in WORKLOAD_KINDS:
        return _text(involved.get("kind")), _text(involved.get("name"))
    return kind, name


def _event_row(record: dict[str, Any]) -> tuple[Any, ...]:
    event, involved, kube = _section(record, "event"), _section(record, "involved"), _section(record, "kubernetes")
    pod = _is_pod(involved)
    node = _text(kube.get("node_name")) or (_text(involved.get("name")) if involved.get("kind") == "Node" else None)
    workload_kind, workload_name = _workload(kube, involved)
    # Same order as EVENT_COLUMNS; the three time columns are parsed column-wise afterwards.
    return (
        record.get("timestamp"), _text(record.get("cluster")),
        _text(event.get("namespace")) or _text(kube.get("namespace")) or _text(involved.get("namespace")),
        _text(event.get("reason")), _text(event.get("type")), event.get("message"),
        _integer(event.get("count")), _integer(event.get("count_delta")),
        _text(involved.get("kind")), _text(involved.get("name")), _text(involved.get("uid")),
        _text(involved.get("field_path")),
        _text(kube.get("pod_name")) or (_text(involved.get("name")) if pod else None),
        _text(kube.get("pod_uid")) or (_text(involved.get("uid")) if pod else None),
        _text(kube.get("container_name")),
        node or _text(event.get("source_host")),
        workload_kind, workload_name, _chain(kube.get("owners")), _labels(kube.get("labels")),
        _text(event.get("uid")), _text(event.get("name")), _integer(event.get("resource_version")),
        _text(event.get("source_component")), _text(event.get("reporting_controller")),
        event.get("first_timestamp"), event.get("last_timestamp"), _text(event.get("api")),
    )


def _log_row(record: dict[str, Any]) -> tuple[Any, ...]:
    kube, file = _section(record, "kubernetes"), _section(record, "file")
    truncated = record.get("truncated")
    return (
        record.get("timestamp"), _text(record.get("cluster")), _text(kube.get("namespace")),
        _text(kube.get("pod_name")), _text(kube.get("pod_uid")), _text(kube.get("container_name")),
        _text(kube.get("node_name")), _text(record.get("stream")), record.get("message"),
        truncated if isinstance(truncated, bool) else False,
        _text(kube.get("owner_kind")), _text(kube.get("owner_name")), _chain(kube.get("owners")),
        _labels(kube.get("labels")), _text(kube.get("container_image")), _text(file.get("path")),
        _integer(file.get("offset")), _json_text(record.get("parsed")),
    )


def _json_text(value: Any) -> str | None:
    """A JSON column's cell: objects as compact JSON text, NULL when absent."""
    return None if value is None else orjson.dumps(value).decode()


def _json_column(array: pa.Array | None, rows: int) -> pa.Array:
    """``parsed`` of a Parquet file: JSON text (``arrow.json`` or string), NULL when the file has none."""
    if array is None:
        return pa.nulls(rows, pa.string())
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    if pa.types.is_struct(array.type) or pa.types.is_map(array.type):
        return pa.array([_json_text(v) for v in array.to_pylist()], pa.string())
    return array.cast(pa.string())


_TIME_COLUMNS: Final = frozenset(c.name for c in (*EVENT_COLUMNS, *LOG_COLUMNS) if c.type == _TIME)


def _rows_table(view: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    columns = VIEWS[view]
    arrays: list[pa.Array] = []
    for i, column in enumerate(columns):
        values = [row[i] for row in rows]
        if column.name in _TIME_COLUMNS:
            arrays.append(parse_times(values))
        elif column.name == "message":
            arrays.append(pa.array([v if isinstance(v, str) else _text(v) for v in values], pa.string()))
        else:
            arrays.append(pa.array(values, column.type))
    return pa.Table.from_arrays(arrays, schema=view_schema(view))


def events_table(records: Iterable[dict[str, Any]]) -> pa.Table:
    """The ``events`` shape of kubestream event records (NDJSON or protobuf, decoded)."""
    return _rows_table("events", [_event_row(r) for r in records if isinstance(r, dict)])


def logs_table(records: Iterable[dict[str, Any]]) -> pa.Table:
    """The ``logs`` shape of log records (NDJSON, decoded)."""
    return _rows_table("logs", [_log_row(r) for r in records if isinstance(r, dict)])


def l9event_record(message: dict[str, Any]) -> dict[str, Any]:
    """A k8stream ``L9Event`` (its field names) as the kubestream event record it came from.

    k8stream's message has no event type, count or enrichment beyond labels: those stay unset.
    """
    seconds = message.get("Timestamp")
    when = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") \
        if isinstance(seconds, int) and seconds > 0 else None
    addresses = message.get("Address") or []
    return {
        "kind": "event",
        "timestamp": when,
        "event": {"uid": message.get("ID"), "namespace": message.get("Namespace"), "reason": message.get("Reason"),
                  "message": message.get("Message"), "source_component": message.get("Component"),
                  "source_host": message.get("Host")},
        "involved": {"kind": message.get("ReferenceKind"), "name": message.get("ReferenceName"),
                     "namespace": message.get("ReferenceNamespace"), "uid": message.get("ReferenceUID"),
                     "api_version": message.get("ReferenceVersion")},
        "kubernetes": {"labels": message.get("Labels"), "annotations": message.get("Annotations"),
                       "node_ip": addresses[0] if addresses else None},
    }


# -- times ----------------------------------------------------------------------------------------


def _python_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python's parser stops at microseconds: drop the nanosecond digits CRI writes.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_times(values: Sequence[Any] | pa.Array | pa.ChunkedArray) -> pa.Array:
    """RFC 3339 texts (or Arrow timestamps) as ``timestamp[us, UTC]``; unparsable values are NULL."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_timestamp(values.type):
            if values.type.tz is None:
                values = pc.assume_timezone(values, "UTC")
            return values.cast(_TIME, safe=False)
        if pa.types.is_dictionary(values.type):
            values = values.cast(pa.string())
        texts = values.cast(pa.string())
    else:
        texts = pa.array([v if isinstance(v, str) else None for v in values], pa.string())
    try:
        # Arrow's ISO 8601 cast is vectorised; it takes "Z", offsets and up to nine decimals.
        return texts.cast(pa.timestamp("ns", "UTC")).cast(_TIME, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_python_time(v) for v in texts.to_pylist()], _TIME)


# -- Parquet tables (column-wise) -----------------------------------------------------------------


def _path(table: pa.Table, dotted: str) -> pa.Array | None:
    """The column at ``a.b.c`` (through structs), or None when the file has none."""
    first, *rest = dotted.split(".")
    if first not in table.column_names:
        return None
    array: pa.Array = table.column(first).combine_chunks()
    for name in rest:
        if not pa.types.is_struct(array.type) or array.type.get_field_index(name) < 0:
            return None
        array = pc.struct_field(array, name)
    return array


def _as_text(array: pa.Array | None, rows: int, *, keep_empty: bool = False) -> pa.Array:
    if array is None:
        return pa.nulls(rows, pa.string())
    # Dictionary, large_string and any other type: plain strings.
    array = array.cast(pa.string())
    if keep_empty:
        return array
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def _first(*arrays: pa.Array) -> pa.Array:
    return pc.coalesce(*arrays) if len(arrays) > 1 else arrays[0]


def _by_dictionary(array: pa.Array | None, rows: int, convert: Callable[[Any], Any], out: pa.DataType) -> pa.Array:
    """Convert each distinct value once: map/list columns are dictionary-encoded JSON in Parquet."""
    if array is None:
        return pa.nulls(rows, out)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        array = pc.dictionary_encode(array)
    if pa.types.is_dictionary(array.type):
        converted = pa.array([convert(v) for v in array.dictionary.to_pylist()], out)
        return converted.take(array.indices)
    return pa.array([convert(v) for v in array.to_pylist()], out)


def _integers(array: pa.Array | None, rows: int) -> pa.Array:
    if array is None:
        return pa.nulls(rows, pa.int64())
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    try:
        return array.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_integer(v) for v in array.to_pylist()], pa.int64())


def _flat_already(table: pa.Table, view: str) -> pa.Table | None:
    """A Parquet file written in the flat shape itself (some compactors may): cast column by column."""
    if "pod_uid" not in table.column_names or "kubernetes" in table.column_names:
        return None
    rows, arrays = table.num_rows, []
    for column in VIEWS[view]:
        present = table.column(column.name).combine_chunks() if column.name in table.column_names else None
        if present is None:
            arrays.append(pa.nulls(rows, column.type))
        elif column.type == _TIME:
            arrays.append(parse_times(present))
        else:
            arrays.append(present.cast(column.type))
    return pa.Table.from_arrays(arrays, schema=view_schema(view))


def _maps(table: pa.Table, rows: int) -> tuple[pa.Array, pa.Array]:
    """``labels`` and ``owner_chain``: from the ``kubernetes`` struct (JSON text, log Parquet) or,
    in compacted events files that keep maps only in the whole-record ``record`` column, from it."""
    labels, owners = _path(table, "kubernetes.labels"), _path(table, "kubernetes.owners")
    record = _path(table, "record")
    if labels is None and owners is None and record is not None:
        return _maps_from_records(record.to_pylist())
    return _by_dictionary(labels, rows, _labels, _LABELS), _by_dictionary(owners, rows, _chain, _CHAIN)


_KUBERNETES_TAIL = ',"kubernetes":'


def _kubernetes_block(text: Any) -> dict[str, Any]:
    """The ``kubernetes`` object of one record's JSON text."""
    record = _loads(text)
    return _section(record, "kubernetes") if isinstance(record, dict) else {}


def _maps_from_records(texts: list[Any]) -> tuple[pa.Array, pa.Array]:
    """``labels`` and ``owner_chain`` from whole-record JSON texts, each distinct block parsed once.

    The agent writes ``kubernetes`` last and the same for every event about one object, so the
    text after ``,"kubernetes":`` repeats: it is interned and decoded once (a record written in
    another key order is decoded whole).
    """
    distinct: dict[str, int] = {}
    indices: list[int] = []
    blocks: list[dict[str, Any]] = []
    for text in texts:
        at = text.rfind(_KUBERNETES_TAIL) if isinstance(text, str) else -1
        tail = text[at + len(_KUBERNETES_TAIL):-1] if at >= 0 and text.endswith("}") else None
        key = tail if tail is not None else f"\0{text}"
        index = distinct.get(key)
        if index is None:
            index = distinct[key] = len(blocks)
            block = _loads(tail) if tail is not None else None
            blocks.append(block if isinstance(block, dict) else _kubernetes_block(text))
        indices.append(index)
    take = pa.array(indices, pa.int32())
    labels = pa.array([_labels(b.get("labels")) for b in blocks], _LABELS).take(take)
    chain = pa.array([_chain(b.get("owners")) for b in blocks], _CHAIN).take(take)
    return labels, chain


def flatten_parquet(table: pa.Table, view: str) -> pa.Table:
    """A Parquet table of nested records (docs/schema.md's Parquet form) in ``view``'s shape."""
    flat = _flat_already(table, view)
    if flat is not None:
        return flat
    rows = table.num_rows

    def text(*paths: str) -> pa.Array:
        return _first(*(_as_text(_path(table, p), rows) for p in paths))

    kind = text("involved.kind")
    is_pod = pc.fill_null(pc.equal(kind, "Pod"), False)
    none = pa.nulls(rows, pa.string())
    labels, chain = _maps(table, rows)
    columns: dict[str, pa.Array] = {
        "time": parse_times(_path(table, "timestamp") or pa.nulls(rows, pa.string())),
        "cluster": text("cluster"),
        "pod": _first(text("kubernetes.pod_name"), pc.if_else(is_pod, text("involved.name"), none)),
        "pod_uid": _first(text("kubernetes.pod_uid"), pc.if_else(is_pod, text("involved.uid"), none)),
        "container": text("kubernetes.container_name"),
        "owner_chain": chain,
        "labels": labels,
    }
    if view == "events":
        is_workload = pc.fill_null(pc.is_in(kind, pa.array(sorted(WORKLOAD_KINDS))), False)
        is_node = pc.fill_null(pc.equal(kind, "Node"), False)
        owner_kind = text("kubernetes.owner_kind")
        columns.update({
            "namespace": text("event.namespace", "kubernetes.namespace", "involved.namespace"),
            "reason": text("event.reason"), "type": text("event.type"),
            "message": _as_text(_path(table, "event.message"), rows, keep_empty=True),
            "count": _integers(_path(table, "event.count"), rows),
            "count_delta": _integers(_path(table, "event.count_delta"), rows),
            "involved_kind": kind, "involved_name": text("involved.name"), "involved_uid": text("involved.uid"),
            "field_path": text("involved.field_path"),
            "node": _first(text("kubernetes.node_name"), pc.if_else(is_node, text("involved.name"), none),
                           text("event.source_host")),
            "workload_kind": _first(owner_kind, pc.if_else(is_workload, kind, none)),
            "workload_name": pc.if_else(pc.is_null(owner_kind), pc.if_else(is_workload, text("involved.name"), none),
                                        text("kubernetes.owner_name")),
            "event_uid": text("event.uid"), "event_name": text("event.name"),
            "resource_version": _integers(_path(table, "event.resource_version"), rows),
            "source_component": text("event.source_component"),
            "reporting_controller": text("event.reporting_controller"),
            "first_time": parse_times(_path(table, "event.first_timestamp") or none),
            "last_time": parse_times(_path(table, "event.last_timestamp") or none),
            "api": text("event.api"),
        })
    else:
        truncated = _path(table, "truncated")
        columns.update({
            "namespace": text("kubernetes.namespace"), "node": text("kubernetes.node_name"),
            "stream": text("stream"), "message": _as_text(_path(table, "message"), rows, keep_empty=True),
            "truncated": pc.fill_null(truncated.cast(pa.bool_()), False) if truncated is not None
            else pa.repeat(pa.scalar(False), rows),
            "workload_kind": text("kubernetes.owner_kind"), "workload_name": text("kubernetes.owner_name"),
            "image": text("kubernetes.container_image"), "file_path": text("file.path"),
            "file_offset": _integers(_path(table, "file.offset"), rows),
            "parsed": _json_column(_path(table, "parsed"), rows),
        })
    return pa.Table.from_arrays([columns[c.name] for c in VIEWS[view]], schema=view_schema(view))
