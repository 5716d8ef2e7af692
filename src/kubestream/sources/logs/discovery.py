"""Finding container log files: a stat walk of ``pods_dir`` (+ ``containers_dir`` symlinks) and
inotify watches on the directories, which turn kernel events into "look at this path" calls.

The walk is the truth (it runs at start and every ``sweep_interval_s``); inotify only makes
things fast. Discovery is by the filesystem, not by the API: a pod that lived two seconds and
that the pod watch never showed still left its directory, and it is read.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from kubestream.sources.logs import inotify as ino
from kubestream.sources.logs.paths import LOG_NAME, LogPath, PodDir, parse_container_link, parse_pod_dir

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
"""kubelet compresses into ``<f>.tmp`` and renames it: never read a half-written gzip."""


@dataclass(slots=True)
class Scan:
    """One walk of ``pods_dir``: the log files and the directories to watch."""

    files: list[LogPath] = field(default_factory=list)
    pod_dirs: list[Path] = field(default_factory=list)
    container_dirs: list[Path] = field(default_factory=list)
    linked_dirs: list[Path] = field(default_factory=list)
    """Pod or container "directories" that are symlinks: never walked into (see guard.py)."""


def scan_pods_dir(pods_dir: Path, cache: DirCache | None = None) -> Scan:
    """Every log file under ``pods_dir`` (live, rotated and gzipped), sorted by path.

    With a ``cache``, directories whose mtime has not changed are not listed again.
    """
    cache = cache if cache is not None else DirCache()
    scan = Scan()
    seen: set[str] = set()
    for pod_entry in _entries(pods_dir):
        pod = parse_pod_dir(pod_entry.name)
        if pod is None:
            continue
        if not pod_entry.is_dir(follow_symlinks=False):
            if pod_entry.is_symlink():
                scan.linked_dirs.append(cache.path(pod_entry.path))
            continue
        pod_dir = cache.path(pod_entry.path)
        scan.pod_dirs.append(pod_dir)
        for container_dir, linked in cache.listing(pod_entry.path, seen, _container_dirs):
            if linked:
                scan.linked_dirs.append(container_dir)
                continue
            scan.container_dirs.append(container_dir)
            scan.files.extend(cache.listing(str(container_dir), seen, _file_lister(container_dir, pod)))
    cache.retain(seen)
    scan.files.sort(key=lambda p: str(p.path))
    return scan


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


def _file_lister(container_dir: Path, pod: PodDir) -> Callable[[str], list[LogPath]]:
    return lambda _: _container_files(container_dir, pod, container_dir.name)


def _container_dirs(pod_dir: str) -> list[tuple[Path, bool]]:
    """(path, is a symlink) of the container directories of a pod directory."""
    return [(Path(e.path), not is_dir) for e in _entries(Path(pod_dir))
            if (is_dir := e.is_dir(follow_symlinks=False)) or e.is_symlink()]


def scan_container_dir(container_dir: Path, pods_dir: Path) -> list[LogPath]:
    """The log files of one container directory (``.tmp`` files excluded)."""
    try:
        relative = container_dir.relative_to(pods_dir).parts
    except ValueError:
        return []
    pod = parse_pod_dir(relative[0]) if len(relative) == 2 else None
    return _container_files(container_dir, pod, relative[1]) if pod is not None else []


def _container_files(container_dir: Path, pod: PodDir, container: str) -> list[LogPath]:
    # Built from the already parsed directory names: the sweep walks every file every time, and
    # re-parsing full paths was most of its cost.
    found: list[LogPath] = []
    for entry in _entries(container_dir):
        name = entry.name
        if name.endswith(TEMP_SUFFIX):
            continue
        match = LOG_NAME.fullmatch(name)
        if match is not None:
            found.append(LogPath(
                path=container_dir / name, namespace=pod.namespace, pod=pod.pod, uid=pod.uid, container=container,
                restart=int(match["restart"]), rotated=match["rotated"] is not None, gz=match["gz"] is not None))
    return found


def scan_container_links(containers_dir: Path, pods_dir: Path,
                         uid_for: Callable[[str, str], str | None]) -> list[LogPath]:
    """Files named by ``/var/log/containers`` symlinks that live *outside* ``pods_dir``.

    Links into ``pods_dir`` are skipped (the walk finds those files with their full identity).
    Outside files (dockershim's ``/var/lib/docker/containers/<id>/<id>-json.log``) carry no uid in
    their path; ``uid_for(namespace, pod)`` asks the pod cache, else the uid is "". Whether such
    a file may be read at all (inside ``logs.extra_roots``, a regular file) is the file table's
    call (guard.py): the link is kept in ``LogPath.link`` for what it tells the operator.
    """
    found: list[LogPath] = []
    real_pods = os.path.realpath(pods_dir) + os.sep
    lexical_pods = os.path.abspath(pods_dir) + os.sep
    for entry in _entries(containers_dir):
        link = parse_container_link(entry.name)
        if link is None:
            continue
        try:
            pointed = os.readlink(entry.path)
        except OSError:
            continue
        # kubelet's links are absolute paths into pods_dir: decided without resolving them.
        if pointed.startswith(lexical_pods) or pointed.startswith(real_pods):
            continue
        target = os.path.realpath(entry.path)
        if target.startswith(real_pods):
            continue
        found.append(LogPath(
            path=Path(target), namespace=link.namespace, pod=link.pod,
            uid=uid_for(link.namespace, link.pod) or "", container=link.container,
            restart=0, rotated=False, gz=False, link=Path(entry.path),
        ))
    return found


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        log.warning("cannot list %s: %s", directory, exc)
        return []


class DirKind(Enum):
    """What a watched directory holds."""

    ROOT = "root"
    """``pods_dir``: pod directories."""
    POD = "pod"
    """A pod directory: container directories."""
    CONTAINER = "container"
    """A container directory (or a symlink target's directory): log files."""


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
