"""One spool, a cursor per destination: parts registered with their positions in one
transaction, delivered and removed per destination, split deterministically, bounded per
destination; and an existing single-destination spool database upgraded in place."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubestream.config.settings import FileSinkSettings, Settings, SinkSettings
from kubestream.model import Record
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.batcher import Pipeline, Route
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.spool import PartPayload, PendingLimit, Spool
from kubestream.sinks.file import FileSink
from kubestream.state.store import StateStore

REPO = Path(__file__).resolve().parents[2]
SCHEMA = "CREATE TABLE IF NOT EXISTS positions (stream TEXT PRIMARY KEY, last INTEGER NOT NULL)"


@dataclass(frozen=True)
class SetLast:
    last: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO positions VALUES ('toy', ?) ON CONFLICT(stream) DO UPDATE SET last = excluded.last",
                     (self.last,))


def last_position(state: StateStore) -> int | None:
    row = state.conn.execute("SELECT last FROM positions WHERE stream = 'toy'").fetchone()
    return None if row is None else int(row[0])


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.db")
    s.register_schema(SCHEMA)
    yield s
    s.close()


def _sink(root: Path) -> FileSink:
    return FileSink(FileSinkSettings(dir=root))


async def test_parts_of_all_destinations_and_positions_commit_together(tmp_path: Path, state: StateStore) -> None:
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000_000)
    parts = [PartPayload("a", "k/1", b"one", 1), PartPayload("b", "k/1", b"uno", 1), PartPayload("b", "k/2", b"dos", 1)]
    entries = await spool.commit_parts(parts, [SetLast(5)], stream="toy")
    assert [e.destination for e in entries] == ["a", "b", "b"]
    assert len({e.batch for e in entries}) == 1
    assert last_position(state) == 5
    assert [e.key for e in spool.pending("b")] == ["k/1", "k/2"]
    # A batch no destination takes still advances its positions.
    assert await spool.commit_parts([], [SetLast(6)], stream="toy") == []
    assert last_position(state) == 6


async def test_each_destination_delivers_its_own_parts_and_a_dead_one_holds_only_itself(
        tmp_path: Path, state: StateStore) -> None:
    metrics = Metrics()
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000_000, metrics=metrics)
    for n in range(3):
        await spool.commit_parts([PartPayload("live", f"k/{n}", b"x" * 10, 1),
                                  PartPayload("dead", f"k/{n}", b"y" * 10, 1)], [SetLast(n)], stream="toy")
    live = Delivery(spool, _sink(tmp_path / "live"), settings=SinkSettings(), metrics=metrics, destination="live")
    assert await live.drain(5.0)
    assert spool.pending("live") == [] and len(spool.pending("dead")) == 3
    assert sorted(p.name for p in (tmp_path / "live" / "k").iterdir()) == ["0", "1", "2"]
    dead = Delivery(spool, _sink(tmp_path / "dead"), settings=SinkSettings(), metrics=metrics, destination="dead")
    assert await dead.drain(5.0)
    assert spool.pending() == []
    assert [p.name for p in (tmp_path / "spool").iterdir() if p.is_file()] == []
    assert metrics.destination_delivered_parts.labels(destination="live")._value.get() == 3


async def test_on_full_drop_drops_the_oldest_parts_of_that_destination_only(tmp_path: Path,
                                                                         state: StateStore) -> None:
    metrics = Metrics()
    limits = {"drop": PendingLimit(max_bytes=2048, on_full="drop"), "keep": PendingLimit()}
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000_000, metrics=metrics, limits=limits)
    for n in range(10):
        await spool.commit_parts([PartPayload("drop", f"k/{n}", b"d" * 1000, 2),
                                  PartPayload("keep", f"k/{n}", b"k" * 1000, 2)], [SetLast(n)], stream="toy")
    assert [e.key for e in spool.pending("drop")] == ["k/8", "k/9"]
    assert len(spool.pending("keep")) == 10
    assert metrics.destination_dropped.labels(destination="drop", reason="overflow")._value.get() == 16
    assert not spool.is_full


async def test_block_destination_bound_pauses_the_sources(tmp_path: Path, state: StateStore) -> None:
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000_000,
                  limits={"slow": PendingLimit(max_bytes=2048), "other": PendingLimit(on_full="drop")})
    await spool.commit_parts([PartPayload("slow", "k/1", b"s" * 2048, 1)], [], stream="toy")
    assert spool.is_full


async def test_a_destination_removed_from_the_configuration_loses_its_parts_at_start(
        tmp_path: Path, state: StateStore) -> None:
    metrics = Metrics()
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000_000)
    await spool.commit_parts([PartPayload("gone", "k/1", b"g", 3), PartPayload("stays", "k/1", b"s", 3)], [],
                             stream="toy")
    again = Spool(tmp_path / "spool", state, max_bytes=10_000_000, metrics=metrics)
    again.recover(destinations=["stays"])
    assert [e.destination for e in again.pending()] == ["stays"]
    assert metrics.destination_dropped.labels(destination="gone", reason="removed")._value.get() == 3
    assert len([p for p in (tmp_path / "spool").iterdir() if p.is_file()]) == 1


def _records(n: int, namespace: str = "a") -> list[Record]:
    return [Record(data={"kind": "event", "n": i, "kubernetes": {"namespace": namespace if i % 2 else "b"}},
                   sort_key=f"2026-01-01T00:00:{i:02d}Z", position=i + 1, checkpoint=SetLast(i + 1))
            for i in range(n)]


async def test_a_batch_is_filtered_and_split_per_destination_with_deterministic_keys(
        tmp_path: Path, state: StateStore) -> None:
    settings = Settings(sink=SinkSettings(stream_uid="u"))
    spool = Spool(tmp_path / "spool", state, max_bytes=10_000_000)
    ndjson = make_encoder(settings.encoding.model_copy(update={"compression": "none"}))
    routes = [Route("all", "", "u", ndjson, ndjson),
              Route("odd", "odd", "u", ndjson, ndjson, accepts=lambda r: r.data["kubernetes"]["namespace"] == "a",
                    max_records=2),
              Route("none", "", "u", ndjson, ndjson, accepts=lambda r: False)]
    pipeline = Pipeline("events", settings, state, spool, routes=routes)
    for record in _records(6):
        await pipeline.put(record)
    await pipeline.flush()
    keys = {d: [e.key for e in spool.pending(d)] for d in ("all", "odd", "none")}
    assert keys["all"] == ["events/dt=2026-01-01/hour=00/u-1-6.ndjson"]
    assert keys["odd"] == ["odd/events/dt=2026-01-01/hour=00/u-1-6.p001.ndjson",
                           "odd/events/dt=2026-01-01/hour=00/u-1-6.p002.ndjson"]
    assert keys["none"] == []
    assert [e.records for e in spool.pending("odd")] == [2, 1]
    assert last_position(state) == 6


OLD_SPOOL_WRITER = """
import asyncio, importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("old_spool", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["old_spool"] = module
spec.loader.exec_module(module)
from kubestream.state.store import StateStore
state = StateStore(Path(sys.argv[2]) / "state.db")
spool = module.Spool(Path(sys.argv[2]) / "spool", state, max_bytes=10_000_000)
async def main():
    for n in range(3):
        await spool.commit(f"events/k-{n}.ndjson", f"payload {n}\\n".encode(), [], stream="events", records=1)
asyncio.run(main())
state.close()
"""


def test_a_spool_database_of_the_single_destination_layout_is_upgraded_in_place(tmp_path: Path) -> None:
    old = subprocess.run(["git", "show", "HEAD:src/kubestream/pipeline/spool.py"], cwd=REPO, capture_output=True,
                         text=True, check=False)
    if old.returncode != 0 or "destination TEXT" in old.stdout:
        pytest.skip("the committed spool is not the single-destination layout")
    old_module = tmp_path / "old_spool.py"
    old_module.write_text(old.stdout)
    subprocess.run([sys.executable, "-c", OLD_SPOOL_WRITER, str(old_module), str(tmp_path)], check=True,
                   cwd=REPO, timeout=60)
    columns = {row[1] for row in sqlite3.connect(tmp_path / "state.db").execute("PRAGMA table_info(spool_entries)")}
    assert "destination" not in columns

    async def deliver() -> None:
        state = StateStore(tmp_path / "state.db")
        try:
            spool = Spool(tmp_path / "spool", state, max_bytes=10_000_000)
            spool.recover(destinations=["archive"])
            assert [(e.destination, e.key) for e in spool.pending()] == [
                ("archive", f"events/k-{n}.ndjson") for n in range(3)]
            delivery = Delivery(spool, _sink(tmp_path / "out"), settings=SinkSettings())
            assert await delivery.drain(5.0)
            # New parts continue the commit order after the upgraded ones.
            entry = await spool.commit("events/k-3.ndjson", b"payload 3\n", [], stream="events", records=1)
            assert entry.seq > 3
        finally:
            state.close()

    import asyncio

    asyncio.run(deliver())
    assert sorted(p.name for p in (tmp_path / "out" / "events").iterdir()) == [f"k-{n}.ndjson" for n in range(3)]
    assert (tmp_path / "out" / "events" / "k-0.ndjson").read_bytes() == b"payload 0\n"
