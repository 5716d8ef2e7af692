"""The Arrow schemas of compacted files, and turning archived objects into tables of them.

Events (documented in docs/schema.md): the schema the agent's events Parquet batches have too, so
it is defined beside their encoder (``pipeline.encode.events_schema``) and re-exported here: the
scalar fields users filter and group on, typed, under the same names as in the NDJSON records,
and ``record``, every record whole as JSON text.

Logs: the columns of the agent's own log Parquet (``pipeline.encode.logs_parquet``, ``LOG_SCHEMA``). Its ``kubernetes``
struct has the fields of the containers in each batch; a compacted file has the union of them,
a batch without one has null there.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pj

from kubestream.pipeline.encode.events_schema import EVENT_FIELDS as EVENT_FIELDS
from kubestream.pipeline.encode.events_schema import EVENTS_PARSE_SCHEMA as EVENTS_PARSE_SCHEMA
from kubestream.pipeline.encode.events_schema import EVENTS_SCHEMA as EVENTS_SCHEMA
from kubestream.pipeline.encode.events_schema import INVOLVED_FIELDS as INVOLVED_FIELDS
from kubestream.pipeline.encode.events_schema import KUBERNETES_FIELDS as KUBERNETES_FIELDS
from kubestream.pipeline.encode.events_schema import STREAM_METADATA_KEY as STREAM_METADATA_KEY
from kubestream.pipeline.encode.events_schema import events_lines as events_lines
from kubestream.pipeline.encode.events_schema import events_table_from_lines as events_table_from_lines

_DICT = pa.dictionary(pa.int32(), pa.string())

LOG_SCHEMA = pa.schema([
    ("kind", _DICT), ("cluster", _DICT), ("timestamp", pa.timestamp("ns", "UTC")), ("stream", pa.dictionary(pa.int8(), pa.string())),
    ("message", pa.string()), ("message_base64", pa.string()), ("truncated", pa.bool_()),
    ("timestamp_invalid", pa.bool_()), ("file", pa.struct([("path", _DICT), ("offset", pa.int64())])),
    ("kubernetes", pa.struct([("namespace", pa.string())])),
])
"""The top-level columns of the agent's log Parquet (``pipeline.encode.logs_parquet``; a test keeps the two
in step). Written here rather than derived: importing the logs source loads the Kubernetes client,
a second of start-up the compactor does not need."""
_LOG_TEMPLATE = LOG_SCHEMA
LOG_KUBERNETES_ORDER = [name for name, _ in KUBERNETES_FIELDS] + [
    "namespace_labels", "labels", "annotations", "owners", "node_labels", "services"]
"""Canonical order of the ``kubernetes`` fields of a compacted logs file (the rest follow, sorted)."""


# -- logs -----------------------------------------------------------------------------------

_KUBERNETES_KEY = b',"kubernetes":'


def _plain(type_: pa.DataType) -> pa.DataType:
    """``type_`` with dictionaries replaced by their values (what the JSON reader produces)."""
    if pa.types.is_dictionary(type_):
        return type_.value_type
    if pa.types.is_struct(type_):
        return pa.struct([pa.field(f.name, _plain(f.type)) for f in type_])
    return type_


_LOG_HEAD_SCHEMA = pa.schema([pa.field(f.name, _plain(f.type)) for f in _LOG_TEMPLATE if f.name != "kubernetes"])


def logs_table_from_ndjson(data: bytes) -> pa.Table:
    """The log Parquet table of an NDJSON logs object (decompressed)."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        return log_template_table(0)
    head = pj.read_json(
        io.BytesIO(data),
        read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, len(data) + 1)),
        parse_options=pj.ParseOptions(explicit_schema=_LOG_HEAD_SCHEMA, unexpected_field_behavior="ignore"),
    )
    columns = {name: head.column(name) for name in _LOG_HEAD_SCHEMA.names}
    columns["truncated"] = columns["truncated"].fill_null(False)
    if "timestamp_invalid" in columns:
        columns["timestamp_invalid"] = columns["timestamp_invalid"].fill_null(False)
    columns["kubernetes"] = _kubernetes_from_tails(lines)
    if b'"parsed":' in data:
        columns["parsed"] = _parsed_from_lines(lines)
    return pa.table(columns)


def _parsed_from_lines(lines: list[bytes]) -> pa.Array:
    """The ``parsed`` column (``logs.parse_json``) as the agent's Parquet has it: JSON text, or null."""
    values: list[str | None] = []
    for line in lines:
        parsed = orjson.loads(line).get("parsed") if b'"parsed":' in line else None
        values.append(None if parsed is None else orjson.dumps(parsed).decode())
    return pa.ExtensionArray.from_storage(pa.json_(), pa.array(values, pa.string()))


