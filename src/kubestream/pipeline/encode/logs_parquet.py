"""Parquet output of log batches (pyarrow, zstd).

Per-row columns: ``kind`` and ``cluster`` (constant dictionary columns: one value, an index per
row that RLE packs into a few bytes per batch), ``timestamp`` (timestamp[ns, UTC], parsed by Arrow's vectorised ISO 8601 cast, so
queries can filter and sort on it natively), ``stream`` (dictionary), ``message`` (string),
``message_base64`` (lossless mode, null unless the bytes were not UTF-8), ``truncated`` (bool),
``timestamp_invalid`` (bool: the line had no valid time, ``timestamp`` is when it was read),
``file`` (struct: ``path`` dictionary, ``offset`` int64), and, only in a batch holding a chunk of a
container with ``logs.parse_json`` on, ``parsed`` (Arrow's canonical ``arrow.json`` extension type,
written as a Parquet string with the JSON logical type; null where the message stayed text; with
``keep_message: false`` such rows have a null ``message``). The container metadata is constant per
chunk, so the ``kubernetes`` struct holds one dictionary-encoded column per field whose indices are
a ``take`` of a per-chunk mapping through the row → chunk index array: it costs a few bits per row
after RLE. Maps and lists (labels, annotations, owners, services) are JSON text in dictionary
columns; ``object_deleted`` is a bool column. A field one chunk lacks (a deleted pod's metadata)
is a null *index*, never a null inside the dictionary, which the Parquet writer refuses.

Timestamps: one vectorised cast of the whole column is the common case. When it fails (an empty
timestamp: the parser found no valid time; a leap second; ``t``/``z``), a vectorised regex picks
the rows in the form the cast reads, those are cast together, and only the rest are parsed one
by one (``util.rfc3339.rfc3339_to_epoch_ns``); a row that still has no time gets its chunk's read
time and ``timestamp_invalid``.

Writing: only the dictionary-typed columns are written with Parquet dictionary encoding (the
writer otherwise hashes every message, timestamp and offset to build a dictionary it then gives up
on), and the two monotonic int64 columns (``timestamp``, ``file.offset``) are delta-encoded.
Profiled on 11k-row batches: ~20 % less writer CPU and ~15 % fewer bytes than dictionary
everywhere.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kubestream.model import LogChunk, Record, log_chunk
from kubestream.util.rfc3339 import rfc3339_to_epoch_ns

_INDEX = pa.int32()
_TIMESTAMP = pa.timestamp("ns", "UTC")
# The RFC 3339 form Arrow's cast reads right (upper-case T and Z, no leap second); anything else
# is left to the per-row parser.
_CASTABLE = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
             r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")


class ParquetLogEncoder:
    """``Encoder`` for batches of log records: one Parquet file, one row group, zstd."""

    extension = "parquet"

    def __init__(self, *, zstd_level: int = 1, cluster: str | None = None) -> None:
        self._zstd_level = zstd_level
        self._cluster = cluster

    def encode(self, records: list[Record]) -> bytes:
        """The Parquet file of every chunk of ``records``."""
        chunks = [log_chunk(r) for r in records]
        chunks = [c for c in chunks if c.block.count]
        table = batch_table(chunks, self._cluster)
        sink = pa.BufferOutputStream()
        pq.write_table(
            table, sink, compression="zstd", compression_level=self._zstd_level,
            use_dictionary=_dictionary_columns(table.schema), column_encoding=_DELTA_COLUMNS,
            write_statistics=["timestamp"], row_group_size=max(table.num_rows, 1),
        )
        return bytes(sink.getvalue().to_pybytes())


_DELTA_COLUMNS = {"timestamp": "DELTA_BINARY_PACKED", "file.offset": "DELTA_BINARY_PACKED"}
"""Increasing within a chunk: their deltas pack into a few bits (no dictionary can do that)."""


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Dotted paths of the dictionary-typed leaf columns (nested in structs too)."""
    paths: list[str] = []

    def walk(field: pa.Field, prefix: str) -> None:
        if pa.types.is_struct(field.type):
            for i in range(field.type.num_fields):
                walk(field.type.field(i), f"{prefix}{field.name}.")
        elif pa.types.is_dictionary(field.type):
            paths.append(prefix + field.name)

    for field in schema:
        walk(field, "")
    return paths


