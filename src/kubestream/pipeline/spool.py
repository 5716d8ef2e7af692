"""The write-ahead spool: encoded batches on local disk, registered in the state database.

A closed batch becomes one spool entry made of parts: one or more payloads per destination that
takes the batch's stream (several when the destination's payload limits split it, none when its
filter keeps no record). It becomes durable in two steps, in this order:

1. every part's bytes are written to ``<dir>/.<name>.tmp``, fsynced, renamed to ``<dir>/<name>``,
   and the directory is fsynced;
2. ONE state transaction inserts every part (each with its destination and final object key)
   and applies the records' checkpoint updates (source positions).

A crash before 2 commits leaves unregistered files: ``recover()`` deletes them, and since the
positions did not advance, the source reads those records again. A crash after 2 leaves every
part registered: each is delivered (again) to its destination under the key fixed in 1, which
an archive sink overwrites idempotently. So a position never advances without every
destination's copy of the records being durable here. Each destination's delivery worker
removes a part only after that destination's acknowledgement; the entry is gone when its last
part is.

Table ``spool_entries`` holds one row per part (``batch`` groups the parts of one entry);
``seq`` is the commit order, which every destination follows for its own parts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubestream.errors import StateError
from kubestream.model import CheckpointUpdate
from kubestream.obs.metrics import Metrics
from kubestream.state.store import StateStore

log = logging.getLogger(__name__)

DEFAULT_DESTINATION = "archive"
"""The destination of parts committed without one (and of the rows of a spool written before
destinations existed)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch INTEGER NOT NULL,
    destination TEXT NOT NULL DEFAULT 'archive',
    part INTEGER NOT NULL DEFAULT 0,
    key TEXT NOT NULL,
    file TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    stream TEXT NOT NULL,
    records INTEGER NOT NULL,
    committed_at REAL NOT NULL,
    UNIQUE (destination, key)
);
"""
# The single-destination layout (one row per batch, keys unique across the table) becomes the
# parts of the default destination, in place and in one transaction.
_UPGRADE = (
    _SCHEMA.replace("spool_entries", "spool_entries_upgrade"),
    "INSERT INTO spool_entries_upgrade (seq, batch, destination, part, key, file, size, stream, records,"
    " committed_at) SELECT seq, seq, 'archive', 0, key, file, size, stream, records, committed_at"
    " FROM spool_entries",
    "DROP TABLE spool_entries",
    "ALTER TABLE spool_entries_upgrade RENAME TO spool_entries",
)
_FILE_SUFFIX = ".batch"
_TEMP_SUFFIX = ".tmp"
SET_ASIDE_DIR = "dead-letter"
"""Subdirectory of the spool holding batches not even the sink's dead-letter folder accepted."""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One registered, undelivered part of a batch for one destination. ``seq`` is its commit order."""

    seq: int
    key: str
    path: Path
    size: int
    stream: str
    records: int
    destination: str = DEFAULT_DESTINATION
    batch: int = 0
    """The spool entry (closed batch) this part belongs to."""
    committed_at: float = 0.0
    """Wall-clock time of its registration (for the oldest-pending age)."""


@dataclass(frozen=True, slots=True)
class PartPayload:
    """What a closed batch becomes for one destination: one payload under its final key."""

    destination: str
    key: str
    payload: bytes
    records: int


@dataclass(frozen=True, slots=True)
class PendingLimit:
    """A destination's bound on its undelivered parts and what happens at it."""

    max_bytes: int | None = None
    """None: only the spool's ``max_bytes`` bounds it."""
    on_full: str = "block"
    """``block``: sources wait (``is_full``); ``drop``: its oldest parts are dropped."""


