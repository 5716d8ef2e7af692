"""Persisted state of the Events source: what has been exported per event uid, and where to resume.

Tables (in the agent's state database):

- ``events_exported(uid, occurrences, rv, deleted_rv)``: the occurrence count last exported
  (or baselined) per event uid, the object's resourceVersion, and, once the event is known to be
  gone, the resourceVersion at which it went.
- ``events_meta(key, value)``: ``watch_rv`` (the watch may resume strictly after it),
  ``committed_seq`` (sequence number of the last record whose batch was committed) and
  ``initialized`` (the first start's initial list has been baselined).

Exported rows are written only by ``EventCheckpoint.apply``, which the pipeline runs inside the
transaction that durably registers the batch holding the record: the table never runs ahead of
the archive. Pruning is tied to ``watch_rv`` (see ``_PRUNE``) so a crash can never bring back a
pruned event's old occurrences as new ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubestream.state.store import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS events_exported (
    uid TEXT PRIMARY KEY,
    occurrences INTEGER NOT NULL,
    rv INTEGER NOT NULL,
    deleted_rv INTEGER
);
CREATE INDEX IF NOT EXISTS events_exported_deleted ON events_exported (deleted_rv)
    WHERE deleted_rv IS NOT NULL;
CREATE TABLE IF NOT EXISTS events_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_UPSERT = """
INSERT INTO events_exported (uid, occurrences, rv) VALUES (?, ?, ?)
ON CONFLICT(uid) DO UPDATE SET
    occurrences = max(occurrences, excluded.occurrences),
    rv = max(rv, excluded.rv)
"""
# The earliest known deletion RV wins: pruning needs watch_rv >= the *real* deletion RV, and a
# relist RV at which the event was already gone is >= it, so min() is always still safe.
_MARK_DELETED = """
UPDATE events_exported SET deleted_rv = min(coalesce(deleted_rv, ?1), ?1) WHERE uid = ?2
"""
_META_MAX = """
INSERT INTO events_meta (key, value) VALUES (?1, ?2)
ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)
"""
# Safe to forget an event once the committed watch position is at or past its deletion: a
# resumed watch starts strictly after watch_rv and so never replays the event's earlier
# ADDED/MODIFIED (which, without the row, would be counted again); a relist no longer has it.
_PRUNE = """
DELETE FROM events_exported
WHERE deleted_rv IS NOT NULL
  AND deleted_rv <= (SELECT value FROM events_meta WHERE key = 'watch_rv')
"""


# resourceVersion went backwards to ?1 (an etcd restore): RVs of the old history mean nothing in
# the new one. Clamp them so relist pruning and deletion pruning work again, and move the watch
# position back (an overwrite: _META_MAX would keep the old, now unreachable, position forever).
_RESET_ROWS = """
UPDATE events_exported SET rv = min(rv, ?1), deleted_rv = min(deleted_rv, ?1)
WHERE rv > ?1 OR deleted_rv > ?1
"""
_RESET_WATCH_RV = """
INSERT INTO events_meta (key, value) VALUES ('watch_rv', ?1)
ON CONFLICT(key) DO UPDATE SET value = excluded.value
"""


def _reset(conn: sqlite3.Connection, reset_rv: int) -> None:
    conn.execute(_RESET_ROWS, (reset_rv,))
    conn.execute(_RESET_WATCH_RV, (reset_rv,))


@dataclass(slots=True)
class Watermark:
    """Occurrences of one event uid already handed on (or baselined), and its latest RV."""

    occurrences: int
    rv: int


@dataclass(slots=True)
class LoadedState:
    """What the source starts from."""

    watermarks: dict[str, Watermark] = field(default_factory=dict)
    watch_rv: int | None = None
    committed_seq: int = 0
    initialized: bool = False


@dataclass(frozen=True, slots=True)
class EventCheckpoint:
    """The state change of one exported record, applied in its batch's commit transaction.

    ``watch_rv`` is set for records from the watch stream (delivered in RV order, so once this
    record is committed everything up to its RV has been handled) and None for records of a
    list, whose items come in name order. ``deletions`` are deletions observed since the
    previous checkpoint: applied after the earlier records' upserts, in commit order.
    ``reset_rv`` is set on the first record after the server's resourceVersion went backwards
    (applied first, so the earlier records' old positions cannot undo it).
    """

    uid: str
    occurrences: int
    rv: int
    seq: int
    watch_rv: int | None = None
    deletions: tuple[tuple[str, int], ...] = ()
    reset_rv: int | None = None

    def apply(self, conn: sqlite3.Connection) -> None:
        if self.reset_rv is not None:
            _reset(conn, self.reset_rv)
        conn.execute(_UPSERT, (self.uid, self.occurrences, self.rv))
        for uid, deleted_rv in self.deletions:
            conn.execute(_MARK_DELETED, (deleted_rv, uid))
        conn.execute(_META_MAX, ("committed_seq", self.seq))
        if self.watch_rv is not None:
            conn.execute(_META_MAX, ("watch_rv", self.watch_rv))
        conn.execute(_PRUNE)


class EventState:
    """Reads and direct writes of the Events source's tables."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        store.register_schema(SCHEMA)

    def load(self) -> LoadedState:
        """Everything the source needs at start."""
        conn = self._store.conn
        meta = dict(conn.execute("SELECT key, value FROM events_meta").fetchall())
        watermarks = {
            str(uid): Watermark(int(occ), int(rv))
            for uid, occ, rv in conn.execute("SELECT uid, occurrences, rv FROM events_exported")
        }
        watch_rv = meta.get("watch_rv")
        return LoadedState(
            watermarks=watermarks,
            watch_rv=int(watch_rv) if watch_rv is not None else None,
            committed_seq=int(meta.get("committed_seq", 0)),
            initialized=bool(meta.get("initialized", 0)),
        )

    def committed_seq(self) -> int:
        """Sequence number of the last record whose batch has been committed."""
        row = self._store.conn.execute("SELECT value FROM events_meta WHERE key = 'committed_seq'").fetchone()
        return 0 if row is None else int(row[0])

    def watch_rv(self) -> int | None:
        """The committed watch position, if any."""
        row = self._store.conn.execute("SELECT value FROM events_meta WHERE key = 'watch_rv'").fetchone()
        return None if row is None else int(row[0])

    def write(
        self,
        *,
        baselines: Mapping[str, Watermark] | None = None,
        deletions: Mapping[str, int] | None = None,
        watch_rv: int | None = None,
        initialized: bool = False,
        reset_rv: int | None = None,
    ) -> None:
        """One direct transaction, outside any batch.

        Callers guarantee it cannot run ahead of the archive: ``baselines`` only cover
        occurrences that are deliberately never exported, and ``watch_rv``/``deletions``/
        ``reset_rv`` are only written when every record handed on so far has been committed.
        """
        with self._store.transaction() as conn:
            if reset_rv is not None:
                _reset(conn, reset_rv)
            for uid, mark in (baselines or {}).items():
                conn.execute(_UPSERT, (uid, mark.occurrences, mark.rv))
            for uid, deleted_rv in (deletions or {}).items():
                conn.execute(_MARK_DELETED, (deleted_rv, uid))
            if watch_rv is not None:
                conn.execute(_META_MAX, ("watch_rv", watch_rv))
            if initialized:
                conn.execute(_META_MAX, ("initialized", 1))
            conn.execute(_PRUNE)