def _kubernetes_from_tails(lines: list[bytes]) -> pa.Array:
    """The ``kubernetes`` struct of log lines, each distinct block parsed once.

    The agent writes the block last and identical for every line of one container, so the text
    from ``,"kubernetes":`` on is interned and each distinct one decoded once; a line whose block
    is elsewhere (another writer) is decoded whole.
    """
    distinct: dict[bytes, int] = {}
    indices: list[int] = []
    for line in lines:
        at = line.find(_KUBERNETES_KEY)
        tail = line[at:] if at >= 0 else b"\0" + line
        indices.append(distinct.setdefault(tail, len(distinct)))
    blocks: list[dict[str, Any]] = []
    for tail in distinct:
        try:
            whole = orjson.loads(b"{" + tail[1:]) if tail[:1] == b"," else orjson.loads(tail[1:])
        except orjson.JSONDecodeError:
            whole = {}
        block = whole.get("kubernetes") if isinstance(whole, dict) else None
        blocks.append(block if isinstance(block, dict) else {})
    keys = _ordered_keys(key for block in blocks for key in block)
    take = pa.array(indices, pa.int32())
    children: list[pa.Array] = []
    for key in keys:
        cells = [_cell(block.get(key)) for block in blocks]
        if all(c is None or isinstance(c, bool) for c in cells):
            children.append(pa.array(cells, pa.bool_()).take(take))
        else:
            children.append(_dictionary_of(cells, take))
    if not children:
        return pa.StructArray.from_arrays([pa.nulls(len(lines), pa.string())], names=["namespace"])
    return pa.StructArray.from_arrays(children, names=keys)


def _dictionary_of(cells: list[Any], take: pa.Array) -> pa.DictionaryArray:
    """The per-line dictionary column of per-block ``cells``: a block without the key is a null
    index, never a null in the dictionary (which Parquet cannot write)."""
    values: list[str] = []
    codes: list[int | None] = []
    for cell in cells:
        if cell is None:
            codes.append(None)
        else:
            codes.append(len(values))
            values.append(cell if isinstance(cell, str) else str(cell))
    indices = pa.array(codes, pa.int32()).take(take)
    return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))


def _cell(value: Any) -> Any:
    """As the agent's log Parquet stores a ``kubernetes`` value: maps and lists as JSON text."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _ordered_keys(keys: Iterable[str]) -> list[str]:
    seen = set(keys)
    known = [k for k in LOG_KUBERNETES_ORDER if k in seen]
    return known + sorted(seen.difference(known))


def log_template_table(rows: int) -> pa.Table:
    """An all-null table of the agent's log columns (the shape of an empty batch)."""
    return pa.table({f.name: pa.nulls(rows, f.type) for f in _LOG_TEMPLATE}, schema=_LOG_TEMPLATE)


def logs_schema_for(schemas: Iterable[pa.Schema]) -> pa.Schema:
    """The schema that holds every row of tables with ``schemas``: the agent's columns first.

    The ``kubernetes`` struct is the union of the fields seen (canonical order, strings
    dictionary-encoded); a top-level column the agent does not write (a newer writer) is kept.
    """
    top: dict[str, pa.Field] = {f.name: f for f in _LOG_TEMPLATE}
    kube: dict[str, pa.DataType] = {}
    for schema in schemas:
        for field in schema:
            if field.name == "kubernetes" and pa.types.is_struct(field.type):
                for child in field.type:
                    kube[child.name] = _merge_type(kube.get(child.name), child.type)
            elif field.name not in top:
                top[field.name] = field
    kube_fields = [pa.field(name, kube[name]) for name in _ordered_keys(kube)] or [pa.field("namespace", pa.string())]
    top["kubernetes"] = pa.field("kubernetes", pa.struct(kube_fields))
    return pa.schema(list(top.values()), metadata={STREAM_METADATA_KEY: b"logs"})


def _merge_type(known: pa.DataType | None, new: pa.DataType) -> pa.DataType:
    """A bool stays bool only if every source has it so; anything else is a dictionary string."""
    if pa.types.is_boolean(new) and (known is None or pa.types.is_boolean(known)):
        return pa.bool_()
    if pa.types.is_null(new) and known is not None:
        return known
    return _DICT


# -- conforming a table to a schema ---------------------------------------------------------


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones null, others cast.

    Raises ``pa.ArrowInvalid`` when a value cannot be represented (the caller keeps the source).
    """
    rows = table.num_rows
    arrays = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            arrays.append(_conform_array(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0),
                                         field.type))
        else:
            arrays.append(pa.nulls(rows, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _conform_array(array: pa.Array, type_: pa.DataType) -> pa.Array:
    if array.type == type_:
        return array
    if pa.types.is_struct(type_) and pa.types.is_struct(array.type):
        present = {array.type.field(i).name for i in range(array.type.num_fields)}
        children = [
            _conform_array(array.field(f.name), f.type) if f.name in present else pa.nulls(len(array), f.type)
            for f in type_
        ]
        mask = array.is_null() if array.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(type_), mask=mask)
    if pa.types.is_dictionary(type_) and pa.types.is_dictionary(array.type):
        return array.cast(type_)
    if pa.types.is_dictionary(type_):
        return _conform_array(array, type_.value_type).dictionary_encode().cast(type_)
    if pa.types.is_dictionary(array.type):
        return array.cast(array.type.value_type).cast(type_)
    return array.cast(type_)
