"""Reading a container log file the way kubelet does for ``pods/log``
(pkg/kubelet/kuberuntime/logs/logs.go ``ReadLogs``).

Each file line is a CRI record ``<RFC3339Nano> <stream> <P|F> <content>`` or a Docker json-file
entry; the client gets the content only (a ``P`` part without a newline, an ``F`` part with one).
``timestamps`` prefixes the record's time (RFC3339Nano) and a space at the start of each logical
line; ``since`` skips records older than it; ``tail`` keeps the last N file lines
(``tail.FindTailLineStartIndex``); ``limit`` cuts the output after N bytes (``LimitWriter``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

_CRI = re.compile(rb"^(\S+) (stdout|stderr) ([PF]) ?(.*)$", re.S)
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def parse_stamp(text: str) -> int | None:
    """RFC3339 / RFC3339Nano → nanoseconds since the epoch (None if malformed)."""
    m = _STAMP.match(text)
    if m is None:
        return None
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        base = dt.datetime.fromisoformat(m.group(1) + zone)
    except ValueError:
        return None
    return int(base.timestamp()) * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0"))


@dataclass(frozen=True, slots=True)
class Record:
    """One file line, decoded."""

    stamp: str
    nanos: int
    content: bytes
    """Including the newline when the record ends a logical line."""


def decode(line: bytes) -> Record | None:
    """A CRI or Docker json-file line (without its trailing newline); None for a malformed one,
    which kubelet skips after logging it."""
    if line.startswith(b"{"):
        try:
            entry = orjson.loads(line)
            stamp = str(entry["time"])
            content = str(entry["log"]).encode("utf-8", "surrogateescape")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
    else:
        m = _CRI.match(line)
        if m is None:
            return None
        stamp = m.group(1).decode("ascii", "replace")
        content = m.group(4) + (b"\n" if m.group(3) == b"F" else b"")
    nanos = parse_stamp(stamp)
    return None if nanos is None else Record(stamp, nanos, content)


@dataclass(slots=True)
class Formatter:
    """Turns records into client bytes, keeping the state that spans records."""

    timestamps: bool = False
    since_nanos: int | None = None
    limit: int | None = None
    written: int = 0
    _at_line_start: bool = True

    @property
    def exhausted(self) -> bool:
        """True once ``limit`` bytes went out."""
        return self.limit is not None and self.written >= self.limit

    def render(self, record: Record) -> bytes:
        """The bytes this record contributes (possibly none)."""
        if self.exhausted or (self.since_nanos is not None and record.nanos < self.since_nanos):
            return b""
        out = record.content
        if self.timestamps and self._at_line_start:
            out = record.stamp.encode() + b" " + out
        self._at_line_start = record.content.endswith(b"\n")
        if self.limit is not None:
            out = out[: self.limit - self.written]
        self.written += len(out)
        return out


def tail_lines(lines: list[bytes], tail: int | None) -> list[bytes]:
    """The last ``tail`` lines (all when None)."""
    if tail is None:
        return lines
    return lines[len(lines) - tail:] if tail else []


def read_all(path: Path) -> tuple[list[bytes], int, int]:
    """Complete lines of a file, the offset after the last one, and the file's inode
    (a torn last line stays for a follower to pick up)."""
    try:
        with path.open("rb") as f:
            data = f.read()
            inode = os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return [], 0, 0
    end = data.rfind(b"\n") + 1
    return data[:end].split(b"\n")[:-1], end, inode


class Follower:
    """Reads lines appended to a file after an offset, across rename rotation (the runtime
    reopens the path: a new inode) and copytruncate (the file shrinks)."""

    def __init__(self, path: Path, offset: int, inode: int) -> None:
        self.path = path
        self._offset = offset
        self._inode = inode
        self._buffer = b""

    def poll(self) -> Iterator[bytes]:
        """Complete lines that arrived since the last poll."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        if st.st_ino != self._inode or st.st_size < self._offset:
            # Rotated: the old file was read to its end before the rename (one write per
            # message), so the new file is read from its start.
            self._inode, self._offset, self._buffer = st.st_ino, 0, b""
        if st.st_size == self._offset:
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read(st.st_size - self._offset)
        self._offset += len(chunk)
        data = self._buffer + chunk
        end = data.rfind(b"\n") + 1
        self._buffer = data[end:]
        yield from data[:end].split(b"\n")[:-1]
