"""Batching: closes on max records, max bytes, and max age counted from the FIRST record;
orders by event time; commits checkpoints with the batch; flush + drain on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubestream.config.settings import (
    BatchSettings,
    EncodingSettings,
    FileSinkSettings,
    Settings,
    SinkSettings,
)
from kubestream.model import Record
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.spool import Spool
from kubestream.sinks.file import FileSink
from kubestream.state.store import StateStore

LOG_SCHEMA = "CREATE TABLE IF NOT EXISTS applied (seq INTEGER PRIMARY KEY AUTOINCREMENT, position INTEGER)"


@dataclass(frozen=True)
class LogPosition:
    """A toy checkpoint that appends its position, so order and atomicity are observable."""

    position: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO applied (position) VALUES (?)", (self.position,))


def applied(state: StateStore) -> list[int]:
    return [r[0] for r in state.conn.execute("SELECT position FROM applied ORDER BY seq")]


def settings(tmp_path: Path, **batch: float) -> Settings:
    return Settings(
        batch=BatchSettings(**batch),
        encoding=EncodingSettings(format="ndjson", compression="gzip"),
        sink=SinkSettings(prefix="p", stream_uid="u", file=FileSinkSettings(dir=tmp_path / "out")),
    )


def record(position: int, ts: str | None = None, size: int = 100) -> Record:
    ts = ts or f"2024-05-01T10:00:{position % 60:02d}Z"
    return Record(data={"position": position, "timestamp": ts}, sort_key=ts, position=position,
                  checkpoint=LogPosition(position), size_hint=size)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.db")
    s.register_schema(LOG_SCHEMA)
    yield s
    s.close()


@pytest.fixture
def spool(tmp_path: Path, state: StateStore) -> Spool:
    return Spool(tmp_path / "spool", state, max_bytes=1 << 20)


@contextlib.asynccontextmanager
async def running(pipeline: Pipeline) -> AsyncIterator[None]:
    task = asyncio.create_task(pipeline.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_closes_at_max_records(tmp_path: Path, state: StateStore, spool: Spool) -> None:
    pipeline = Pipeline("events", settings(tmp_path, max_records=3), state, spool)
    for p in range(1, 8):
        await pipeline.put(record(p))
    assert [e.records for e in spool.pending()] == [3, 3]
    assert [e.key.rsplit("/", 1)[1] for e in spool.pending()] == ["u-1-3.ndjson.gz", "u-4-6.ndjson.gz"]
    assert pipeline.open_records == 1
    assert applied(state) == [1, 2, 3, 4, 5, 6]  # record 7's position is not committed yet


async def test_closes_at_max_bytes(tmp_path: Path, state: StateStore, spool: Spool) -> None:
    pipeline = Pipeline("events", settings(tmp_path, max_bytes=1024), state, spool)
    for p in range(1, 6):
        await pipeline.put(record(p, size=400))
    assert [e.records for e in spool.pending()] == [3]  # 1200 estimated bytes >= 1024


async def test_max_age_counts_from_the_first_record_not_the_last(
    tmp_path: Path, state: StateStore, spool: Spool
) -> None:
    pipeline = Pipeline("events", settings(tmp_path, max_age_s=0.3), state, spool)
    async with running(pipeline):
        started = time.monotonic()
        p = 0
        # A steady trickle every 50 ms: an idle timer would never fire.
        while not spool.pending() and time.monotonic() - started < 2.0:
            p += 1
            await pipeline.put(record(p))
            await asyncio.sleep(0.05)
        closed_after = time.monotonic() - started
    assert spool.pending(), "the batch never closed while records kept arriving"
    assert 0.25 <= closed_after < 0.8
    assert spool.pending()[0].records < p + 1


async def test_idle_open_batch_closes_after_max_age(tmp_path: Path, state: StateStore, spool: Spool) -> None:
    pipeline = Pipeline("events", settings(tmp_path, max_age_s=0.1), state, spool)
    async with running(pipeline):
        await pipeline.put(record(1))
        assert await _eventually(lambda: len(spool.pending()) == 1, 2.0)
        await pipeline.put(record(2))  # a second batch gets its own timer
        assert await _eventually(lambda: len(spool.pending()) == 2, 2.0)


async def test_records_are_ordered_by_event_time_and_named_by_position_range(
    tmp_path: Path, state: StateStore, spool: Spool
) -> None:
    s = settings(tmp_path, max_records=4)
    pipeline = Pipeline("events", s, state, spool)
    times = ["2024-05-01T10:00:03Z", "2024-05-01T09:59:59Z", "2024-05-01T10:00:01Z", "2024-05-01T09:59:59Z"]
    for position, ts in zip([20, 21, 22, 23], times, strict=True):
        await pipeline.put(record(position, ts))
    (entry,) = spool.pending()
    decoded = make_encoder(s.encoding).decode(entry.path.read_bytes())
    assert [r["position"] for r in decoded] == [21, 23, 22, 20]  # stable for equal times
    assert entry.key == "p/events/dt=2024-05-01/hour=09/u-20-23.ndjson.gz"
    assert applied(state) == [20, 21, 22, 23]  # checkpoints in arrival order


async def test_flush_and_drain_deliver_the_open_batch(tmp_path: Path, state: StateStore, spool: Spool) -> None:
    s = settings(tmp_path, max_records=100, max_age_s=60)
    metrics = Metrics()
    pipeline = Pipeline("events", s, state, spool, metrics=metrics)
    delivery = Delivery(spool, FileSink(s.sink.file), settings=s.sink, metrics=metrics)
    for p in range(1, 4):
        await pipeline.put(record(p))
    assert spool.pending() == []
    await pipeline.flush()
    assert await delivery.drain(5.0)
    (obj,) = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert [r["position"] for r in make_encoder(s.encoding).decode(obj.read_bytes())] == [1, 2, 3]
    assert metrics.registry.get_sample_value("kubestream_records_out_total", {"source": "events"}) == 3
    assert metrics.registry.get_sample_value("kubestream_batches_total", {"sink": "file", "stream": "events"}) == 1


async def test_flush_of_an_empty_batch_commits_nothing(tmp_path: Path, state: StateStore, spool: Spool) -> None:
    pipeline = Pipeline("events", settings(tmp_path), state, spool)
    await pipeline.flush()
    assert spool.pending() == []


async def _eventually(condition: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()
