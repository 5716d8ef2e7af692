"""One open file's bytes, whatever its name does next: a plain file read by ``pread`` on its fd,
or a rotated ``.gz`` read as a stream.

Holding the fd (not the name) is what lets a rename, an unlink, a copytruncate or the removal of
the directory leave the reader on the same inode until it has read it to its end.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from typing import BinaryIO, Generic, TypeVar

P = TypeVar("P")
"""Where the file was found, in the caller's terms."""


@dataclass(slots=True)
class FileHandle(Generic[P]):
    """How a file's bytes are reached: an fd (pread) or a gzip stream (sequential).

    ``path`` is where the caller found the file, in the caller's terms (the log source: a
    ``LogPath``); the handle only keeps it.
    """

    path: P
    dev: int
    ino: int
    fd: int = -1
    gz: gzip.GzipFile | None = None
    gz_raw: BinaryIO | None = None
    """The file under ``gz`` (GzipFile does not close a file object it was given)."""
    gz_pos: int = 0

    @classmethod
    def open_plain(cls, path: P, fd: int) -> FileHandle[P]:
        st = os.fstat(fd)
        return cls(path, st.st_dev, st.st_ino, fd=fd)

    @classmethod
    def open_gzip(cls, path: P, fd: int) -> FileHandle[P]:
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
