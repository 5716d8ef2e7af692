"""Linux inotify through ctypes on libc, read from the asyncio loop.

Why ctypes and not a PyPI package: three libc calls and a fixed struct layout are all that is
needed; ``asyncinotify`` / ``inotify_simple`` would add a dependency for the same ~60 lines, and
owning the fd lets the event loop watch it with ``add_reader`` (no thread, no polling: zero CPU
while nothing is written).

Watches are put on directories only (the root, the directories under it, the directories of files): events on the
files inside a directory come through its watch, so 1,000 files cost ~2,000 watches at most,
not one per file per rotation. The kernel limit (``fs.inotify.max_user_watches``) can still be
hit: ``add_watch`` then returns None and the source relies on its stat sweep for that directory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

DIR_EVENTS = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR
"""Watched on directories of directories (the log source: ``pods_dir``, pod dirs): entries appearing and going."""
FILE_EVENTS = DIR_EVENTS | IN_MODIFY | IN_CLOSE_WRITE
"""Watched on directories of files (the log source: container dirs): also writes to the files inside."""

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)


@dataclass(frozen=True, slots=True)
class InotifyEvent:
    """One decoded ``struct inotify_event``; ``name`` is the entry inside the watched dir."""

    wd: int
    mask: int
    name: str


class Inotify:
    """One inotify instance (non-blocking fd)."""

    def __init__(self) -> None:
        libc_name = ctypes.util.find_library("c") or "libc.so.6"
        self._libc = ctypes.CDLL(libc_name, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd

    def add_watch(self, path: str, mask: int) -> int | None:
        """Watch ``path``; the watch descriptor, or None when it cannot be watched (gone, limit)."""
        wd = int(self._libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(mask)))
        if wd >= 0:
            return wd
        err = ctypes.get_errno()
        if err == errno.ENOSPC:
            log.warning("inotify watch limit reached (fs.inotify.max_user_watches); %s is swept only", path)
        elif err not in (errno.ENOENT, errno.ENOTDIR):
            log.warning("cannot watch %s: %s", path, os.strerror(err))
        return None

    def remove_watch(self, wd: int) -> None:
        """Stop a watch (ignored if the kernel already dropped it)."""
        self._libc.inotify_rm_watch(self.fd, wd)

    def read_events(self) -> Iterator[InotifyEvent]:
        """Every event queued now (non-blocking)."""
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return
            if not data:
                return
            yield from _decode(data)

    def close(self) -> None:
        """Close the instance (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _decode(data: bytes) -> Iterator[InotifyEvent]:
    pos = 0
    while pos + _HEADER.size <= len(data):
        wd, mask, _cookie, length = _HEADER.unpack_from(data, pos)
        pos += _HEADER.size
        raw = data[pos:pos + length].split(b"\0", 1)[0]
        pos += length
        yield InotifyEvent(wd, mask, os.fsdecode(raw))
