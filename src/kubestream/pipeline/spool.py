"""The write-ahead spool: encoded batches on local disk, registered in the state database.

A closed batch becomes durable in two steps, in this order:

1. its bytes are written to ``<dir>/.<name>.tmp``, fsynced, renamed to ``<dir>/<name>``, and
   the directory is fsynced;
2. ONE state transaction inserts the spool entry (with its final object key) and applies the
   records' checkpoint updates (source positions).

A crash before 2 commits leaves an unregistered file: ``recover()`` deletes it, and since the
positions did not advance, the source reads those records again. A crash after 2 leaves a
registered entry: it is delivered (again) under the key fixed in 1, which the sink overwrites
idempotently. The delivery worker removes an entry only after the sink's acknowledgement.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubestream.errors import StateError
from kubestream.model import CheckpointUpdate
from kubestream.obs.metrics import Metrics
from kubestream.state.store import StateStore

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    file TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    stream TEXT NOT NULL,
    records INTEGER NOT NULL,
    committed_at REAL NOT NULL
);
"""
_FILE_SUFFIX = ".batch"
_TEMP_SUFFIX = ".tmp"
SET_ASIDE_DIR = "dead-letter"
"""Subdirectory of the spool holding batches not even the sink's dead-letter folder accepted."""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One registered, undelivered batch. ``seq`` is its commit order."""

    seq: int
    key: str
    path: Path
    size: int
    stream: str
    records: int


def set_aside_name(key: str) -> str:
    """The file name of ``key`` in the spool's dead-letter directory: short enough for any file
    system (the key itself may be what the sink refused), unique per key, and stable."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{digest}-{key.rsplit('/', 1)[-1][-120:]}"


