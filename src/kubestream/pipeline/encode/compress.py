"""Compression of a batch: gzip (through ISA-L), zstd, or none — the one place that picks it.

``make_compressor`` reads ``encoding.compression``; every encoder takes its compressor from
there. A compressor compresses a whole encoded batch (``compress``, the record-dict codecs) or
opens a ``stream`` fed piece by piece (the log NDJSON encoder, which never holds a whole
uncompressed batch: ``logs_ndjson``). Both write the same format: one gzip member, one zstd frame.

ISA-L's igzip writes standard gzip members several times faster than zlib; it offers levels
0..3 only, so the configured ``gzip_level`` (0..9, zlib's scale) is capped at 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import zstandard
from isal import igzip, isal_zlib

from kubestream.config.settings import EncodingSettings

_ISAL_MAX_LEVEL = 3
_GZIP_WBITS = 16 + 15
"""zlib's window bits for a gzip wrapper with the largest window."""


class StreamCompressor(Protocol):
    """A compressor fed piece by piece (``zlib``/``zstandard`` ``compressobj`` style)."""

    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    """The stream of ``NoCompression``: the pieces as they are."""

    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class Compressor(Protocol):
    """Compresses a whole encoded batch; ``suffix`` extends the file extension ("" for none)."""

    @property
    def suffix(self) -> str:
        """The compression's file extension ("gz", "zst"), "" for none."""
        ...

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...

    def stream(self) -> StreamCompressor:
        """A fresh streaming compressor whose output ``decompress`` reads."""
        ...


@dataclass(frozen=True, slots=True)
class NoCompression:
    """Pass-through."""

    suffix: str = ""

    def compress(self, data: bytes) -> bytes:
        return data

    def decompress(self, data: bytes) -> bytes:
        return data

    def stream(self) -> StreamCompressor:
        return _Identity()


@dataclass(frozen=True, slots=True)
class GzipCompression:
    """A single gzip member (readable by gzip, zcat, DuckDB, Athena); mtime 0 for stable bytes."""

    level: int = 1
    suffix: str = "gz"

    def compress(self, data: bytes) -> bytes:
        return igzip.compress(data, compresslevel=min(self.level, _ISAL_MAX_LEVEL), mtime=0)

    def decompress(self, data: bytes) -> bytes:
        # isal's igzip.decompress() carries no annotations.
        result: bytes = igzip.decompress(data)  # type: ignore[no-untyped-call]
        return result

    def stream(self) -> StreamCompressor:
        """One gzip member, as ``compress`` writes (zlib's gzip wrapper writes mtime 0 too)."""
        compressor: StreamCompressor = isal_zlib.compressobj(
            min(self.level, _ISAL_MAX_LEVEL), isal_zlib.DEFLATED, _GZIP_WBITS)
        return compressor


@dataclass(frozen=True, slots=True)
class ZstdCompression:
    """One zstd frame with the content size in its header (so readers can preallocate)."""

    level: int = 3
    suffix: str = "zst"

    def compress(self, data: bytes) -> bytes:
        # A compressor object is not thread-safe; a fresh one per batch is cheap next to the work.
        return zstandard.ZstdCompressor(level=self.level, write_content_size=True).compress(data)

    def decompress(self, data: bytes) -> bytes:
        """The data of one or more frames; ``ValueError`` (one line) on damaged input."""
        try:
            if zstandard.frame_content_size(data) >= 0:
                result: bytes = zstandard.ZstdDecompressor().decompress(data)
                return result
            # A ``stream`` (the log NDJSON encoder) writes a frame header with
            # no content size, which the one-shot call needs.
            with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
                streamed: bytes = reader.readall()
            return streamed
        except zstandard.ZstdError as exc:
            # Readers handle damaged objects by the standard classes (gzip raises OSError/EOFError).
            raise ValueError(f"zstd: {exc}") from exc

    def stream(self) -> StreamCompressor:
        """One zstd frame, without the content size in its header (not known up front)."""
        compressor: StreamCompressor = zstandard.ZstdCompressor(level=self.level).compressobj()
        return compressor


def make_compressor(settings: EncodingSettings) -> Compressor:
    """The compressor the settings name."""
    if settings.compression == "gzip":
        return GzipCompression(level=settings.gzip_level)
    if settings.compression == "zstd":
        return ZstdCompression(level=settings.zstd_level)
    return NoCompression()
