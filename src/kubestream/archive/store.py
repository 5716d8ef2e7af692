"""The archive as compaction and readers use it: list, get, put (atomic), delete.

Built from the configured sink (``sink.type``): the file sink's directory, or the obstore store
of the S3/GCS/Azure sink (same credentials chain). Writes go through the sink's own ``put``
(atomic rename / single PUT or multipart upload: an object is whole or absent).

Listing order matters to readers racing a compactor (``archive.catalog``): object stores list
keys in byte order; the file archive reads a folder's files before it descends into its
sub-folders, which gives the same guarantee (a partition's sources are seen before its
``~compacted`` folder, a compaction's manifest before its ``covers/`` and ``parts/``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

from kubestream.archive.catalog import COMPACTED_DIR, live_keys
from kubestream.config.settings import Settings, SinkSettings
from kubestream.errors import ConfigError, KubestreamError, SinkError
from kubestream.sinks.base import Sink, SinkReader
from kubestream.sinks.factory import make_destination_sink
from kubestream.sinks.file import FileSink

_T = TypeVar("_T")


class ObjectMissingError(KubestreamError):
    """The object was listed but is gone (a compactor deleted it after committing): list again."""


class ArchiveStore(Protocol):
    """What compaction needs of the archive (``FileArchive``, ``ObjectArchive``)."""

    name: str

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under the folder ``prefix`` (recursively), in reader-safe order."""
        ...

    async def list_folders(self, prefix: str) -> list[str]:
        """The sub-folders directly under ``prefix``, each ending with ``/``."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes of ``key``; ``ObjectMissingError`` if it does not exist."""
        ...

    async def put_file(self, key: str, path: Path) -> None:
        """Store the (fsynced) local file ``path`` under ``key``, atomically and durably."""
        ...

    async def delete(self, keys: list[str]) -> None:
        """Delete ``keys`` (missing ones are fine); durable once it returns."""
        ...

    async def put_empty(self, keys: list[str]) -> None:
        """Store an empty object under each of ``keys``; all durable once it returns."""
        ...

    def scratch_path(self, key: str) -> Path:
        """A local file where the object ``key`` may be prepared before ``put_file``."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileArchive:
    """An archive directory (the file sink's ``dir``)."""

    name = "file"

    def __init__(self, sink: FileSink) -> None:
        self.sink = sink
        self.root = sink.directory

    async def list_keys(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._walk, prefix)

    def _walk(self, prefix: str) -> list[str]:
        base = self.sink.path_for(prefix.rstrip("/")) if prefix.strip("/") else self.root
        keys: list[str] = []
        pending = [base]
        while pending:
            directory = pending.pop(0)
            try:
                # Read the whole folder before any sub-folder: see the module docstring.
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            subdirs = []
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(Path(entry.path))
                elif not entry.name.startswith("."):
                    keys.append(Path(entry.path).relative_to(self.root).as_posix())
            pending[:0] = subdirs
        return keys

    async def list_folders(self, prefix: str) -> list[str]:
        def folders() -> list[str]:
            base = self.sink.path_for(prefix.rstrip("/")) if prefix.strip("/") else self.root
            try:
                return sorted(f"{p.relative_to(self.root).as_posix()}/" for p in base.iterdir() if p.is_dir())
            except (FileNotFoundError, NotADirectoryError):
                return []

        return await asyncio.to_thread(folders)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self.sink.path_for(key).read_bytes)
        except FileNotFoundError as exc:
            raise ObjectMissingError(f"{key}: gone") from exc

    async def put_file(self, key: str, path: Path) -> None:
        # One stat of a local, just written file: not worth a thread hop.
        await self.sink.put(key, path, os.stat(path).st_size)

    async def delete(self, keys: list[str]) -> None:
        await asyncio.to_thread(self._delete, keys)

    def _delete(self, keys: list[str]) -> None:
        folders = set()
        for key in keys:
            path = self.sink.path_for(key)
            path.unlink(missing_ok=True)
            folders.add(path.parent)
        # The next step (deleting markers) must not reach the disk before these deletions.
        for folder in folders:
            if folder.is_dir():
                _fsync_directory(folder)
                self._prune(folder)

    async def put_empty(self, keys: list[str]) -> None:
        await asyncio.to_thread(self._put_empty, keys)

    def _put_empty(self, keys: list[str]) -> None:
        # An empty file is whole or absent, so no temp file and rename per marker; one fsync of
        # each folder afterwards makes them all durable (markers of one compaction share a folder).
        folders = set()
        for key in keys:
            path = self.sink.path_for(key)
            if path.parent not in folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                folders.add(path.parent)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
        for folder in folders:
            _fsync_directory(folder)
            # A new folder's own entry must be durable too.
            _fsync_directory(folder.parent)

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty inside a compaction (``covers/``), never a partition."""
        while folder != self.root and COMPACTED_DIR in folder.relative_to(self.root).parts:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def scratch_path(self, key: str) -> Path:
        # Beside the target: the sink hard-links it into place instead of copying.
        target = self.sink.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}.compacting")

    async def close(self) -> None:
        await self.sink.close()


class ObjectArchive:
    """A bucket/container of an object-store sink (S3, GCS, Azure) through its obstore store."""

    def __init__(self, sink: Sink, scratch_dir: Path) -> None:
        self.sink = sink
        self.name = sink.name
        # The sinks keep their store private; the archive is their reader and shares it.
        self._store = sink._store  # type: ignore[attr-defined]
        self._where: str = sink.where  # type: ignore[attr-defined]
        self._scratch = scratch_dir

    async def _call(self, call: Callable[[], Awaitable[_T]], what: str) -> _T:
        import obstore.exceptions

        from kubestream.sinks.objectstore import classify

        try:
            return await call()
        except obstore.exceptions.NotFoundError as exc:
            raise ObjectMissingError(f"{what}: gone") from exc
        except (obstore.exceptions.BaseError, OSError) as exc:
            raise classify(exc, f"{self._where}: {what}", {}) from exc

    async def list_keys(self, prefix: str) -> list[str]:
        import obstore

        folder = prefix.strip("/") or None
        metas = await self._call(lambda: obstore.list(self._store, prefix=folder, chunk_size=1000).collect_async(),
                                 f"listing {prefix!r}")
        return [str(m["path"]) for m in metas if not str(m["path"]).rsplit("/", 1)[-1].startswith(".")]

    async def list_folders(self, prefix: str) -> list[str]:
        import obstore

        folder = prefix.strip("/") or None
        result = await self._call(lambda: obstore.list_with_delimiter_async(self._store, prefix=folder),
                                  f"listing {prefix!r}")
        return sorted(f"{p.rstrip('/')}/" for p in result["common_prefixes"])

    async def get(self, key: str) -> bytes:
        import obstore

        async def read() -> bytes:
            answer = await obstore.get_async(self._store, key)
            return bytes(await answer.bytes_async())

        return await self._call(read, f"reading {key}")

    async def put_file(self, key: str, path: Path) -> None:
        # One stat of a local, just written file: not worth a thread hop.
        await self.sink.put(key, path, os.stat(path).st_size)

    async def delete(self, keys: list[str]) -> None:
        import obstore

        semaphore = asyncio.Semaphore(16)

        async def one(key: str) -> None:
            async with semaphore:
                try:
                    await self._call(lambda: obstore.delete_async(self._store, key), f"deleting {key}")
                except ObjectMissingError:
                    pass

        await asyncio.gather(*(one(k) for k in keys))

    async def put_empty(self, keys: list[str]) -> None:
        # Through the sink's put: the markers carry the configured attributes (encryption,
        # storage class) a bucket policy may require.
        semaphore = asyncio.Semaphore(16)
        empty = self.scratch_path(f"{keys[0]}.empty") if keys else None
        if empty is None:
            return
        empty.write_bytes(b"")
        try:
            async def one(key: str) -> None:
                async with semaphore:
                    await self.sink.put(key, empty, 0)

            await asyncio.gather(*(one(k) for k in keys))
        finally:
            empty.unlink(missing_ok=True)

    def scratch_path(self, key: str) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch / key.replace("/", "__")

    async def close(self) -> None:
        await self.sink.close()


def archive_sink_settings(settings: Settings) -> SinkSettings:
    """Where the archive is: ``settings.archive_destination()`` (the first file or object-store
    destination; the legacy ``sink:`` is one); ``ConfigError`` when only live outputs are configured."""
    archive = settings.archive_destination()
    if archive is None:
        raise ConfigError("no archive: none of the destinations is a file or object-store sink", key="sinks")
    return archive


def open_archive(settings: Settings) -> ArchiveStore:
    """The archive of the configuration (``archive_sink_settings``); ``ConfigError`` on unusable settings."""
    sink = make_destination_sink(archive_sink_settings(settings))
    if isinstance(sink, FileSink):
        return FileArchive(sink)
    return ObjectArchive(sink, settings.state.dir / "compaction")


async def list_folders_of(reader: SinkReader | ArchiveStore, prefix: str) -> list[str]:
    """The sub-folders directly under ``prefix`` of a sink used as a reader (one delimiter
    listing, not a walk of everything below): how readers find the ``cluster=`` levels."""
    if isinstance(reader, FileSink):
        return await FileArchive(reader).list_folders(prefix)
    listing = getattr(reader, "list_folders", None)
    if listing is not None:
        folders: list[str] = await listing(prefix)
        return folders
    # An object-store sink: its store answers delimiter listings (no scratch space is used).
    return await ObjectArchive(reader, Path()).list_folders(prefix)  # type: ignore[arg-type]


async def read_live(reader: SinkReader | ArchiveStore, prefix: str, *, keep: Callable[[str], bool] | None = None,
                    attempts: int = 5) -> list[tuple[str, bytes]]:
    """The live objects (``catalog.live_keys``) under ``prefix`` with their bytes (those ``keep`` accepts).

    An object listed but gone when read was replaced by a compaction that committed meanwhile:
    the folder is listed again, up to ``attempts`` times.
    """
    last: Exception | None = None
    for _ in range(attempts):
        keys = [k for k in live_keys(await reader.list_keys(prefix)) if keep is None or keep(k)]
        try:
            return [(key, await _get(reader, key)) for key in keys]
        except ObjectMissingError as exc:
            last = exc
    raise SinkError(f"{prefix}: objects keep disappearing while read ({last}); is a compactor running?")


async def _get(reader: SinkReader | ArchiveStore, key: str) -> bytes:
    try:
        return await reader.get(key)
    except FileNotFoundError as exc:
        raise ObjectMissingError(f"{key}: gone") from exc
    except SinkError as exc:
        import obstore.exceptions

        if isinstance(exc.__cause__, obstore.exceptions.NotFoundError):
            raise ObjectMissingError(f"{key}: gone") from exc
        raise
