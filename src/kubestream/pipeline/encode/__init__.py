"""Turning a closed batch into bytes: a record format (NDJSON or protobuf) then compression.

``make_encoder(settings)`` returns an ``Encoder``; the concrete ``Codec`` can also ``decode``
its own output (tests, tools, and anyone reading the archive from Python).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from kubestream.config.settings import EncodingSettings
from kubestream.model import Record
from kubestream.pipeline.encode.compress import Compressor, make_compressor
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


class Codec:
    """A record format followed by a compressor."""

    def __init__(self, record_format: RecordFormat, compressor: Compressor) -> None:
        self.record_format = record_format
        self.compressor = compressor
        suffix = compressor.suffix
        self._extension = f"{record_format.extension}.{suffix}" if suffix else record_format.extension

    @property
    def extension(self) -> str:
        return self._extension

    def encode(self, records: list[Record]) -> bytes:
        return self.encode_dicts(r.data for r in records)

    def encode_dicts(self, items: Iterable[dict[str, Any]]) -> bytes:
        """Encode plain record dicts (what ``encode`` does with ``Record.data``)."""
        return self.compressor.compress(self.record_format.serialize(items))

    def decode(self, payload: bytes) -> list[dict[str, Any]]:
        """The record dicts of a payload this codec produced."""
        return self.record_format.parse(self.compressor.decompress(payload))


def make_record_format(settings: EncodingSettings) -> RecordFormat:
    """The record format the settings name."""
    if settings.format == "protobuf":
        if settings.protobuf_message == "k8stream":
            return K8streamProtobufFormat()
        return KubestreamProtobufFormat()
    return NdjsonFormat()


def make_encoder(settings: EncodingSettings) -> Codec:
    """The encoder (format + compression) the settings name."""
    return Codec(make_record_format(settings), make_compressor(settings))


__all__ = ["Codec", "Encoder", "RecordFormat", "make_encoder", "make_record_format"]
