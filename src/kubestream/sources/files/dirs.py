"""Directories of a file source: cached listings for the periodic sweep, and inotify watches that
turn kernel events into "look at this path" calls.

The walk is the truth (a sweep at start and every ``sweep_interval_s``); inotify only makes
things fast. What the directories mean (kubelet's ``pods_dir`` layout) is the caller's: this
module lists and watches, it names nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from kubestream.sources.files import inotify as ino

log = logging.getLogger(__name__)

T = TypeVar("T")


class DirCache:
    """Directory listings kept while a directory's mtime stays the same.

    The periodic sweep walks ~3 entries per log file; re-listing unchanged directories and
    rebuilding ``Path`` objects was nearly all of its cost with 1,000 files. A listing is only
    trusted when the directory's ctime is at least ``SETTLE_NS`` old: file systems with coarse
    timestamps could otherwise hide an entry added in the same tick as the cached listing. ctime,
    not mtime: it also moves on a chmod, so a directory that could not be listed is listed again
    once it can be.
    """

    SETTLE_NS = 2_000_000_000

    def __init__(self) -> None:
        self._listings: dict[str, tuple[int, list[Any]]] = {}
        self._paths: dict[str, Path] = {}

    def path(self, text: str) -> Path:
        found = self._paths.get(text)
        if found is None:
            found = self._paths[text] = Path(text)
        return found

    def listing(self, directory: str, seen: set[str], list_dir: Callable[[str], list[T]]) -> list[T]:
        seen.add(directory)
        try:
            mtime = os.stat(directory).st_ctime_ns
        except OSError:
            return []
        cached = self._listings.get(directory)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        entries = list_dir(directory)
        if time.time_ns() - mtime >= self.SETTLE_NS:
            self._listings[directory] = (mtime, entries)
        else:
            self._listings.pop(directory, None)
        return entries

    def retain(self, directories: set[str]) -> None:
        """Forget directories that were not walked this time (gone)."""
        self._listings = {d: v for d, v in self._listings.items() if d in directories}
        self._paths = {d: v for d, v in self._paths.items() if d in directories}



def list_dir(directory: Path) -> list[os.DirEntry[str]]:
    """The entries of ``directory``; none if it is gone or cannot be listed (logged)."""
    try:
        with os.scandir(directory) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        log.warning("cannot list %s: %s", directory, exc)
        return []


class DirKind(Enum):
    """What a watched directory holds (the names are the log source's: kubelet's layout)."""

    ROOT = "root"
    """The configured root (it may be a link): directories (``pods_dir``: pod directories)."""
    POD = "pod"
    """A directory of directories (a pod directory: container directories); never followed if a link."""
    CONTAINER = "container"
    """A directory of files (a container directory, or a symlink target's): the files' writes too."""


@dataclass(frozen=True, slots=True)
class DirEvent:
    """An inotify event translated to a path: ``path`` is the entry (or the dir itself)."""

    kind: DirKind
    path: Path
    mask: int

    @property
    def created(self) -> bool:
        return bool(self.mask & (ino.IN_CREATE | ino.IN_MOVED_TO))

    @property
    def removed(self) -> bool:
        return bool(self.mask & (ino.IN_DELETE | ino.IN_MOVED_FROM | ino.IN_DELETE_SELF | ino.IN_MOVE_SELF))

    @property
    def modified(self) -> bool:
        return bool(self.mask & (ino.IN_MODIFY | ino.IN_CLOSE_WRITE))

    @property
    def is_self(self) -> bool:
        """The watched directory itself went (deleted or moved)."""
        return bool(self.mask & (ino.IN_DELETE_SELF | ino.IN_MOVE_SELF))


class DirWatcher:
    """inotify watches on the log directories; ``events()`` yields ``DirEvent``s, or None for
    a queue overflow (the caller sweeps)."""

    def __init__(self) -> None:
        self._inotify = ino.Inotify()
        self._by_wd: dict[int, tuple[DirKind, Path]] = {}
        self._by_path: dict[Path, int] = {}

    @property
    def fd(self) -> int:
        return self._inotify.fd

    def watch(self, kind: DirKind, directory: Path) -> None:
        """Watch ``directory`` (idempotent)."""
        if directory in self._by_path:
            return
        mask = ino.FILE_EVENTS if kind is DirKind.CONTAINER else ino.DIR_EVENTS
        if kind is not DirKind.ROOT:
            # Never a watch on whatever a pod or container "directory" that is a link points to
            # (the root is configuration and may be a link).
            mask |= ino.IN_DONT_FOLLOW
        wd = self._inotify.add_watch(str(directory), mask)
        if wd is not None:
            self._by_wd[wd] = (kind, directory)
            self._by_path[directory] = wd

    def watching(self, directory: Path) -> bool:
        return directory in self._by_path

    def __len__(self) -> int:
        return len(self._by_wd)

    def events(self) -> list[DirEvent | None]:
        """Events queued now, translated; ``None`` stands for an overflow."""
        out: list[DirEvent | None] = []
        for event in self._inotify.read_events():
            if event.mask & ino.IN_Q_OVERFLOW:
                out.append(None)
                continue
            where = self._by_wd.get(event.wd)
            if where is None:
                continue
            kind, directory = where
            if event.mask & ino.IN_IGNORED:
                self._forget(event.wd)
                continue
            out.append(DirEvent(kind, directory / event.name if event.name else directory, event.mask))
        return out

    def _forget(self, wd: int) -> None:
        where = self._by_wd.pop(wd, None)
        if where is not None:
            self._by_path.pop(where[1], None)

    def close(self) -> None:
        self._inotify.close()
