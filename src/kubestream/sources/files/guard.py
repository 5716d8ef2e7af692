"""Opening files without trusting what lies in the directories they are found in.

The node agent runs as root and reads what any pod's runtime, or any pod with a hostPath mount,
leaves under its primary root (the log source's ``pods_dir``). A path is therefore never opened
on its word:

- Only regular files are opened. ``open()`` on a FIFO blocks until a writer comes (the event
  loop with it: /healthz, SIGTERM, every other file), and a device can be anything. The type is
  checked with ``lstat`` before opening and again with ``fstat`` on the opened fd; the open itself
  is ``O_NONBLOCK``, so a FIFO swapped in between the two cannot block either.
- No symlink is followed out of the roots (the primary root and the extra ones, ``logs.extra_roots``). A link is
  resolved and checked first; the file is then opened from the root's directory fd one component
  at a time with ``O_NOFOLLOW``, so no component can be swapped for a link between the check and
  the open. A link that resolves into the primary root is an alias: the walk reads that file at its
  own path (with its own pod's metadata), never through the link.
- A file that cannot be opened (EACCES) is refused as unreadable; the caller looks again later.

``SkipReporter`` turns refusals into one log line and one ``files_skipped`` count per file.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from kubestream.obs.metrics import Metrics

log = logging.getLogger(__name__)

FileKey = tuple[int, int]

NOT_REGULAR = "not_regular"
SYMLINK_OUTSIDE_ROOTS = "symlink_outside_roots"
UNREADABLE = "unreadable"

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
# O_PATH: a directory is only walked through, never read, so its own read permission is not needed.
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ROOT_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Refusal:
    """A file that is not read, and why (a ``files_skipped`` reason)."""

    reason: str
    key: FileKey
    """(device, inode) of the entry refused (the link itself for a link): what is reported once."""
    detail: str


@dataclass(frozen=True, slots=True)
class Location:
    """A regular file found under a root: the root and the path components below it."""

    root: str
    parts: tuple[str, ...]
    st: os.stat_result

    @property
    def key(self) -> FileKey:
        return (self.st.st_dev, self.st.st_ino)


class Roots:
    """The directories files may be read from: the primary root first, then the extra roots."""

    def __init__(self, primary: Path, extra: Iterable[Path] = ()) -> None:
        self.primary = primary
        self._roots: tuple[Path, ...] = (primary, *extra)

    def __str__(self) -> str:
        return ", ".join(str(r) for r in self._roots)

    def locate(self, path: str, *, resolved: bool = False) -> tuple[Path, tuple[str, ...]] | None:
        """The root ``path`` lies under and its components below it (None: under no root).

        Lexical: the path as the walk built it is compared with each root as configured; a
        ``resolved`` path (``realpath``) is compared with each root's own resolved path.
        """
        for root in self._roots:
            base = os.path.realpath(root) if resolved else str(root)
            parts = _below(path, base)
            if parts:
                return root, parts
        return None


def _below(path: str, base: str) -> tuple[str, ...] | None:
    try:
        parts = PurePath(path).relative_to(base).parts
    except ValueError:
        return None
    return parts if parts and ".." not in parts else None


def locate(path: Path, roots: Roots) -> Location | Refusal | None:
    """Where the file ``path`` names is, decided without opening anything.

    None: gone, or a link to a file of the primary root (read at its own path).
    """
    try:
        lst = os.lstat(path)
    except OSError:
        return None
    key = (lst.st_dev, lst.st_ino)
    if stat.S_ISLNK(lst.st_mode):
        real = os.path.realpath(path)
        where = roots.locate(real, resolved=True)
        if where is None:
            return Refusal(SYMLINK_OUTSIDE_ROOTS, key, f"a symlink to {real}, outside the log roots ({roots})")
        if where[0] == roots.primary:
            log.debug("logs: %s links to %s, read at its own path", path, real)
            return None
        try:
            st = os.lstat(real)
        except OSError:
            return None
    else:
        where = roots.locate(str(path)) or roots.locate(str(path), resolved=True)
        if where is None:
            return Refusal(SYMLINK_OUTSIDE_ROOTS, key, f"outside the log roots ({roots})")
        st = lst
    if not stat.S_ISREG(st.st_mode):
        return Refusal(NOT_REGULAR, key, f"not a regular file ({_kind(st.st_mode)})")
    return Location(str(where[0]), where[1], st)


def open_located(where: Location) -> int | Refusal | None:
    """Open a located file read-only; its fd, a refusal, or None when it changed since it was
    located (the caller looks again at the next event or sweep)."""
    try:
        fd = _open_below(where.root, where.parts)
    except PermissionError as exc:
        return Refusal(UNREADABLE, where.key, f"cannot be opened ({exc.strerror})")
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket swapped in
            return Refusal(NOT_REGULAR, where.key, "not a regular file (socket)")
        # ELOOP/ENOTDIR: a component became a link after it was checked; ENOENT: gone.
        log.debug("logs: %s changed while being opened: %s", "/".join(where.parts), exc)
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != where.key:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            return Refusal(NOT_REGULAR, where.key, f"not a regular file ({_kind(st.st_mode)})")
        return None
    return fd


def _open_below(root: str, parts: Sequence[str]) -> int:
    # The root is configuration and may itself be a link; nothing below it may be.
    dir_fd = os.open(root, _ROOT_FLAGS)
    try:
        for name in parts[:-1]:
            next_fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        return os.open(parts[-1], _OPEN_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symlink")):
        if test(mode):
            return name
    return f"mode {mode:o}"


class SkipReporter:
    """Each refused file is counted (``files_skipped{reason}``) and logged once, by (device, inode).

    Log lines are also limited overall (``LOG_BURST`` per ``LOG_WINDOW_S``): a pod creating
    thousands of FIFOs must not flood the agent's log. The count stays exact.
    """

    LOG_BURST = 10
    LOG_WINDOW_S = 60.0

    def __init__(self, metrics: Metrics | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._reported: dict[FileKey, str] = {}
        self._last_keys: set[FileKey] = set()
        self._window_start = -self.LOG_WINDOW_S
        self._logged = 0
        self._suppressed = 0

    def report(self, shown: Path, refusal: Refusal) -> None:
        """Count and log a refusal, unless this file was already reported for this reason."""
        if self._reported.get(refusal.key) == refusal.reason:
            return
        self._reported[refusal.key] = refusal.reason
        if self._metrics is not None:
            self._metrics.files_skipped.labels(reason=refusal.reason).inc()
        if not self._may_log():
            self._suppressed += 1
            return
        more = ""
        if self._suppressed:
            more = f"; {self._suppressed} more files skipped without a log line (kubestream_files_skipped_total)"
            self._suppressed = 0
        log.warning("logs: not reading %s: %s [%s]%s", shown, refusal.detail, refusal.reason, more)

    def reported(self, key: FileKey) -> str | None:
        """The reason ``key`` was refused for, if it was."""
        return self._reported.get(key)

    def retain(self, keys: set[FileKey]) -> None:
        """Forget files no longer on disk (bounded memory): missing from two sweeps in a row (a
        sweep may not look at a path whose tailer it still holds, replaced meanwhile)."""
        recent = keys | self._last_keys
        self._reported = {k: v for k, v in self._reported.items() if k in recent}
        self._last_keys = keys

    def _may_log(self) -> bool:
        now = self._clock()
        if now - self._window_start >= self.LOG_WINDOW_S:
            self._window_start, self._logged = now, 0
        self._logged += 1
        return self._logged <= self.LOG_BURST


def check_dir_link(path: Path, roots: Roots) -> Refusal | None:
    """A pod or container "directory" that is a symlink is never walked into; a refusal to
    report when it points out of the roots (one into them is an alias of a directory walked
    anyway)."""
    real = os.path.realpath(path)
    if roots.locate(real, resolved=True) is not None:
        return None
    try:
        lst = os.lstat(path)
    except OSError:
        return None
    return Refusal(SYMLINK_OUTSIDE_ROOTS, (lst.st_dev, lst.st_ino),
                   f"a directory symlink to {real}, outside the log roots ({roots}); not walked into")
