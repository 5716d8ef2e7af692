"""Poison batches: an encoder or a sink that rejects one batch does not stop the stream.

The rejected batch becomes a dead letter (re-encoded as NDJSON, or delivered under the
dead-letter folder, or kept in the spool's ``dead-letter/`` directory), counted and logged once;
the batches behind it are delivered, and every position is committed exactly once. Real spool,
state store, encoders and file sink throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
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
from kubestream.pipeline.encode import Codec, make_encoder
from kubestream.pipeline.spool import Spool, set_aside_name
from kubestream.sinks.file import FileSink
from kubestream.state.store import StateStore

SCHEMA = "CREATE TABLE IF NOT EXISTS applied (seq INTEGER PRIMARY KEY AUTOINCREMENT, position INTEGER)"
PREFIX = "arch"


@dataclass(frozen=True)
class Position:
    """A toy checkpoint that appends its position: a position applied twice shows."""

    position: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO applied (position) VALUES (?)", (self.position,))


class RefusingEncoder:
    """The real NDJSON+gzip codec, except that it raises on any batch holding a ``poison`` record
    (what pyarrow did with the mixed-annotation log batch)."""

    def __init__(self, inner: Codec) -> None:
        self._inner = inner

    @property
    def extension(self) -> str:
        return "parquet"

    def encode(self, records: list[Record]) -> bytes:
        if any(r.data.get("poison") for r in records):
            raise NotImplementedError("Writing DictionaryArray with null encoded in dictionary type")
        return self._inner.encode(records)


class AlwaysRefusing:
    """An encoder that refuses everything (the safe encoder of the last-resort test)."""

    extension = "ndjson.gz"

    def encode(self, records: list[Record]) -> bytes:
        raise ValueError("cannot encode")


def make_settings(tmp_path: Path, **sink: Any) -> Settings:
    return Settings(
        batch=BatchSettings(max_records=3, max_age_s=60),
        encoding=EncodingSettings(format="ndjson", compression="gzip"),
        sink=SinkSettings(prefix=PREFIX, stream_uid="u", file=FileSinkSettings(dir=tmp_path / "out"),
                          retry_initial_s=0.01, retry_max_s=0.02, **sink),
    )


def record(position: int, *, poison: bool = False) -> Record:
    ts = f"2024-05-01T10:00:{position:02d}Z"
    return Record(data={"position": position, "timestamp": ts, "poison": poison}, sort_key=ts,
                  position=position, checkpoint=Position(position))


def applied(state: StateStore) -> list[int]:
    return [r[0] for r in state.conn.execute("SELECT position FROM applied ORDER BY seq")]


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def archive(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Key → decoded records of every finished object under ``out``."""
    found = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            data = path.read_bytes()
            text = gzip.decompress(data) if data.startswith(b"\x1f\x8b") else data
            found[path.relative_to(out).as_posix()] = [orjson.loads(line) for line in text.splitlines()]
    return found


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.db")
    s.register_schema(SCHEMA)
    yield s
    s.close()