def fsync_directory(directory: Path) -> None:
    """Make a rename/create/unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(target: Path, payload: bytes, temp: Path) -> None:
    """Write ``payload`` to ``temp``, fsync it, rename it over ``target``, fsync the directory."""
    try:
        with open(temp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        # A partial file on a full disk holds the very space the retry needs.
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


class Spool:
    """The spool directory and its registry (table ``spool_entries``) in the state store."""

    def __init__(
        self, directory: Path, state: StateStore, *, max_bytes: int, metrics: Metrics | None = None
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._state = state
        self._metrics = metrics
        directory.mkdir(parents=True, exist_ok=True)
        state.register_schema(_SCHEMA)
        self._entries: list[SpoolEntry] = self._load_entries()
        self._size = sum(e.size for e in self._entries)
        # Replaced by a fresh Event on every change; waiters re-check their condition.
        self._changed = asyncio.Event()
        self._publish()

    # -- queries --------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        """Bytes of registered, undelivered batches."""
        return self._size

    @property
    def is_full(self) -> bool:
        """Whether sources must wait: the undelivered bytes reached ``max_bytes``."""
        return self._size >= self.max_bytes

    def pending(self) -> list[SpoolEntry]:
        """Undelivered entries in commit order."""
        return list(self._entries)

    # -- waiting --------------------------------------------------------------------------

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    async def wait_for_room(self) -> None:
        """Return once the spool is below ``max_bytes``."""
        await self._wait_until(lambda: not self.is_full)

    async def wait_pending(self) -> None:
        """Return once at least one entry is waiting for delivery."""
        await self._wait_until(lambda: bool(self._entries))

    # The agreed contract takes a timeout (shutdown passes its remaining bound).
    async def wait_empty(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` seconds for every entry to be delivered; True if it happened."""
        try:
            async with asyncio.timeout(timeout):
                await self._wait_until(lambda: not self._entries)
        except TimeoutError:
            return False
        return True

    # -- changes --------------------------------------------------------------------------

    def recover(self) -> None:
        """On start: delete unregistered and temporary files; keep registered entries.

        A registered entry whose file is gone cannot be delivered (its positions already
        advanced); it is dropped with an error and counted in ``records_dropped``.
        """
        self._entries = self._load_entries()
        registered = {e.path.name for e in self._entries}
        for path in self.directory.iterdir():
            if path.name not in registered and path.is_file():
                log.info("spool: discarding unregistered file %s (its records were never committed)", path.name)
                path.unlink(missing_ok=True)
        for entry in [e for e in self._entries if not e.path.exists()]:
            log.error("spool: registered batch %s lost its file %s; %d records cannot be delivered",
                      entry.key, entry.path, entry.records)
            if self._metrics is not None:
                self._metrics.records_dropped.labels(source=entry.stream, reason="spool_file_missing").inc(
                    entry.records)
            self._unregister(entry)
        self._entries = self._load_entries()
        self._size = sum(e.size for e in self._entries)
        self._publish()

    async def commit(
        self,
        key: str,
        payload: bytes,
        updates: Sequence[CheckpointUpdate],
        *,
        stream: str = "",
        records: int = 0,
    ) -> SpoolEntry:
        """Write ``payload`` durably, then register it under ``key`` and apply ``updates`` in
        one state transaction. On failure nothing is registered and no position advances."""
        name = f"{uuid.uuid4().hex}{_FILE_SUFFIX}"
        path = self.directory / name
        temp = self.directory / f".{name}{_TEMP_SUFFIX}"
        # fsyncs are slow; keep them off the event loop. If this task is cancelled meanwhile,
        # the file stays unregistered and recover() discards it on the next start.
        await asyncio.to_thread(write_durably, path, payload, temp)
        try:
            seq = self._register(key, name, len(payload), stream, records, updates)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        entry = SpoolEntry(seq=seq, key=key, path=path, size=len(payload), stream=stream, records=records)
        self._entries.append(entry)
        self._size += entry.size
        self._publish()
        return entry

    def _register(
        self, key: str, name: str, size: int, stream: str, records: int, updates: Sequence[CheckpointUpdate]
    ) -> int:
        try:
            with self._state.transaction() as conn:
                cursor = conn.execute(
                    "INSERT INTO spool_entries (key, file, size, stream, records, committed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (key, name, size, stream, records, time.time()),
                )
                for update in updates:
                    update.apply(conn)
        except StateError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                # Two undelivered batches with one key would overwrite each other in the sink.
                raise StateError(f"spool: object key {key!r} is already registered; "
                                 "record positions must increase within a stream") from exc
            raise
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def remove(self, entry: SpoolEntry) -> None:
        """Forget a delivered entry: unregister it first, then delete its file (a crash in
        between leaves an unregistered file, which ``recover`` discards)."""
        self._unregister(entry)
        entry.path.unlink(missing_ok=True)
        before = len(self._entries)
        self._entries = [e for e in self._entries if e.seq != entry.seq]
        if len(self._entries) != before:
            self._size -= entry.size
        self._publish()

    def rekey(self, entry: SpoolEntry, key: str) -> SpoolEntry:
        """Deliver ``entry`` under ``key`` instead (a dead letter); keeps its place in the order."""
        with self._state.transaction() as conn:
            conn.execute("UPDATE spool_entries SET key = ? WHERE seq = ?", (key, entry.seq))
        moved = SpoolEntry(seq=entry.seq, key=key, path=entry.path, size=entry.size, stream=entry.stream,
                           records=entry.records)
        self._entries = [moved if e.seq == entry.seq else e for e in self._entries]
        self._publish()
        return moved

    def set_aside(self, entry: SpoolEntry) -> Path:
        """Keep ``entry``'s file in ``<spool>/dead-letter/`` and forget the entry; the new path.

        The file is linked there durably before the entry is unregistered, so a crash in between
        leaves it registered (delivered, or set aside, again), never lost.
        """
        folder = self.directory / SET_ASIDE_DIR
        folder.mkdir(exist_ok=True)
        target = folder / set_aside_name(entry.key)
        temp = folder / f".{target.name}{_TEMP_SUFFIX}"
        temp.unlink(missing_ok=True)
        os.link(entry.path, temp)
        os.replace(temp, target)
        temp.unlink(missing_ok=True)  # rename(2) between two links to one inode leaves both names
        fsync_directory(folder)
        self.remove(entry)
        return target

    # -- internals ------------------------------------------------------------------------

    def _unregister(self, entry: SpoolEntry) -> None:
        with self._state.transaction() as conn:
            conn.execute("DELETE FROM spool_entries WHERE seq = ?", (entry.seq,))

    def _load_entries(self) -> list[SpoolEntry]:
        rows = self._state.conn.execute(
            "SELECT seq, key, file, size, stream, records FROM spool_entries ORDER BY seq"
        ).fetchall()
        return [
            SpoolEntry(seq=seq, key=key, path=self.directory / file, size=size, stream=stream, records=records)
            for seq, key, file, size, stream, records in rows
        ]

    def _publish(self) -> None:
        """Wake every waiter and update the gauges."""
        self._changed.set()
        self._changed = asyncio.Event()
        if self._metrics is not None:
            self._metrics.spool_bytes.set(self._size)
            self._metrics.spool_batches.set(len(self._entries))
