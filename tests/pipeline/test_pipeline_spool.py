"""The write-ahead spool: atomic commit, recovery after a crash, redelivery under the same key."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubestream.config.settings import FileSinkSettings, SinkSettings
from kubestream.errors import StateError
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.spool import Spool
from kubestream.sinks.file import FileSink
from kubestream.state.store import StateStore

SCHEMA = "CREATE TABLE IF NOT EXISTS positions (stream TEXT PRIMARY KEY, last INTEGER NOT NULL)"


@dataclass(frozen=True)
class SetLast:
    """A toy source checkpoint."""

    last: int
    fail: bool = False

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO positions VALUES ('toy', ?) ON CONFLICT(stream) DO UPDATE SET last = excluded.last",
                     (self.last,))
        if self.fail:
            raise RuntimeError("source bug while applying its checkpoint")


def last_position(state: StateStore) -> int | None:
    row = state.conn.execute("SELECT last FROM positions WHERE stream = 'toy'").fetchone()
    return None if row is None else int(row[0])


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.db")
    s.register_schema(SCHEMA)
    yield s
    s.close()


def visible_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_commit_writes_the_file_registers_it_and_advances_positions_together(
    tmp_path: Path, state: StateStore
) -> None:
    metrics = Metrics()
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000, metrics=metrics)
    first = await spool.commit("k/a", b"aaaa", [SetLast(1), SetLast(2)], stream="toy", records=2)
    second = await spool.commit("k/b", b"bbbbbb", [SetLast(3)], stream="toy", records=1)
    assert [e.key for e in spool.pending()] == ["k/a", "k/b"]
    assert first.path.read_bytes() == b"aaaa" and second.path.read_bytes() == b"bbbbbb"
    assert last_position(state) == 3
    assert spool.size_bytes == 10
    assert metrics.registry.get_sample_value("kubestream_spool_bytes") == 10
    assert metrics.registry.get_sample_value("kubestream_spool_batches") == 2


async def test_failed_commit_leaves_no_file_no_entry_and_no_position(tmp_path: Path, state: StateStore) -> None:
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000)
    await spool.commit("k/a", b"a", [SetLast(1)])
    with pytest.raises(RuntimeError):
        await spool.commit("k/b", b"b", [SetLast(2), SetLast(3, fail=True)])
    assert [e.key for e in spool.pending()] == ["k/a"]
    assert last_position(state) == 1
    assert len(visible_files(tmp_path / "spool")) == 1


async def test_a_key_registered_twice_is_refused(tmp_path: Path, state: StateStore) -> None:
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000)
    await spool.commit("same", b"a", [SetLast(1)])
    with pytest.raises(StateError, match="already registered"):
        await spool.commit("same", b"b", [SetLast(2)])
    assert last_position(state) == 1
    assert len(visible_files(tmp_path / "spool")) == 1


async def test_recover_discards_unregistered_and_temporary_files_and_keeps_registered(
    tmp_path: Path, state: StateStore
) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, state, max_bytes=10_000)
    kept = await spool.commit("events/x-1-5.ndjson", b"registered", [SetLast(5)])
    # What a crash leaves behind: a renamed but unregistered batch, and a half-written temp file.
    (directory / "0123.batch").write_bytes(b"never registered")
    (directory / ".0456.batch.tmp").write_bytes(b"half")

    restarted = Spool(directory, state, max_bytes=10_000)
    restarted.recover()
    assert visible_files(directory) == [kept.path.name]
    assert [(e.key, e.path.read_bytes()) for e in restarted.pending()] == [("events/x-1-5.ndjson", b"registered")]
    assert last_position(state) == 5


async def test_registered_entry_without_its_file_is_dropped_and_counted(tmp_path: Path, state: StateStore) -> None:
    metrics = Metrics()
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000, metrics=metrics)
    entry = await spool.commit("k", b"x", [], stream="toy", records=3)
    entry.path.unlink()
    spool.recover()
    assert spool.pending() == []
    assert metrics.registry.get_sample_value(
        "kubestream_records_dropped_total", {"source": "toy", "reason": "spool_file_missing"}) == 3


async def test_remove_frees_room_and_wakes_waiters(tmp_path: Path, state: StateStore) -> None:
    spool = Spool(tmp_path / "spool", state, max_bytes=4)
    entry = await spool.commit("k", b"12345", [])
    assert spool.is_full
    assert not await spool.wait_empty(0.05)
    spool.remove(entry)
    await spool.wait_for_room()
    assert await spool.wait_empty(0.05)
    assert visible_files(tmp_path / "spool") == []
    assert state.conn.execute("SELECT count(*) FROM spool_entries").fetchone()[0] == 0


async def test_crash_after_upload_before_removal_redelivers_under_the_same_key(
    tmp_path: Path, state: StateStore
) -> None:
    out = tmp_path / "out"
    sink = FileSink(FileSinkSettings(dir=out))
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000)
    entry = await spool.commit("events/dt=2024-05-01/hour=10/u-1-3.ndjson", b"batch bytes", [SetLast(3)])
    await sink.put(entry.key, entry.path, entry.size)  # uploaded ... then the process dies

    restarted = Spool(tmp_path / "spool", state, max_bytes=10_000)
    restarted.recover()
    assert [e.key for e in restarted.pending()] == [entry.key]
    delivery = Delivery(restarted, sink, settings=SinkSettings())
    assert await delivery.drain(5.0)
    objects = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert objects == [entry.key]
    assert (out / entry.key).read_bytes() == b"batch bytes"
    assert visible_files(tmp_path / "spool") == []
