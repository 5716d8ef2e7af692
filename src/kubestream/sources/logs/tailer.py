"""One open container log file: where it is read up to, and the reads themselves.

A tailer holds the file by a ``sources.files.handle.FileHandle`` (an open fd, or the gzip stream
of a rotated ``.gz``), so a rename, an unlink or the removal of the pod directory does not stop
it: it reads the same inode to its end before it is let go. Its identity is the content
fingerprint; the fd/inode is only how the bytes are reached right now (a copytruncate hands the
tailer over to the copy). What it adds to the handle is the log source's: the parser and the
container's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubestream.model import ParsedBlock
from kubestream.sources.files.handle import FileHandle
from kubestream.sources.logs.container_rules import ContainerInfo
from kubestream.sources.logs.parser import FileParser
from kubestream.sources.logs.paths import LogPath


@dataclass(slots=True)
class Tailer:
    """The reading state of one file identity."""

    fingerprint: str
    handle: FileHandle[LogPath]
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
