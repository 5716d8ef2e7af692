"""The SQLite state store: durability settings, transactions, schema registration, key/value."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestream.errors import StateError
from kubestream.state.store import StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "deep" / "dir" / "state.db")
    yield s
    s.close()


def test_creates_parent_directories_and_uses_wal_with_full_sync(store: StateStore) -> None:
    assert store.path.exists()
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_transaction_commits_and_is_visible_to_a_second_connection(store: StateStore) -> None:
    store.register_schema("CREATE TABLE IF NOT EXISTS t (v INTEGER);")
    with store.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    other = sqlite3.connect(store.path)
    try:
        assert other.execute("SELECT v FROM t").fetchall() == [(1,)]
    finally:
        other.close()


def test_exception_inside_transaction_rolls_everything_back(store: StateStore) -> None:
    store.register_schema("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        store.set_kv("k", "v")  # joins the open transaction
        raise RuntimeError("boom")
    assert store.conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    assert store.get_kv("k") is None
    assert not store.conn.in_transaction


def test_sqlite_errors_become_state_errors(store: StateStore) -> None:
    with pytest.raises(StateError), store.transaction() as conn:
        conn.execute("INSERT INTO no_such_table VALUES (1)")


def test_nested_transaction_is_refused(store: StateStore) -> None:
    with store.transaction(), pytest.raises(StateError, match="nested"), store.transaction():
        pass


def test_register_schema_is_idempotent_and_accepts_several_statements(store: StateStore) -> None:
    ddl = """
    CREATE TABLE IF NOT EXISTS a (x TEXT DEFAULT 'a;b');
    CREATE INDEX IF NOT EXISTS a_x ON a (x);
    """
    store.register_schema(ddl)
    store.register_schema(ddl)
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    assert {"a", "a_x", "kv"} <= names


def test_kv_round_trip_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = StateStore(path)
    assert first.get_kv("watermark") is None
    first.set_kv("watermark", "41")
    first.set_kv("watermark", "42")
    first.close()
    second = StateStore(path)
    try:
        assert second.get_kv("watermark") == "42"
    finally:
        second.close()


def test_closed_store_raises_state_error(tmp_path: Path) -> None:
    s = StateStore(tmp_path / "state.db")
    s.close()
    s.close()
    with pytest.raises(StateError):
        s.get_kv("x")


def test_unopenable_path_raises_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError):
        StateStore(blocker / "state.db")
