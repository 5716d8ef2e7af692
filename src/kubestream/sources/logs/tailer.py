"""One open container log file: where it is read up to, and the reads themselves.

A tailer holds the file by its open fd (a plain file) or its gzip stream (a rotated ``.gz``), so a
rename, an unlink or the removal of the pod directory does not stop it: it reads the same inode
to its end before it is let go. Its identity is the content fingerprint; the fd/inode is only how
the bytes are reached right now (a copytruncate hands the tailer over to the copy).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kubestream.model import ParsedBlock
from kubestream.sources.logs.container_rules import ContainerInfo
from kubestream.sources.logs.parser import FileParser
from kubestream.sources.logs.paths import LogPath


@dataclass(slots=True)
class FileHandle:
    """How a file's bytes are reached: an fd (pread) or a gzip stream (sequential)."""

    path: LogPath
    dev: int
    ino: int
    fd: int = -1
    gz: gzip.GzipFile | None = None
    gz_raw: BinaryIO | None = None
    """The file under ``gz`` (GzipFile does not close a file object it was given)."""
    gz_pos: int = 0

    @classmethod
    def open_plain(cls, path: LogPath, fd: int) -> FileHandle:
        st = os.fstat(fd)
        return cls(path, st.st_dev, st.st_ino, fd=fd)

    @classmethod
    def open_gzip(cls, path: LogPath, fd: int) -> FileHandle:
        """A gzip stream over an fd opened by ``guard.open_located`` (owned by the handle now)."""
        st = os.fstat(fd)
        raw = open(fd, "rb")  # noqa: SIM115 - closed by close()
        return cls(path, st.st_dev, st.st_ino, gz=gzip.GzipFile(fileobj=raw, mode="rb"), gz_raw=raw)

    @property
    def file_key(self) -> tuple[int, int]:
        """(device, inode)."""
        return (self.dev, self.ino)

    def size(self) -> int | None:
        """Current size of a plain file; None for gzip (unknown until read to its end)."""
        return os.fstat(self.fd).st_size if self.fd >= 0 else None

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``."""
        if self.gz is not None:
            if self.gz_pos != offset:
                # Seeking a gzip stream decompresses up to the offset: done once, at resume.
                self.gz.seek(offset)
                self.gz_pos = offset
            data = self.gz.read(size)
            self.gz_pos += len(data)
            return data
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.gz is not None:
            self.gz.close()
            self.gz = None
        if self.gz_raw is not None:
            self.gz_raw.close()
            self.gz_raw = None


@dataclass(slots=True)
class Tailer:
    """The reading state of one file identity."""

    fingerprint: str
    handle: FileHandle
    parser: FileParser
    info: ContainerInfo
    container_key: tuple[str, str]
    offset: int
    """Next byte to read (equals ``parser.next_offset``)."""
    rotated_at: float | None = None
    """When the runtime stopped writing it (renamed, truncated-and-copied, unlinked, dir gone)."""
    at_eof: bool = False
    eof_since: float | None = None
    last_data_at: float = 0.0
    pending_since: float | None = None
    """A complete multiline record waits for its next start line since then."""
    expired: bool = False
    """``drain_timeout_s`` passed: the reader counts what is left and lets go."""
    flush_due: bool = False
    """``multiline_timeout_s`` passed without data while a multiline record is pending."""

    @property
    def path(self) -> Path:
        return self.handle.path.path

    @property
    def live(self) -> bool:
        """Still the file the runtime writes to."""
        return self.rotated_at is None

    def unread_bytes(self) -> int:
        """Bytes known to be on disk and not read yet (0 for gzip, which is read to its end)."""
        size = self.handle.size()
        return max(0, size - self.offset) if size is not None else 0

    def read_block(self, chunk_bytes: int) -> tuple[ParsedBlock, int]:
        """Read and parse the next chunk; returns the block and the bytes read (0 at EOF).

        Runs in a worker thread for large reads: it touches only this tailer's fd and parser.
        """
        data = self.handle.read(self.offset, chunk_bytes)
        if not data:
            return ParsedBlock(resume_offset=self.offset), 0
        block = self.parser.feed(data, self.offset)
        self.offset += len(data)
        return block, len(data)

    def count_unread_lines(self) -> tuple[int, int]:
        """(physical lines, bytes) left after ``offset``: what a drain timeout drops.

        A line the last read ended inside is not counted: its head is emitted (as truncated) when
        the tailer is let go, so counting it here as well would count it lost twice.
        """
        lines = size = 0
        offset = self.offset
        in_read_line = self.parser.mid_line
        while True:
            data = self.handle.read(offset, 1024 * 1024)
            if not data:
                return lines, size
            lines += data.count(b"\n")
            if in_read_line and b"\n" in data:
                lines -= 1
                in_read_line = False
            size += len(data)
            offset += len(data)