@dataclass(slots=True)
class _Totals:
    parts: int = 0
    size: int = 0
    oldest: list[float] = field(default_factory=list)


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
    """The spool directory and its registry (table ``spool_entries``) in the state store.

    ``limits``: per destination, the bound of its undelivered parts and whether reaching it
    pauses the sources (``block``, the default) or drops its oldest parts (``drop``).
    """

    def __init__(
        self, directory: Path, state: StateStore, *, max_bytes: int, metrics: Metrics | None = None,
        limits: Mapping[str, PendingLimit] | None = None,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._state = state
        self._metrics = metrics
        self._limits: dict[str, PendingLimit] = dict(limits or {})
        directory.mkdir(parents=True, exist_ok=True)
        self._upgrade_schema()
        state.register_schema(_SCHEMA)
        self._entries: list[SpoolEntry] = self._load_entries()
        # Parts a delivery worker is uploading right now: never dropped under its feet.
        self._in_flight: set[int] = set()
        self._size = 0
        self._full = False
        # Replaced by a fresh Event on every change; waiters re-check their condition.
        self._changed = asyncio.Event()
        self._publish()

    def _upgrade_schema(self) -> None:
        columns = {row[1] for row in self._state.conn.execute("PRAGMA table_info(spool_entries)")}
        if not columns or "destination" in columns:
            return
        with self._state.transaction() as conn:
            for statement in _UPGRADE:
                conn.execute(statement)
        log.info("spool: upgraded the registry to parts per destination; its batches go to %r",
                 DEFAULT_DESTINATION)

    # -- queries --------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        """Bytes of registered, undelivered parts (every destination)."""
        return self._size

    def destination_bytes(self, destination: str) -> int:
        """Bytes of ``destination``'s undelivered parts."""
        return sum(e.size for e in self._entries if e.destination == destination)

    @property
    def is_full(self) -> bool:
        """Whether sources must wait: the undelivered bytes of the blocking destinations reached
        ``max_bytes``, or one blocking destination reached its own bound (kept up to date on
        every change: the batcher asks for every record)."""
        return self._full

    def _compute_full(self) -> bool:
        blocking = 0
        per_destination: dict[str, int] = {}
        for entry in self._entries:
            if self._limit(entry.destination).on_full != "drop":
                blocking += entry.size
                per_destination[entry.destination] = per_destination.get(entry.destination, 0) + entry.size
        if blocking >= self.max_bytes:
            return True
        return any(size >= bound for name, size in per_destination.items()
                   if (bound := self._limit(name).max_bytes) is not None)

    def pending(self, destination: str | None = None) -> list[SpoolEntry]:
        """Undelivered parts in commit order (of ``destination`` only, if given)."""
        if destination is None:
            return list(self._entries)
        return [e for e in self._entries if e.destination == destination]

    # -- waiting --------------------------------------------------------------------------

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    async def wait_for_room(self) -> None:
        """Return once the spool is not full (see ``is_full``)."""
        await self._wait_until(lambda: not self.is_full)

    async def wait_pending(self, destination: str | None = None) -> None:
        """Return once at least one part (of ``destination``, if given) is waiting for delivery."""
        await self._wait_until(lambda: bool(self.pending(destination)))

    # The agreed contract takes a timeout (shutdown passes its remaining bound).
    async def wait_empty(self, timeout: float, destination: str | None = None) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` seconds for every part (of ``destination``) to be delivered."""
        try:
            async with asyncio.timeout(timeout):
                await self._wait_until(lambda: not self.pending(destination))
        except TimeoutError:
            return False
        return True

    # -- changes --------------------------------------------------------------------------

    def recover(self, destinations: Collection[str] | None = None) -> None:
        """On start: delete unregistered and temporary files; keep registered parts.

        A registered part whose file is gone cannot be delivered (its positions already
        advanced); it is dropped with an error and counted in ``records_dropped``. With
        ``destinations`` (the configured ones), the parts of any other destination (removed from
        the configuration) are dropped: one log line per destination, counted in
        ``destination_dropped{reason="removed"}``.
        """
        self._entries = self._load_entries()
        registered = {e.path.name for e in self._entries}
        for path in self.directory.iterdir():
            if path.name not in registered and path.is_file():
                log.info("spool: discarding unregistered file %s (its records were never committed)", path.name)
                path.unlink(missing_ok=True)
        if destinations is not None:
            known = set(destinations)
            for name in sorted({e.destination for e in self._entries} - known):
                gone = [e for e in self._entries if e.destination == name]
                log.warning("spool: destination %r is no longer configured; dropping its %d pending parts "
                            "(%d records)", name, len(gone), sum(e.records for e in gone))
                for entry in gone:
                    self._count_dropped(entry, "removed")
                    self._unregister(entry)
                    entry.path.unlink(missing_ok=True)
            self._entries = [e for e in self._entries if e.destination in known]
        for entry in [e for e in self._entries if not e.path.exists()]:
            log.error("spool: registered batch %s lost its file %s; %d records cannot be delivered",
                      entry.key, entry.path, entry.records)
            if self._metrics is not None:
                self._metrics.records_dropped.labels(source=entry.stream, reason="spool_file_missing").inc(
                    entry.records)
            self._unregister(entry)
        self._entries = self._load_entries()
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
        """Write ``payload`` durably, then register it under ``key`` (for the default destination)
        and apply ``updates`` in one state transaction. On failure nothing is registered and no
        position advances."""
        entries = await self.commit_parts([PartPayload(DEFAULT_DESTINATION, key, payload, records)], updates,
                                          stream=stream)
        return entries[0]

    async def commit_parts(
        self, parts: Sequence[PartPayload], updates: Sequence[CheckpointUpdate], *, stream: str = "",
    ) -> list[SpoolEntry]:
        """Write every part durably, then register them all and apply ``updates`` in ONE state
        transaction (a batch no destination takes still advances its positions). On failure
        nothing is registered and no position advances."""
        names = [f"{uuid.uuid4().hex}{_FILE_SUFFIX}" for _ in parts]
        paths = [self.directory / name for name in names]
        # fsyncs are slow; keep them off the event loop. If this task is cancelled meanwhile,
        # the files stay unregistered and recover() discards them on the next start.
        try:
            await asyncio.to_thread(_write_all, [(path, part.payload) for path, part in zip(paths, parts, strict=True)])
        except BaseException:
            for path in paths:
                path.unlink(missing_ok=True)
            raise
        committed_at = time.time()
        try:
            rows = self._register(parts, names, stream, updates, committed_at)
        except BaseException:
            for path in paths:
                path.unlink(missing_ok=True)
            raise
        entries = [
            SpoolEntry(seq=seq, key=part.key, path=path, size=len(part.payload), stream=stream, records=part.records,
                       destination=part.destination, batch=batch, committed_at=committed_at)
            for (seq, batch), part, path in zip(rows, parts, paths, strict=True)
        ]
        self._entries.extend(entries)
        for name in sorted({part.destination for part in parts}):
            self._enforce_drop_limit(name)
        self._publish()
        return entries

    def _register(
        self, parts: Sequence[PartPayload], names: Sequence[str], stream: str,
        updates: Sequence[CheckpointUpdate], committed_at: float,
    ) -> list[tuple[int, int]]:
        rows: list[tuple[int, int]] = []
        key = ""
        try:
            with self._state.transaction() as conn:
                batch = int(conn.execute("SELECT coalesce(max(batch), 0) + 1 FROM spool_entries").fetchone()[0])
                numbers: dict[str, int] = {}
                for part, name in zip(parts, names, strict=True):
                    key = part.key
                    number = numbers.get(part.destination, 0)
                    numbers[part.destination] = number + 1
                    cursor = conn.execute(
                        "INSERT INTO spool_entries (batch, destination, part, key, file, size, stream, records,"
                        " committed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (batch, part.destination, number, part.key, name, len(part.payload), stream, part.records,
                         committed_at),
                    )
                    assert cursor.lastrowid is not None
                    rows.append((cursor.lastrowid, batch))
                for update in updates:
                    update.apply(conn)
        except StateError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                # Two undelivered batches with one key would overwrite each other in the sink.
                raise StateError(f"spool: object key {key!r} is already registered; "
                                 "record positions must increase within a stream") from exc
            raise
        return rows

    def remove(self, entry: SpoolEntry) -> None:
        """Forget a delivered part: unregister it first, then delete its file (a crash in
        between leaves an unregistered file, which ``recover`` discards)."""
        self._unregister(entry)
        entry.path.unlink(missing_ok=True)
        self._entries = [e for e in self._entries if e.seq != entry.seq]
        self._publish()

    def rekey(self, entry: SpoolEntry, key: str) -> SpoolEntry:
        """Deliver ``entry`` under ``key`` instead (a dead letter); keeps its place in the order."""
        with self._state.transaction() as conn:
            conn.execute("UPDATE spool_entries SET key = ? WHERE seq = ?", (key, entry.seq))
        moved = SpoolEntry(seq=entry.seq, key=key, path=entry.path, size=entry.size, stream=entry.stream,
                           records=entry.records, destination=entry.destination, batch=entry.batch,
                           committed_at=entry.committed_at)
        self._entries = [moved if e.seq == entry.seq else e for e in self._entries]
        self._publish()
        return moved

    def set_aside(self, entry: SpoolEntry) -> Path:
        """Keep ``entry``'s file in ``<spool>/dead-letter/`` (``dead-letter/<destination>/`` for a
        destination other than the default one) and forget the entry; the new path.

        The file is linked there durably before the entry is unregistered, so a crash in between
        leaves it registered (delivered, or set aside, again), never lost.
        """
        folder = self.directory / SET_ASIDE_DIR
        if entry.destination != DEFAULT_DESTINATION:
            folder = folder / entry.destination
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / set_aside_name(entry.key)
        temp = folder / f".{target.name}{_TEMP_SUFFIX}"
        temp.unlink(missing_ok=True)
        os.link(entry.path, temp)
        os.replace(temp, target)
        temp.unlink(missing_ok=True)  # rename(2) between two links to one inode leaves both names
        fsync_directory(folder)
        self.remove(entry)
        return target

    def begin_attempt(self, entry: SpoolEntry) -> None:
        """A delivery worker starts uploading ``entry``: it is not dropped until ``end_attempt``."""
        self._in_flight.add(entry.seq)

    def end_attempt(self, entry: SpoolEntry) -> None:
        """The upload of ``entry`` is over (acknowledged or not)."""
        self._in_flight.discard(entry.seq)
        self._enforce_drop_limit(entry.destination)

    # -- internals ------------------------------------------------------------------------

    def _limit(self, destination: str) -> PendingLimit:
        return self._limits.get(destination) or _NO_LIMIT

    def _enforce_drop_limit(self, destination: str) -> None:
        """``on_full: drop``: drop the destination's oldest parts (never one in flight, never its
        newest) while its undelivered bytes exceed its bound."""
        limit = self._limit(destination)
        if limit.on_full != "drop":
            return
        bound = limit.max_bytes if limit.max_bytes is not None else self.max_bytes
        mine = self.pending(destination)
        size = sum(e.size for e in mine)
        dropped = False
        for entry in mine[:-1]:
            if size <= bound:
                break
            if entry.seq in self._in_flight:
                continue
            self._unregister(entry)
            entry.path.unlink(missing_ok=True)
            self._entries = [e for e in self._entries if e.seq != entry.seq]
            size -= entry.size
            self._count_dropped(entry, "overflow")
            dropped = True
        if dropped:
            log.warning("spool: destination %r is over its pending bound (%d bytes); dropped its oldest parts",
                        destination, bound)
            self._publish()

    def _count_dropped(self, entry: SpoolEntry, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.destination_dropped.labels(destination=entry.destination, reason=reason).inc(entry.records)
            self._metrics.destination_dropped_parts.labels(destination=entry.destination, reason=reason).inc()

    def _unregister(self, entry: SpoolEntry) -> None:
        with self._state.transaction() as conn:
            conn.execute("DELETE FROM spool_entries WHERE seq = ?", (entry.seq,))

    def _load_entries(self) -> list[SpoolEntry]:
        rows = self._state.conn.execute(
            "SELECT seq, key, file, size, stream, records, destination, batch, committed_at"
            " FROM spool_entries ORDER BY seq"
        ).fetchall()
        return [
            SpoolEntry(seq=seq, key=key, path=self.directory / file, size=size, stream=stream, records=records,
                       destination=destination, batch=batch, committed_at=committed_at)
            for seq, key, file, size, stream, records, destination, batch, committed_at in rows
        ]

    def _publish(self) -> None:
        """Recount, wake every waiter and update the gauges."""
        self._size = sum(e.size for e in self._entries)
        self._full = self._compute_full()
        self._changed.set()
        self._changed = asyncio.Event()
        metrics = self._metrics
        if metrics is None:
            return
        metrics.spool_bytes.set(self._size)
        metrics.spool_batches.set(len({e.batch for e in self._entries}))
        totals: dict[str, _Totals] = {name: _Totals() for name in self._limits}
        for entry in self._entries:
            total = totals.setdefault(entry.destination, _Totals())
            total.parts += 1
            total.size += entry.size
            total.oldest.append(entry.committed_at)
        for name, total in totals.items():
            metrics.destination_pending_parts.labels(destination=name).set(total.parts)
            metrics.destination_pending_bytes.labels(destination=name).set(total.size)
            oldest = min(total.oldest) if total.oldest else None
            metrics.destination_oldest_pending.labels(destination=name).set_function(_age_since(oldest))


_NO_LIMIT = PendingLimit()


def _age_since(moment: float | None) -> Callable[[], float]:
    if moment is None:
        return lambda: 0.0
    return lambda: max(0.0, time.time() - moment)


def _write_all(files: Sequence[tuple[Path, bytes]]) -> None:
    for path, payload in files:
        write_durably(path, payload, path.with_name(f".{path.name}{_TEMP_SUFFIX}"))
