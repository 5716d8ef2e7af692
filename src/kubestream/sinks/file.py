"""The file sink: each batch becomes ``<dir>/<key>``, written atomically and durably.

``put`` hard-links the (already fsynced) spool file to a temporary name next to the target, or
copies and fsyncs it when the two directories are on different file systems, then renames it
over the target and fsyncs the directory. A replay of the same key therefore replaces the object
with identical content: idempotent. The temporary name is derived from the key, so an upload
killed half-way leaves at most one hidden temporary file, which the replay of that same key
(still registered in the spool) reuses and renames away.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import shutil
import threading
from pathlib import Path, PurePosixPath

from kubestream.config.settings import FileSinkSettings
from kubestream.errors import SinkFatalError, SinkRejectedError, SinkRetryableError
from kubestream.obs.metrics import Metrics

# Waiting can fix a full disk (the operator or a log rotation frees space); it cannot fix
# permissions or a read-only mount.
_RETRYABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT})
_FATAL_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR})
# This one object cannot be stored (a name component over NAME_MAX, a file over the size limit);
# other keys can: a dead letter, not a stopped agent.
_REJECTED_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EFBIG})
# A hard link is impossible across file systems or where links are unsupported; copy instead.
_LINK_UNAVAILABLE = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP})


_PROBES = itertools.count()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_directories(directory: Path) -> None:
    """``mkdir -p`` that also makes each new directory entry durable."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        _fsync_directory(path.parent)


def classify(exc: OSError, what: str) -> SinkRetryableError | SinkRejectedError | SinkFatalError:
    """The sink error for an ``OSError``: disk full and transient I/O are retryable, a name or
    size this file system cannot hold is a rejection of that object."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FATAL_ERRNOS:
        return SinkFatalError(f"file sink: {what}: {reason}")
    if exc.errno in _REJECTED_ERRNOS:
        return SinkRejectedError(f"file sink: {what}: {reason}")
    if exc.errno in _RETRYABLE_ERRNOS:
        return SinkRetryableError(f"file sink: {what}: {reason}")
    # Unknown errors: a retry is cheap, and the delivery worker logs every failed attempt.
    return SinkRetryableError(f"file sink: {what}: {reason}")


class FileSink:
    """Writes batches under ``settings.dir`` (implements ``sinks.base.Sink``)."""

    name = "file"

    def __init__(self, settings: FileSinkSettings, *, metrics: Metrics | None = None) -> None:
        self.directory = Path(settings.dir)
        # Delivery counts batches, bytes and errors per sink; nothing file-specific to add yet.
        self._metrics = metrics

    def path_for(self, key: str) -> Path:
        """Where ``key`` is stored; rejects keys that would escape the directory."""
        parts = PurePosixPath(key).parts
        if not parts or PurePosixPath(key).is_absolute() or any(p in ("..", ".") for p in parts):
            raise SinkFatalError(f"file sink: refusing object key {key!r}")
        return self.directory.joinpath(*parts)

    async def check(self) -> None:
        """Create the directory if needed and prove it writable: ``SinkRetryableError`` if a wait
        may fix it (a full disk, transient I/O errors), else ``SinkFatalError``."""
        await asyncio.to_thread(self._check)

    def _check(self) -> None:
        # Unique per call, not just per process: the demo runs the events collector and the node
        # agent in one process over one directory, and their checks run in parallel threads.
        probe = self.directory / f".kubestream-probe-{os.getpid()}-{threading.get_ident()}-{next(_PROBES)}"
        try:
            _make_directories(self.directory)
            with open(probe, "wb") as handle:
                handle.write(b"probe")
                os.fsync(handle.fileno())
            probe.unlink()
        except OSError as exc:
            what = f"file sink: directory {self.directory} is not writable: {exc.strerror or exc}"
            if exc.errno in _RETRYABLE_ERRNOS:
                raise SinkRetryableError(what) from exc
            raise SinkFatalError(what) from exc

    async def put(self, key: str, source: Path, size: int) -> None:
        """Store ``source`` under ``key``; returns once the object is durable."""
        target = self.path_for(key)
        try:
            await asyncio.to_thread(self._put, target, source, size)
        except OSError as exc:
            raise classify(exc, f"writing {target}") from exc

    def _put(self, target: Path, source: Path, size: int) -> None:
        _make_directories(target.parent)
        temp = target.with_name(f".{target.name}.tmp")
        temp.unlink(missing_ok=True)
        try:
            self._link_or_copy(source, temp)
            written = temp.stat().st_size
            if written != size:
                raise SinkFatalError(f"file sink: spool file {source} has {written} bytes, expected {size}")
            os.replace(temp, target)
        except BaseException:
            # A half-written copy on a full disk holds space the retry needs.
            temp.unlink(missing_ok=True)
            raise
        # rename(2) is a no-op when both names are links to one inode, which is exactly the
        # replay of an upload that had already linked the same spool file: drop the extra name.
        temp.unlink(missing_ok=True)
        _fsync_directory(target.parent)

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys of the finished objects under ``prefix`` (temp files are not objects)."""
        return await asyncio.to_thread(self._list_keys, prefix)

    def _list_keys(self, prefix: str) -> list[str]:
        base = self.path_for(prefix.rstrip("/")) if prefix.strip("/") else self.directory
        if not base.is_dir():
            return []
        return [
            path.relative_to(self.directory).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        ]

    async def get(self, key: str) -> bytes:
        """The bytes of one object."""
        return await asyncio.to_thread(self.path_for(key).read_bytes)

    @staticmethod
    def _link_or_copy(source: Path, temp: Path) -> None:
        try:
            # The spool file is already fsynced and never modified: sharing its inode is safe
            # and avoids copying the data.
            os.link(source, temp)
            return
        except OSError as exc:
            if exc.errno not in _LINK_UNAVAILABLE:
                raise
        with open(source, "rb") as src, open(temp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
            dst.flush()
            os.fsync(dst.fileno())

    async def close(self) -> None:
        """Nothing to release: every put opens and closes its own files."""
