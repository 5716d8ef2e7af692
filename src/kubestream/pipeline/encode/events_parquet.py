"""Parquet output of event batches (``encoding.format: parquet``): one file per batch.

The file has exactly the schema of the compactor's events files (``events_schema.EVENTS_SCHEMA``,
docs/schema.md): typed scalar columns to filter and group on, and ``record``, the whole record
as JSON text. So ``kubestream query``, ``timeline``, the compactor and an HA takeover read these
batches like compacted files, and a partition mixing NDJSON, protobuf and Parquet batches
compacts into one schema. zstd inside the file (``encoding.zstd_level``), one row group;
``encoding.compression`` does not apply (the extension is ``parquet``). The low-cardinality
columns (``EVENT_DICTIONARY_COLUMNS``) are dictionary-encoded, the rest plain, as the compactor
writes them.

The dicts become Arrow as one batch: each record serialized as NDJSON would write it (orjson),
the lines parsed together by Arrow's JSON reader into the typed columns, and ``record`` built
from the same bytes. A value of the wrong type for its column (hostile or unexpected) is null
there and kept in ``record``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from kubestream.pipeline.encode.events_schema import EVENT_DICTIONARY_COLUMNS, events_table_from_records


class EventsParquetFormat:
    """A ``RecordFormat``: event record dicts as one Parquet file (its own zstd inside)."""

    extension = "parquet"

    def __init__(self, *, zstd_level: int = 1) -> None:
        self.zstd_level = zstd_level

    def serialize(self, items: Iterable[dict[str, Any]]) -> bytes:
        """One Parquet file of the records, one row group."""
        return self.write(events_table_from_records(items))

    def write(self, table: pa.Table) -> bytes:
        """A table in the events schema as one Parquet file."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=max(table.num_rows, 1), compression="zstd",
                       compression_level=self.zstd_level, use_dictionary=EVENT_DICTIONARY_COLUMNS,
                       write_statistics=True)
        data: bytes = sink.getvalue().to_pybytes()
        return data

    def parse(self, data: bytes) -> list[dict[str, Any]]:
        """The record dicts of a file (its ``record`` column)."""
        table = pq.read_table(pa.BufferReader(data), columns=["record"], use_threads=False)
        return [orjson.loads(text) for text in table.column("record").to_pylist() if text is not None]
