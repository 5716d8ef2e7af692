"""Whole-batch compression: gzip (through ISA-L), zstd, or none.

ISA-L's igzip writes standard gzip members several times faster than zlib; it offers levels
0..3 only, so the configured ``gzip_level`` (0..9, zlib's scale) is capped at 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import zstandard
from isal import igzip

from kubestream.config.settings import EncodingSettings

_ISAL_MAX_LEVEL = 3


class Compressor(Protocol):
    """Compresses a whole encoded batch; ``suffix`` extends the file extension ("" for none)."""

    @property
    def suffix(self) -> str:
        """The compression's file extension ("gz", "zst"), "" for none."""
        ...

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class NoCompression:
    """Pass-through."""

    suffix: str = ""

    def compress(self, data: bytes) -> bytes:
        return data

    def decompress(self, data: bytes) -> bytes:
        return data


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
            # The log encoder compresses as a stream (sources.logs.encode): its frame header has
            # no content size, which the one-shot call needs.
            with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
                streamed: bytes = reader.readall()
            return streamed
        except zstandard.ZstdError as exc:
            # Readers handle damaged objects by the standard classes (gzip raises OSError/EOFError).
            raise ValueError(f"zstd: {exc}") from exc


def make_compressor(settings: EncodingSettings) -> Compressor:
    """The compressor the settings name."""
    if settings.compression == "gzip":
        return GzipCompression(level=settings.gzip_level)
    if settings.compression == "zstd":
        return ZstdCompression(level=settings.zstd_level)
    return NoCompression()
