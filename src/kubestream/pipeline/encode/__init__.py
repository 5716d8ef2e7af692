"""Turning a closed batch into bytes: a record format (NDJSON, protobuf, or Parquet) then
compression (``compress``; none for Parquet: zstd is inside the file).

Every encoder of the agent lives in this package. Events: ``make_encoder(settings, cluster=...)``
returns a ``Codec`` over record dicts (``ndjson``, ``protobuf``, ``events_parquet``). Logs:
``make_log_encoder(settings)`` returns the encoder of log chunks (``logs_ndjson``: spliced byte
fragments; ``logs_parquet``), which never builds a dict per line. Destinations that are not
object stores: ``otlp`` and ``webhook`` (``destination_encoder``). A ``Codec`` can also
``decode`` its own output (tests, tools, and anyone reading the archive from Python). With a
cluster name, every record is written with it as its top-level ``cluster`` field (right after
``kind``); the records in the pipeline stay as the sources built them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from kubestream.config.settings import EncodingSettings, Settings, SinkSettings
from kubestream.model import Record
from kubestream.pipeline.encode.cluster_field import with_cluster
from kubestream.pipeline.encode.compress import Compressor, NoCompression, make_compressor
from kubestream.pipeline.encode.logs_ndjson import NdjsonLogEncoder
from kubestream.pipeline.encode.ndjson import NdjsonFormat
from kubestream.pipeline.encode.otlp import OtlpEncoder
from kubestream.pipeline.encode.protobuf import K8streamProtobufFormat, KubestreamProtobufFormat
from kubestream.pipeline.encode.webhook import WebhookEncoder


class Encoder(Protocol):
    """Encodes the records of a batch (already in output order) into one payload."""

    @property
    def extension(self) -> str:
        """The file extension of the payload, e.g. ``ndjson.gz`` or ``pb.zst``."""
        ...

    def encode(self, records: list[Record]) -> bytes: ...


class RecordFormat(Protocol):
    """A serialization of record dicts; ``extension`` is e.g. ``ndjson``."""

    extension: str

    def serialize(self, items: Iterable[dict[str, Any]]) -> bytes: ...

    def parse(self, data: bytes) -> list[dict[str, Any]]: ...


class Codec:
    """A record format followed by a compressor; with ``cluster``, records are stamped with it."""

    def __init__(self, record_format: RecordFormat, compressor: Compressor, cluster: str | None = None) -> None:
        self.record_format = record_format
        self.compressor = compressor
        self.cluster = cluster
        suffix = compressor.suffix
        self._extension = f"{record_format.extension}.{suffix}" if suffix else record_format.extension

    @property
    def extension(self) -> str:
        return self._extension

    def encode(self, records: list[Record]) -> bytes:
        return self.encode_dicts(r.data for r in records)

    def encode_dicts(self, items: Iterable[dict[str, Any]]) -> bytes:
        """Encode plain record dicts (what ``encode`` does with ``Record.data``)."""
        cluster = self.cluster
        if cluster is not None:
            items = (with_cluster(item, cluster) for item in items)
        return self.compressor.compress(self.record_format.serialize(items))

    def decode(self, payload: bytes) -> list[dict[str, Any]]:
        """The record dicts of a payload this codec produced."""
        return self.record_format.parse(self.compressor.decompress(payload))


def make_record_format(settings: EncodingSettings) -> RecordFormat:
    """The record format the settings name (``parquet``: the events Parquet file; log batches
    use ``make_log_encoder``)."""
    if settings.format == "parquet":
        # Imported here: pyarrow costs start-up time an NDJSON or protobuf agent does not need.
        from kubestream.pipeline.encode.events_parquet import EventsParquetFormat

        return EventsParquetFormat(zstd_level=settings.zstd_level)
    if settings.format == "protobuf":
        if settings.protobuf_message == "k8stream":
            return K8streamProtobufFormat()
        return KubestreamProtobufFormat()
    return NdjsonFormat()


def make_encoder(settings: EncodingSettings, *, cluster: str | None = None) -> Codec:
    """The encoder (format + compression) the settings name, stamping ``cluster`` if given.

    k8stream's ``L9Event`` has no field for it: that message is kept as k8stream defines it.
    """
    record_format = make_record_format(settings)
    # Parquet compresses inside the file: ``compression`` does not apply (no suffix either).
    compressor = NoCompression() if settings.format == "parquet" else make_compressor(settings)
    return Codec(record_format, compressor, cluster)


def make_log_encoder(settings: Settings, *, safe: bool = False) -> Encoder:
    """The encoder for batches of log records: NDJSON (+gzip/zstd/none) or Parquet (zstd inside),
    as ``encoding.format`` says.

    ``protobuf`` is an events-only format: logs are written as NDJSON then. ``safe``: NDJSON
    whatever the format, the format poison batches are re-encoded in (see pipeline.batcher).
    Both stamp ``cluster.name`` on every record.
    """
    cluster = settings.cluster.name
    if settings.encoding.format == "parquet" and not safe:
        # Imported here: pyarrow costs start-up time an NDJSON agent does not need.
        from kubestream.pipeline.encode.logs_parquet import ParquetLogEncoder

        return ParquetLogEncoder(zstd_level=settings.encoding.zstd_level, cluster=cluster)
    return NdjsonLogEncoder(settings.encoding, cluster=cluster)


def destination_encoder(destination: SinkSettings, encoding: EncodingSettings, *, stream: str,
                        cluster: str | None = None) -> Encoder:
    """The encoder of one destination for ``stream``: the OTLP or webhook request body for those
    types, else the archive encoding (``encoding``: the destination's own, or the top-level one).

    Log batches to an archive type use ``make_log_encoder`` instead (the agent picks it), which
    reads the chunks the log source hands over.
    """
    if destination.type == "otlp":
        return OtlpEncoder(destination.otlp, stream=stream, cluster=cluster)
    if destination.type == "http":
        return WebhookEncoder(destination.http, stream=stream, cluster=cluster)
    return make_encoder(encoding, cluster=cluster)


__all__ = ["Codec", "Encoder", "RecordFormat", "destination_encoder", "make_encoder", "make_log_encoder",
           "make_record_format", "with_cluster"]
