"""The set of open files of the logs source and what happens to them on the filesystem.

Indexes: one ``Tailer`` per file identity (content fingerprint scoped to the container
directory: two files with one identity are one file seen twice, a rotated name and its ``.gz``, or
a copytruncate copy), found by identity, by (device, inode) and by its current path. Files that
must not be opened again are remembered by identity (read to their end) or by inode (excluded by
selection).

Nothing is opened but through guard.py: regular files inside the log roots only, never a FIFO or
a device, never through a symlink out of the roots. A refused file is counted and logged once;
an unreadable one is tried again at each sweep (not at each write to it).

This class never reads a file's data or feeds a parser: it decides *which* files are open and
tells the reader loop (``on_ready``) which ones have something to do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from kubestream.config.settings import LogsSettings
from kubestream.obs.metrics import Metrics
from kubestream.sources.files.dirs import DirCache, DirEvent, DirKind, DirWatcher
from kubestream.sources.files.fingerprint import (
    content_of,
    fingerprint_of,
    identity_of,
    read_gzip_head,
    read_head,
)
from kubestream.sources.files.guard import (
    UNREADABLE,
    Location,
    Refusal,
    Roots,
    SkipReporter,
    check_dir_link,
    locate,
    open_located,
)
from kubestream.sources.files.handle import FileHandle
from kubestream.sources.logs.container_rules import ContainerInfo, MetadataCache
from kubestream.sources.logs.detect import detect_format
from kubestream.sources.logs.discovery import (
    TEMP_SUFFIX,
    scan_container_dir,
    scan_container_links,
    scan_pods_dir,
)
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser
from kubestream.sources.logs.paths import LogPath, parse_log_path
from kubestream.sources.logs.selection import Selection
from kubestream.sources.logs.tailer import Tailer

log = logging.getLogger(__name__)

FileKey = tuple[int, int]
ABSENT_SWEEPS = 2
"""A checkpoint row is dropped once its file was missing from this many sweeps in a row (one
miss could be a walk racing kubelet's gzip rename)."""


class FileTable:
    """Open files, keyed three ways; see the module docstring."""

    def __init__(self, settings: LogsSettings, meta: MetadataCache, selection: Selection, *,
                 on_ready: Callable[[Tailer], None], metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._meta = meta
        self._selection = selection
        self._on_ready = on_ready
        self._metrics = metrics
        self._clock = clock
        self.watcher: DirWatcher | None = None
        self._tailers: dict[str, Tailer] = {}
        self._by_file: dict[FileKey, Tailer] = {}
        self._by_path: dict[Path, Tailer] = {}
        self._finished: set[str] = set()
        self._skipped: dict[FileKey, str] = {}
        self._fingerprints: dict[FileKey, str] = {}
        self._saved: dict[str, int] = {}
        self._saved_timestamps: dict[str, bytes] = {}
        self._absent: dict[str, int] = {}
        self._external: dict[Path, LogPath] = {}
        self._dir_cache = DirCache()
        self._roots = Roots(settings.pods_dir, settings.extra_roots)
        self._skips = SkipReporter(metrics, clock)

    def set_saved_offsets(self, offsets: dict[str, int], timestamps: dict[str, bytes] | None = None) -> None:
        """Committed offsets (and the parser's timestamp there) by fingerprint, where files found
        from now on resume."""
        self._saved = dict(offsets)
        self._saved_timestamps = dict(timestamps or {})

    def get(self, fingerprint: str) -> Tailer | None:
        return self._tailers.get(fingerprint)

    def tailers(self) -> list[Tailer]:
        return list(self._tailers.values())

    def __len__(self) -> int:
        return len(self._tailers)

    @property
    def skipped(self) -> dict[FileKey, str]:
        """Files excluded by pod/namespace metadata, with the reason."""
        return dict(self._skipped)

    # -- filesystem events -------------------------------------------------------------------

    def on_dir_event(self, event: DirEvent) -> None:
        """React to one inotify event (see discovery.DirWatcher)."""
        if event.kind is DirKind.ROOT:
            if event.created:
                self._adopt_pod_dir(event.path)
            elif event.removed and not event.is_self:
                self._check_under(event.path)
        elif event.kind is DirKind.POD:
            if event.created:
                self._adopt_container_dir(event.path)
            elif event.removed:
                self._check_under(event.path)
        elif event.is_self:
            self._check_under(event.path)
        else:
            self._on_file_event(event)

    def _on_file_event(self, event: DirEvent) -> None:
        tailer = self._by_path.get(event.path)
        if event.removed:
            if tailer is not None:
                self._check_live(tailer)
            return
        if tailer is not None and event.modified:
            self._on_ready(tailer)
            return
        if tailer is not None:
            self._check_live(tailer)  # something was renamed over it
        self.consider_path(event.path)

    def _adopt_pod_dir(self, pod_dir: Path) -> None:
        if pod_dir.is_symlink():
            return  # never walked into (the sweep reports one pointing out of the roots)
        if self.watcher is not None:
            self.watcher.watch(DirKind.POD, pod_dir)
        for entry in _subdirs(pod_dir):
            self._adopt_container_dir(entry)

    def _adopt_container_dir(self, container_dir: Path) -> None:
        if container_dir.is_symlink():
            return
        if self.watcher is not None:
            self.watcher.watch(DirKind.CONTAINER, container_dir)
        for lp in scan_container_dir(container_dir, self._settings.pods_dir):
            self._consider(lp)

    def _check_under(self, directory: Path) -> None:
        for tailer in self.tailers():
            if tailer.path.is_relative_to(directory):
                self._check_live(tailer)

    # -- opening -----------------------------------------------------------------------------

    def consider_path(self, path: Path) -> str | None:
        """Look at one path (a file event); returns its fingerprint when it has one."""
        lp = parse_log_path(path, self._settings.pods_dir) or self._external.get(path)
        return self._consider(lp) if lp is not None else None

    def _consider(self, lp: LogPath, *, sweeping: bool = False) -> str | None:
        if lp.path.name.endswith(TEMP_SUFFIX) or self._path_excluded(lp):
            return None
        where = locate(lp.path, self._roots)
        if where is None:
            return None
        if isinstance(where, Refusal):
            self._skips.report(lp.shown, where)
            return None
        st, key = where.st, where.key
        if key in self._skipped:
            return self._fingerprints.get(key)
        tailer = self._by_file.get(key)
        if tailer is not None:
            self._follow_rename(tailer, lp)
            if tailer.handle.fd >= 0 and st.st_size != tailer.offset:
                self._on_ready(tailer)
            return tailer.fingerprint
        known = self._fingerprints.get(key)
        if known is not None and (known in self._tailers or known in self._finished):
            return known
        if not sweeping and self._skips.reported(key) == UNREADABLE:
            return None  # tried again by the sweep, not at every write to it
        return self._open(lp, where)

    def _path_excluded(self, lp: LogPath) -> bool:
        try:
            relative = lp.path.relative_to(self._settings.pods_dir).as_posix()
        except ValueError:
            relative = lp.path.as_posix()
        return self._selection.path_excluded(lp.namespace, lp.pod, relative) is not None

    def _open(self, lp: LogPath, where: Location) -> str | None:
        fd = self._open_fd(lp, where)
        if fd < 0:
            return None
        key = where.key
        try:
            head = read_gzip_head(fd) if lp.gz else read_head(fd)
            fingerprint = identity_of(head, lp.scope)
            fmt = detect_format(head) if fingerprint is not None else None
            if fingerprint is None or fmt is None:
                return None  # no complete first line yet: looked at again when it grows
            self._fingerprints[key] = fingerprint
            if fingerprint in self._tailers or fingerprint in self._finished:
                return fingerprint
            info = self._meta.get(lp)
            reason = self._selection.pod_excluded(lp.container, info.extra.facts)
            if reason is not None:
                self._skipped[key] = reason
                log.info("logs: not reading %s (%s)", lp.path, reason)
                return fingerprint
            handle = FileHandle.open_gzip(lp, fd) if lp.gz else FileHandle.open_plain(lp, fd)
            fd = -1  # owned by the handle now
        except OSError as exc:
            log.debug("logs: cannot read the head of %s: %s", lp.path, exc)
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        self._start(lp, handle, fingerprint, self._resume_offset(fingerprint, lp, where.st.st_size), fmt)
        return fingerprint

    def _open_fd(self, lp: LogPath, where: Location) -> int:
        """The fd of a located file, or -1 (refused: reported; changed meanwhile: looked at again)."""
        opened = open_located(where)
        if isinstance(opened, Refusal):
            self._skips.report(lp.shown, opened)
            return -1
        return -1 if opened is None else opened

    def _resume_offset(self, fingerprint: str, lp: LogPath, size: int) -> int:
        offset = self._saved.get(fingerprint, 0)
        # A copy can be shorter than what was committed from the live file it was copied from
        # (lines appended between copy and truncate): then all of it was read.
        return offset if lp.gz else min(offset, size)

    def _start(self, lp: LogPath, handle: FileHandle[LogPath], fingerprint: str, offset: int, fmt: LogFormat) -> None:
        info = self._meta.acquire(lp)
        parser = FileParser(fmt, self._settings, multiline=info.extra.multiline, metrics=self._metrics,
                            last_timestamp=self._saved_timestamps.get(fingerprint) if offset else None)
        now = self._clock()
        tailer = Tailer(fingerprint=fingerprint, handle=handle, parser=parser, info=info,
                        container_key=lp.container_key, offset=offset, last_data_at=now,
                        rotated_at=now if (lp.rotated or lp.gz) else None)
        self._tailers[fingerprint] = tailer
        self._by_file[handle.file_key] = tailer
        self._by_path[lp.path] = tailer
        if offset:
            log.debug("logs: resuming %s at offset %d", lp.path, offset)
        self._on_ready(tailer)

    # -- following a file --------------------------------------------------------------------

    def _follow_rename(self, tailer: Tailer, lp: LogPath) -> None:
        old = tailer.handle.path
        if old.path != lp.path:
            if self._by_path.get(old.path) is tailer:
                del self._by_path[old.path]
            tailer.handle.path = lp
            self._by_path[lp.path] = tailer
        if (lp.rotated or lp.gz) and tailer.live:
            self._mark_rotated(tailer)

    def _check_live(self, tailer: Tailer) -> None:
        """Still the file at its path? If not, it was rotated or removed: read it to its end."""
        if not tailer.live:
            return
        try:
            st = os.stat(tailer.path)
            same = (st.st_dev, st.st_ino) == tailer.handle.file_key
        except OSError:
            same = False
        if not same:
            if self._by_path.get(tailer.path) is tailer:
                del self._by_path[tailer.path]
            self._mark_rotated(tailer)

    def _mark_rotated(self, tailer: Tailer) -> None:
        tailer.rotated_at = self._clock()
        self._on_ready(tailer)

    def truncated(self, tailer: Tailer) -> bool:
        """A live plain file shrank below the offset, or its head changed (copytruncate)."""
        fd = tailer.handle.fd
        if fd < 0:
            return False
        if os.fstat(fd).st_size < tailer.offset:
            return True
        return fingerprint_of(read_head(fd)) != content_of(tailer.fingerprint)

    def forget_content(self, key: FileKey) -> None:
        """The inode's content was replaced (copytruncate): its cached fingerprint is stale."""
        self._fingerprints.pop(key, None)

    def hand_over_to_copy(self, tailer: Tailer) -> bool:
        """After a copytruncate: move the tailer to the copy of its content, if one exists."""
        live = tailer.handle
        for lp in scan_container_dir(live.path.path.parent, self._settings.pods_dir):
            if not lp.path.name.startswith(live.path.path.name + "."):
                continue
            handle = self._open_copy(lp, live.file_key, tailer.fingerprint)
            if handle is None:
                continue
            del self._by_file[live.file_key]
            if self._by_path.get(live.path.path) is tailer:
                del self._by_path[live.path.path]
            live.close()
            tailer.handle = handle
            self._by_file[handle.file_key] = tailer
            self._by_path[lp.path] = tailer
            tailer.rotated_at = self._clock()
            return True
        return False

    def _open_copy(self, lp: LogPath, live_key: FileKey, fingerprint: str) -> FileHandle[LogPath] | None:
        where = locate(lp.path, self._roots)
        if isinstance(where, Refusal):
            self._skips.report(lp.shown, where)
            return None
        if where is None or where.key == live_key:
            return None
        fd = self._open_fd(lp, where)
        if fd < 0:
            return None
        try:
            head = read_gzip_head(fd) if lp.gz else read_head(fd)
            if fingerprint_of(head) == content_of(fingerprint):
                self._fingerprints[where.key] = fingerprint
                handle = FileHandle.open_gzip(lp, fd) if lp.gz else FileHandle.open_plain(lp, fd)
                fd = -1
                return handle
        except OSError as exc:
            log.debug("logs: cannot read the head of %s: %s", lp.path, exc)
        finally:
            if fd >= 0:
                os.close(fd)
        return None

    def let_go(self, tailer: Tailer) -> None:
        """Close a file read to its end (or given up): it is never opened again."""
        self._tailers.pop(tailer.fingerprint, None)
        if self._by_file.get(tailer.handle.file_key) is tailer:
            del self._by_file[tailer.handle.file_key]
        if self._by_path.get(tailer.path) is tailer:
            del self._by_path[tailer.path]
        tailer.handle.close()
        self._finished.add(tailer.fingerprint)
        self._meta.release(tailer.container_key)

    def refresh_info(self, tailer: Tailer) -> ContainerInfo:
        """The container's current metadata (rebuilt when its pod changed)."""
        tailer.info = self._meta.get(tailer.handle.path)
        return tailer.info

    def close_all(self) -> None:
        for tailer in self.tailers():
            tailer.handle.close()
        self._tailers.clear()
        self._by_file.clear()
        self._by_path.clear()

    # -- multiline timeout -------------------------------------------------------------------

    def has_pending_multiline(self) -> bool:
        return any(t.pending_since is not None for t in self._tailers.values())

    def mark_multiline_due(self, now: float) -> None:
        """Queue a flush for pending multiline records idle for ``multiline_timeout_s``."""
        timeout = self._settings.multiline_timeout_s
        for tailer in self._tailers.values():
            if tailer.pending_since is not None and not tailer.flush_due and now - tailer.last_data_at >= timeout:
                tailer.flush_due = True
                self._on_ready(tailer)

    # -- sweep -------------------------------------------------------------------------------

    def sweep(self, now: float) -> set[str]:
        """Walk the directories, re-check open files; returns the fingerprints on disk."""
        scan = scan_pods_dir(self._settings.pods_dir, self._dir_cache)
        if self.watcher is not None:
            for directory in scan.pod_dirs:
                self.watcher.watch(DirKind.POD, directory)
            for directory in scan.container_dirs:
                self.watcher.watch(DirKind.CONTAINER, directory)
        files = scan.files + self._scan_links()
        seen: set[str] = set()
        keys: set[FileKey] = set()
        for directory in scan.linked_dirs:
            self._check_dir_link(directory, keys)
        for lp in files:
            tracked = self._by_path.get(lp.path)
            if tracked is not None and tracked.path == lp.path:
                continue  # an open file at its known path: _recheck below covers it
            fingerprint = self._consider(lp, sweeping=True)
            if fingerprint is not None:
                seen.add(fingerprint)
            _add_keys(lp.path, keys)
        for tailer in self.tailers():
            seen.add(tailer.fingerprint)
            keys.add(tailer.handle.file_key)
            self._recheck(tailer, now)
        self._forget_missing(keys, seen)
        self._meta.expire()
        return seen

    def _check_dir_link(self, directory: Path, keys: set[FileKey]) -> None:
        refusal = check_dir_link(directory, self._roots)
        if refusal is not None:
            keys.add(refusal.key)
            self._skips.report(directory, refusal)

    def _scan_links(self) -> list[LogPath]:
        links_dir = self._settings.containers_dir
        if links_dir is None:
            return []
        found = scan_container_links(links_dir, self._settings.pods_dir, self._meta.uid_for)
        self._external = {lp.path: lp for lp in found}
        if self.watcher is not None:
            for lp in found:
                if self._roots.locate(str(lp.path), resolved=True) is not None:  # never a watch on /etc
                    self.watcher.watch(DirKind.CONTAINER, lp.path.parent)
        return found

    def _recheck(self, tailer: Tailer, now: float) -> None:
        self._check_live(tailer)
        size = tailer.handle.size()
        if size is not None and size != tailer.offset:
            self._on_ready(tailer)
        rotated = tailer.rotated_at
        if rotated is not None and not tailer.expired and now - rotated > self._settings.drain_timeout_s:
            tailer.expired = True
            self._on_ready(tailer)

    def _forget_missing(self, keys: set[FileKey], seen: set[str]) -> None:
        # Bounded memory: what was learnt about files that are gone goes with them.
        self._fingerprints = {k: v for k, v in self._fingerprints.items() if k in keys}
        self._skipped = {k: v for k, v in self._skipped.items() if k in keys}
        self._skips.retain(keys)
        self._finished &= seen

    def stale_fingerprints(self, known: Iterable[str], seen: set[str]) -> list[str]:
        """Checkpoint rows whose file has been missing from ``ABSENT_SWEEPS`` sweeps in a row."""
        stale: list[str] = []
        missing = {fp for fp in known if fp not in seen and fp not in self._tailers}
        for fingerprint in missing:
            count = self._absent.get(fingerprint, 0) + 1
            if count >= ABSENT_SWEEPS:
                stale.append(fingerprint)
                self._absent.pop(fingerprint, None)
            else:
                self._absent[fingerprint] = count
        for fingerprint in [fp for fp in self._absent if fp not in missing]:
            del self._absent[fingerprint]
        return stale


def _add_keys(path: Path, keys: set[FileKey]) -> None:
    # Both: state is kept by the file read (a link's target) and refusals by the entry itself.
    for stat_of in (os.lstat, os.stat):
        with contextlib.suppress(OSError):
            st = stat_of(path)
            keys.add((st.st_dev, st.st_ino))


def _subdirs(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as it:
            return [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