def batch_table(chunks: Sequence[LogChunk], cluster: str | None = None) -> pa.Table:
    """The Arrow table of a batch of chunks; ``cluster`` fills the ``cluster`` column (null without)."""
    counts = [c.block.count for c in chunks]
    chunk_of_row = _ChunkRows(counts)
    timestamps, timestamp_invalid = _timestamps(chunks, chunk_of_row)
    constant = [0] * len(chunks)  # one expansion serves both constant columns (_ChunkRows caches it)
    columns: dict[str, pa.Array] = {
        "kind": _constant_dictionary(["log"], constant, chunk_of_row),
        "cluster": _constant_dictionary([cluster], constant, chunk_of_row) if cluster is not None
        else pa.DictionaryArray.from_arrays(pa.nulls(chunk_of_row.rows, _INDEX), pa.array([], pa.string())),
        "timestamp": timestamps,
        "stream": _streams(chunks),
        # Messages are checked UTF-8 bytes: a binary array is a zero-copy reinterpretation away.
        "message": pa.array(_concat([c.block.messages for c in chunks]), pa.binary()).view(pa.string()),
        "message_base64": _sparse_base64(chunks, counts),
        "truncated": _truncated(chunks, counts),
        "timestamp_invalid": timestamp_invalid,
        "file": _file_struct(chunks, chunk_of_row),
        "kubernetes": _kubernetes_struct(chunks, chunk_of_row),
    }
    if any(c.parsed is not None for c in chunks):
        columns["parsed"] = _parsed(chunks)
        if not all(c.keep_message for c in chunks):
            columns["message"] = pa.array(_concat([_kept_messages(c) for c in chunks]), pa.binary()).view(pa.string())
    return pa.table(columns)


_JSON = pa.json_()


def _parsed(chunks: Sequence[LogChunk]) -> pa.Array:
    """The ``parsed`` column: each row's compact JSON object, or null."""
    values = _concat([c.parsed if c.parsed is not None else [None] * c.block.count for c in chunks])
    return pa.ExtensionArray.from_storage(_JSON, pa.array(values, pa.binary()).view(pa.string()))


def _kept_messages(chunk: LogChunk) -> list[bytes | None]:
    """The chunk's messages, null where ``keep_message: false`` drops a parsed row's."""
    if chunk.parsed is None or chunk.keep_message:
        return chunk.block.messages  # type: ignore[return-value]
    return [None if value is not None else message for message, value in zip(chunk.block.messages, chunk.parsed,
                                                                            strict=True)]


def _concat(parts: list[list[Any]]) -> list[Any]:
    """The lists one after the other (list extends: no bytecode per element)."""
    if len(parts) == 1:
        return parts[0]
    out: list[Any] = []
    for p in parts:
        out += p
    return out


def _timestamps(chunks: Sequence[LogChunk], chunk_of_row: _ChunkRows) -> tuple[pa.Array, pa.Array]:
    """The ``timestamp`` column and the ``timestamp_invalid`` flags (see the module docstring)."""
    text = pa.array(_concat([c.block.timestamps for c in chunks]), pa.binary())
    try:
        # The runtimes write ASCII; a damaged stamp makes the cast fail, never misread.
        return text.view(pa.string()).cast(_TIMESTAMP), pa.repeat(pa.scalar(False), len(text))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    read_ns = pc.take(pa.array([c.read_time_ns for c in chunks], pa.int64()), chunk_of_row.chunk_of_row)
    castable = pc.match_substring_regex(text, _CASTABLE)
    nanos, parsed = _cast_rows(text, castable, read_ns)
    rest = pc.indices_nonzero(pc.invert(parsed)).to_pylist()
    values = text.to_pylist() if rest else []
    found = {row: ns for row in rest if (ns := rfc3339_to_epoch_ns(values[row])) is not None}
    if found:
        flags = [False] * len(text)
        for row in found:
            flags[row] = True
        mask = pa.array(flags, pa.bool_())
        # replace_with_mask takes the replacements in row order: ``found`` is in row order.
        nanos = pc.replace_with_mask(nanos, mask, pa.array(list(found.values()), pa.int64()))
        parsed = pc.or_(parsed, mask)
    return nanos.cast(_TIMESTAMP), pc.invert(parsed)


