"""The agent's embedded state: one SQLite database (WAL journal, ``synchronous=FULL``).

Every durable decision of the agent goes through here: source positions, the spool's registry
of encoded batches, small key/value facts. The delivery design (docs/design-delivery.md) rests
on one property: a batch's spool registration and the source positions it covers are committed
in *one* transaction, so ``transaction()`` is the only way to write more than one row.

The connection is used from the event loop's thread only; SQLite calls are short (an fsync per
commit) and keeping them on one thread avoids interleaving readers with an open transaction.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubestream.errors import StateError

log = logging.getLogger(__name__)

_KV_DDL = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class StateStore:
    """The SQLite state database at ``path`` (parent directories are created)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: the sqlite3 module must not open implicit transactions;
            # transaction() issues BEGIN IMMEDIATE itself so the write lock is taken up front.
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is durable once it returns, which the write-ahead spool relies on.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute(_KV_DDL)
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open the state database {path}: {exc}") from exc
        self._closed = False

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, for reads. Writes belong in ``transaction()``."""
        if self._closed:
            raise StateError(f"the state database {self.path} is closed")
        return self._conn

    def register_schema(self, ddl: str) -> None:
        """Run idempotent DDL (``CREATE TABLE IF NOT EXISTS ...``) for a component's tables."""
        with self.transaction() as conn:
            for statement in _split_statements(ddl):
                conn.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; any exception rolls back and propagates.

        SQLite errors are raised as ``StateError``; other exceptions (for example from a
        checkpoint update) propagate unchanged after the rollback.
        """
        conn = self.conn
        if conn.in_transaction:
            raise StateError("nested state transaction: pass the open connection down instead")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StateError(f"cannot start a state transaction: {exc}") from exc
        try:
            yield conn
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                raise StateError(f"state transaction failed: {exc}") from exc
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise StateError(f"cannot commit the state transaction: {exc}") from exc

    def get_kv(self, key: str) -> str | None:
        """The value stored under ``key``, or None."""
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_kv(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (inside the open transaction, if any)."""
        sql = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        if self.conn.in_transaction:
            self.conn.execute(sql, (key, value))
            return
        with self.transaction() as conn:
            conn.execute(sql, (key, value))

    def close(self) -> None:
        """Close the database (idempotent)."""
        if not self._closed:
            self._closed = True
            self._conn.close()


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        # The original error is the one worth reporting; SQLite has already rolled back
        # on most errors that make ROLLBACK itself fail.
        log.exception("state rollback failed")


def _split_statements(ddl: str) -> list[str]:
    """Split a DDL script into statements (``execute`` runs one at a time, and
    ``executescript`` would COMMIT our transaction)."""
    statements: list[str] = []
    current = ""
    for part in ddl.split(";"):
        current += part
        if sqlite3.complete_statement(current + ";"):
            if current.strip():
                statements.append(current.strip())
            current = ""
        else:
            current += ";"
    if current.strip():
        statements.append(current.strip())
    return statements