@contextlib.asynccontextmanager
async def delivering(delivery: Delivery) -> AsyncIterator[None]:
    task = asyncio.create_task(delivery.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_encoder_rejecting_one_batch_dead_letters_it_and_the_stream_goes_on(
    tmp_path: Path, state: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path)
    metrics = Metrics()
    spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
    pipeline = Pipeline("logs", settings, state, spool, metrics=metrics,
                        encoder=RefusingEncoder(make_encoder(settings.encoding)))
    delivery = Delivery(spool, FileSink(settings.sink.file), settings=settings.sink, metrics=metrics)
    caplog.set_level(logging.ERROR, logger="kubestream.pipeline.batcher")
    for p in range(1, 10):
        await pipeline.put(record(p, poison=p == 5))  # batches 1-3, 4-6 (poison), 7-9
    assert await delivery.drain(10.0)
    got = archive(tmp_path / "out")
    assert sorted(got) == [
        "arch/dead-letter/logs/dt=2024-05-01/hour=10/u-4-6.ndjson.gz",
        "arch/logs/dt=2024-05-01/hour=10/u-1-3.parquet",
        "arch/logs/dt=2024-05-01/hour=10/u-7-9.parquet",
    ]
    assert [r["position"] for r in got["arch/dead-letter/logs/dt=2024-05-01/hour=10/u-4-6.ndjson.gz"]] == [4, 5, 6]
    assert applied(state) == list(range(1, 10))  # every position committed, once
    assert sample(metrics, "kubestream_dead_letters_total", stream="logs", reason="encode") == 1
    assert sample(metrics, "kubestream_records_out_total", source="logs") == 9
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "NotImplementedError" in lines[0] and "u-4-6.ndjson.gz" in lines[0]
    assert not any(r.exc_info for r in caplog.records), "no traceback for a poison batch"


async def test_when_the_safe_encoder_fails_too_the_records_are_kept_as_plain_lines(
    tmp_path: Path, state: StateStore
) -> None:
    settings = make_settings(tmp_path)
    spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
    pipeline = Pipeline("logs", settings, state, spool, encoder=AlwaysRefusing(), fallback_encoder=AlwaysRefusing())
    for p in (1, 2, 3):
        await pipeline.put(record(p))
    (entry,) = spool.pending()
    assert entry.key == "arch/dead-letter/logs/dt=2024-05-01/hour=10/u-1-3.ndjson"
    lines = [orjson.loads(line) for line in entry.path.read_bytes().splitlines()]
    assert [(line["position"], line["data"]["position"]) for line in lines] == [(1, 1), (2, 2), (3, 3)]
    assert applied(state) == [1, 2, 3]


async def test_a_replayed_poison_batch_gets_the_same_dead_letter_name(tmp_path: Path) -> None:
    """A crash before the commit: the records are read again into the same failure and the same
    key, so the dead letter overwrites itself."""
    settings = make_settings(tmp_path)
    keys = []
    for attempt in range(2):
        state = StateStore(tmp_path / f"state{attempt}.db")
        try:
            state.register_schema(SCHEMA)
            spool = Spool(tmp_path / f"spool{attempt}", state, max_bytes=1 << 20)
            pipeline = Pipeline("logs", settings, state, spool,
                                encoder=RefusingEncoder(make_encoder(settings.encoding)))
            for p in (4, 5, 6):
                await pipeline.put(record(p, poison=True))
            keys += [e.key for e in spool.pending()]
        finally:
            state.close()
    assert keys == ["arch/dead-letter/logs/dt=2024-05-01/hour=10/u-4-6.ndjson.gz"] * 2


async def test_a_sink_refusing_one_object_sets_it_aside_and_delivers_the_rest(
    tmp_path: Path, state: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The file sink cannot store a name component over NAME_MAX (ENAMETOOLONG): the dead-letter
    key cannot be stored either, so the file is kept in the spool's dead-letter directory."""
    settings = make_settings(tmp_path)
    metrics = Metrics()
    spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
    too_long = f"arch/logs/dt=2024-05-01/hour=10/{'x' * 300}-4-6.ndjson.gz"
    for key, payload, position in [("arch/logs/a-1-3.ndjson.gz", b"first", 3), (too_long, b"refused", 6),
                                   ("arch/logs/a-7-9.ndjson.gz", b"third", 9)]:
        await spool.commit(key, payload, [Position(position)], stream="logs", records=3)
    delivery = Delivery(spool, FileSink(settings.sink.file), settings=settings.sink, metrics=metrics)
    caplog.set_level(logging.ERROR, logger="kubestream.pipeline.delivery")
    assert await delivery.drain(10.0)
    out = tmp_path / "out"
    assert (out / "arch/logs/a-1-3.ndjson.gz").read_bytes() == b"first"
    assert (out / "arch/logs/a-7-9.ndjson.gz").read_bytes() == b"third"
    (kept,) = (tmp_path / "spool" / "dead-letter").iterdir()
    assert kept.read_bytes() == b"refused" and kept.name.endswith("-4-6.ndjson.gz")
    assert spool.pending() == [] and applied(state) == [3, 6, 9]
    assert sample(metrics, "kubestream_dead_letters_total", stream="logs", reason="sink") == 1
    assert sample(metrics, "kubestream_sink_reachable", sink="file") == 1
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "dead letter" in messages[0] and str(kept) in messages[1]


async def test_a_kept_dead_letter_survives_a_restart_between_link_and_unregister(
    tmp_path: Path, state: StateStore
) -> None:
    """Setting aside links the file first: if the entry is still registered after a crash, it is
    set aside again (the same name), and the batches behind it go on."""
    settings = make_settings(tmp_path)
    spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
    key = f"arch/dead-letter/logs/{'y' * 300}-1-1.ndjson"
    entry = await spool.commit(key, b"refused", [Position(1)], stream="logs", records=1)
    folder = tmp_path / "spool" / "dead-letter"
    folder.mkdir()
    (folder / set_aside_name(key)).write_bytes(b"refused")  # the link of the crashed attempt
    spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
    spool.recover()
    assert [e.seq for e in spool.pending()] == [entry.seq]
    delivery = Delivery(spool, FileSink(settings.sink.file), settings=settings.sink)
    async with delivering(delivery):
        assert await spool.wait_empty(10.0)
    assert [p.read_bytes() for p in folder.iterdir()] == [b"refused"]