def _cast_rows(text: pa.Array, castable: pa.Array, read_ns: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Epoch nanoseconds of the ``castable`` rows (one vectorised cast), the read time elsewhere,
    and which rows got a time."""
    try:
        cast = pc.filter(text, castable).view(pa.string()).cast(_TIMESTAMP).cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # The regex admits "02-31": leave every row to the per-row parser (rare).
        return read_ns, pa.repeat(pa.scalar(False), len(text))
    return pc.replace_with_mask(read_ns, castable, cast), castable


_STREAM_VALUES = pa.array(["stdout", "stderr"])
_STREAM_WIDTH = len(b"stdout")
_STREAM_CODE_INDEX = 3
"""``b"stdout"[3]`` is ``o``, ``b"stderr"[3]`` is ``e``: one byte names the stream."""
_STDERR_CODE = ord("e")


def _streams(chunks: Sequence[LogChunk]) -> pa.Array:
    """The stream column, dictionary-encoded from one code byte per row (no hashing of values)."""
    # Every stream is b"stdout" or b"stderr": one byte of each ("o"/"e") names it.
    codes = b"".join(b"".join(c.block.streams) for c in chunks)[_STREAM_CODE_INDEX::_STREAM_WIDTH]
    as_uint8 = pa.Array.from_buffers(pa.uint8(), len(codes), [None, pa.py_buffer(codes)])
    indices = pc.equal(as_uint8, _STDERR_CODE).cast(pa.int8())
    return pa.DictionaryArray.from_arrays(indices, _STREAM_VALUES)


class _ChunkRows:
    """Expands per-chunk dictionary indices to per-row ones, through the row → chunk index array.

    Most ``kubernetes`` fields share one per-chunk mapping (every chunk of the batch from one
    container: all zeros), so each distinct mapping is expanded once, not once per field.
    """

    def __init__(self, counts: list[int]) -> None:
        self.rows = sum(counts)
        self.chunk_of_row = pa.concat_arrays([pa.repeat(pa.scalar(i, _INDEX), n) for i, n in enumerate(counts)]) \
            if counts else pa.array([], _INDEX)
        self._expanded: dict[tuple[int | None, ...], pa.Array] = {}

    def expand(self, per_chunk: Sequence[int | None]) -> pa.Array:
        """``per_chunk[chunk_of_row[i]]`` for every row ``i``."""
        key = tuple(per_chunk)
        indices = self._expanded.get(key)
        if indices is None:
            indices = self._expanded[key] = pc.take(pa.array(per_chunk, _INDEX), self.chunk_of_row)
        return indices


def _constant_dictionary(values: list[Any], per_chunk: Sequence[int | None], chunk_of_row: _ChunkRows,
                         value_type: pa.DataType | None = None) -> pa.Array:
    """A dictionary column whose value is constant within each chunk."""
    return pa.DictionaryArray.from_arrays(chunk_of_row.expand(per_chunk), pa.array(values, value_type or pa.string()))


def _intern(values: list[Any]) -> tuple[list[Any], list[int]]:
    """Distinct values (first-seen order) and each input's index among them."""
    seen: dict[Any, int] = {}
    indexes = [seen.setdefault(v, len(seen)) for v in values]
    return list(seen), indexes


def _intern_non_null(values: list[Any]) -> tuple[list[Any], list[int | None]]:
    """Like ``_intern``, but None is a null index, not a dictionary entry: the Parquet writer
    cannot write a dictionary that holds a null."""
    seen: dict[Any, int] = {}
    indexes = [None if v is None else seen.setdefault(v, len(seen)) for v in values]
    return list(seen), indexes


def _file_struct(chunks: Sequence[LogChunk], chunk_of_row: _ChunkRows) -> pa.StructArray:
    paths, per_chunk = _intern([c.path for c in chunks])
    offsets = pa.array(_concat([c.block.offsets for c in chunks]), pa.int64())
    return pa.StructArray.from_arrays(
        [_constant_dictionary(paths, per_chunk, chunk_of_row), offsets], names=["path", "offset"])


def _kubernetes_struct(chunks: Sequence[LogChunk], chunk_of_row: _ChunkRows) -> pa.StructArray:
    keys: dict[str, None] = {}
    for c in chunks:
        keys.update(dict.fromkeys(c.meta.kubernetes))
    fields: list[pa.Array] = []
    for key in keys:
        values = [_cell(c.meta.kubernetes.get(key)) for c in chunks]
        if all(v is None or isinstance(v, bool) for v in values):
            per_chunk_bools = pa.array(values, pa.bool_())
            fields.append(pc.take(per_chunk_bools, chunk_of_row.chunk_of_row))
            continue
        distinct, per_chunk = _intern_non_null([v if isinstance(v, str) or v is None else str(v) for v in values])
        fields.append(_constant_dictionary(distinct, per_chunk, chunk_of_row))
    if not fields:
        # Parquet cannot hold a struct without children (an empty batch): keep the column's shape.
        return pa.StructArray.from_arrays([pa.nulls(chunk_of_row.rows, pa.string())], names=["namespace"])
    return pa.StructArray.from_arrays(fields, names=list(keys))


def _cell(value: Any) -> Any:
    """Scalars as they are; maps and lists as compact JSON text."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _row_starts(counts: list[int]) -> list[int]:
    starts, total = [], 0
    for n in counts:
        starts.append(total)
        total += n
    return starts


def _sparse_base64(chunks: Sequence[LogChunk], counts: list[int]) -> pa.Array:
    total = sum(counts)
    if not any(c.block.raw_messages for c in chunks):
        return pa.nulls(total, pa.string())
    values: list[str | None] = [None] * total
    for start, c in zip(_row_starts(counts), chunks, strict=True):
        for row, raw in c.block.raw_messages.items():
            values[start + row] = base64.b64encode(raw).decode()
    return pa.array(values, pa.string())


def _truncated(chunks: Sequence[LogChunk], counts: list[int]) -> pa.Array:
    total = sum(counts)
    if not any(c.block.truncated_rows for c in chunks):
        return pa.repeat(pa.scalar(False), total)
    values = [False] * total
    for start, c in zip(_row_starts(counts), chunks, strict=True):
        for row in c.block.truncated_rows:
            values[start + row] = True
    return pa.array(values, pa.bool_())
