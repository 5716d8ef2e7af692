"""Turning a closed batch into bytes: a record format (NDJSON, protobuf, or for events Parquet)
then compression (none for Parquet: zstd is inside the file).

``make_encoder(settings, cluster=...)`` returns an ``Encoder``; the concrete ``Codec`` can also
``decode`` its own output (tests, tools, and anyone reading the archive from Python). With a
cluster name, every record is written with it as its top-level ``cluster`` field (right after
``kind``); the records in the pipeline stay as the sources built them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from kubestream.config.settings import EncodingSettings, SinkSettings
from kubestream.model import Record
from kubestream.pipeline.encode.compress import Compressor, NoCompression, make_compressor
from kubestream.pipeline.encode.ndjson import NdjsonFormat
from kubestream.pipeline.encode.protobuf import K8streamProtobufFormat, KubestreamProtobufFormat


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


def with_cluster(item: dict[str, Any], cluster: str) -> dict[str, Any]:
    """``item`` with a top-level ``cluster`` after ``kind`` (a record that names one keeps it)."""
    if "cluster" in item:
        return item
    if "kind" not in item:
        return {"cluster": cluster, **item}
    stamped = {"kind": item["kind"], "cluster": cluster}
    stamped.update(item)  # keeps kind first: updating an existing key keeps its position
    return stamped


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
    use the logs source's own encoder, ``sources.logs.encode.make_log_encoder``)."""
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


def destination_encoder(destination: SinkSettings, encoding: EncodingSettings, *, stream: str,
                        cluster: str | None = None) -> Encoder:
    """The encoder of one destination for ``stream``: the OTLP or webhook request body for those
    types, else the archive encoding (``encoding``: the destination's own, or the top-level one).

    Log batches to an archive type use the logs source's encoder instead (the agent picks it),
    which reads the chunks that source hands over.
    """
    if destination.type == "otlp":
        from kubestream.pipeline.encode.otlp import OtlpEncoder

        return OtlpEncoder(destination.otlp, stream=stream, cluster=cluster)
    if destination.type == "http":
        from kubestream.pipeline.encode.webhook import WebhookEncoder

        return WebhookEncoder(destination.http, stream=stream, cluster=cluster)
    return make_encoder(encoding, cluster=cluster)


__all__ = ["Codec", "Encoder", "RecordFormat", "destination_encoder", "make_encoder", "make_record_format",
           "with_cluster"]
