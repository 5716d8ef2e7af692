"""Persisted positions of the logs source, in the agent's state database.

Tables:

- ``logs_files(fingerprint, offset, path, dev, ino, pod_uid, container)``: per file identity
  (see fingerprint.py) the committed offset: ``ParsedBlock.resume_offset`` of the file's last
  chunk in a committed batch. ``path``/``dev``/``ino`` are where it was last read, for audits.
- ``logs_meta(key, value)``: ``line_seq``, the number of the last log line in a committed batch;
  ``Record.position`` continues after it, so object names of one stream never repeat while an
  earlier batch with the same name could still be undelivered.

Rows are written only by ``FileCheckpoint.apply``, inside the transaction that registers the batch
holding the chunk (the table never runs ahead of the archive), and removed by ``forget`` once no
file with that fingerprint is left on disk.

Rows keyed by an identity recorded before identities were scoped to their container directory
(fingerprint.py) are re-keyed by ``load``, from the path they were last read at: an upgrade
resumes every file where it stood instead of reading it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kubestream.sources.files.fingerprint import is_unscoped, scoped
from kubestream.sources.logs.paths import scope_of
from kubestream.state.store import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs_files (
    fingerprint TEXT PRIMARY KEY,
    offset INTEGER NOT NULL,
    path TEXT NOT NULL,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    pod_uid TEXT NOT NULL,
    container TEXT NOT NULL,
    last_timestamp BLOB NOT NULL DEFAULT x''
);
CREATE TABLE IF NOT EXISTS logs_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# max(): a file's offsets only grow under one fingerprint (a truncated file gets a new one), and
# a stale update must never move a position back.
_UPSERT_FILE = """
INSERT INTO logs_files (fingerprint, offset, path, dev, ino, pod_uid, container, last_timestamp)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(fingerprint) DO UPDATE SET
    last_timestamp = CASE WHEN excluded.offset >= offset THEN excluded.last_timestamp ELSE last_timestamp END,
    offset = max(offset, excluded.offset), path = excluded.path, dev = excluded.dev, ino = excluded.ino
"""
_MAX_SEQ = """
INSERT INTO logs_meta (key, value) VALUES ('line_seq', ?)
ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)
"""


@dataclass(frozen=True, slots=True)
class FileCheckpoint:
    """``model.CheckpointUpdate`` of one chunk: the file's offset and the stream's line number."""

    fingerprint: str
    offset: int
    path: str
    dev: int
    ino: int
    pod_uid: str
    container: str
    last_line: int
    last_timestamp: bytes = b""
    """The parser's timestamp at ``offset`` (what a line without one borrows after a restart)."""

    def apply(self, conn: sqlite3.Connection) -> None:
        """Runs in the batch registration transaction."""
        conn.execute(_UPSERT_FILE, (self.fingerprint, self.offset, self.path, self.dev, self.ino,
                                    self.pod_uid, self.container, self.last_timestamp))
        conn.execute(_MAX_SEQ, (self.last_line,))


@dataclass(frozen=True, slots=True)
class SavedState:
    """What the source starts from."""

    offsets: dict[str, int]
    """fingerprint → committed offset."""
    timestamps: dict[str, bytes]
    """fingerprint → the parser's last timestamp at that offset."""
    line_seq: int


_RESCOPE = """
INSERT INTO logs_files (fingerprint, offset, path, dev, ino, pod_uid, container, last_timestamp)
SELECT ?, offset, path, dev, ino, pod_uid, container, last_timestamp FROM logs_files WHERE fingerprint = ?
ON CONFLICT(fingerprint) DO NOTHING
"""


def load(state: StateStore) -> SavedState:
    """Create the tables if needed and read the committed positions."""
    state.register_schema(SCHEMA)
    _scope_old_rows(state)
    conn = state.conn
    rows = conn.execute("SELECT fingerprint, offset, last_timestamp FROM logs_files").fetchall()
    offsets = {str(fp): int(off) for fp, off, _ in rows}
    timestamps = {str(fp): bytes(ts) for fp, _, ts in rows if ts}
    row = conn.execute("SELECT value FROM logs_meta WHERE key = 'line_seq'").fetchone()
    return SavedState(offsets=offsets, timestamps=timestamps, line_seq=0 if row is None else int(row[0]))


def _scope_old_rows(state: StateStore) -> None:
    rows = [(fp, path) for fp, path in state.conn.execute(
        "SELECT fingerprint, path FROM logs_files WHERE instr(fingerprint, '@') = 0") if is_unscoped(str(fp))]
    if not rows:
        return
    with state.transaction() as conn:
        for fingerprint, path in rows:
            conn.execute(_RESCOPE, (scoped(str(fingerprint), scope_of(Path(str(path)))), fingerprint))
            conn.execute("DELETE FROM logs_files WHERE fingerprint = ?", (fingerprint,))


def committed_offset(state: StateStore, fingerprint: str) -> int | None:
    """The committed offset of one file identity, or None if nothing of it was committed."""
    row = state.conn.execute("SELECT offset FROM logs_files WHERE fingerprint = ?", (fingerprint,)).fetchone()
    return None if row is None else int(row[0])


def forget(state: StateStore, fingerprints: Iterable[str]) -> int:
    """Drop the rows of files no longer on disk; returns how many went."""
    gone = [(fp,) for fp in fingerprints]
    if not gone:
        return 0
    with state.transaction() as conn:
        conn.executemany("DELETE FROM logs_files WHERE fingerprint = ?", gone)
    return len(gone)


def known_fingerprints(state: StateStore) -> set[str]:
    """Every file identity with a committed offset."""
    return {str(fp) for (fp,) in state.conn.execute("SELECT fingerprint FROM logs_files")}
