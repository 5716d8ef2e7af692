"""Events in Parquet (``encoding.format: parquet``): one file per batch in the compacted events
schema, read back by every reader of the archive as it is.

Real batcher, spool, delivery and file sink; ``kubestream query`` as a process; the real
compactor and takeover; and the whole events collector against the simulator, killed once.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bench.gen_archive import Ledger, event_record, write_events
from tests.agent.harness import AgentProcess, assert_exactly_once, make_workload, write_config

from kubestream.agent.takeover import rebuild_from_archive
from kubestream.archive.compact import compact_archive
from kubestream.archive.formats import read_records, read_table
from kubestream.archive.schema import EVENTS_SCHEMA as ARCHIVE_EVENTS_SCHEMA
from kubestream.archive.schema import events_table_from_lines
from kubestream.archive.store import open_archive, read_live
from kubestream.config.settings import (
    BatchSettings,
    ClusterSettings,
    EncodingSettings,
    FileSinkSettings,
    Settings,
    SinkSettings,
)
from kubestream.model import Record
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import make_encoder, make_record_format
from kubestream.pipeline.encode.events_parquet import EventsParquetFormat
from kubestream.pipeline.encode.events_schema import (
    EVENT_DICTIONARY_COLUMNS,
    EVENTS_SCHEMA,
    events_lines,
    events_table_from_records,
)
from kubestream.pipeline.naming import batch_key
from kubestream.pipeline.spool import Spool
from kubestream.sim.server import SimConfig, SimServer
from kubestream.sinks.file import FileSink
from kubestream.sources.event_state import EventState, Watermark
from kubestream.state.store import StateStore

START = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
PARQUET = EncodingSettings(format="parquet", compression="gzip", zstd_level=3)
FORMATS = {
    "ndjson": EncodingSettings(format="ndjson", compression="gzip"),
    "protobuf": EncodingSettings(format="protobuf", compression="zstd"),
    "parquet": PARQUET,
}
SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def _records(n: int, when: dt.datetime = START, *, count: int = 1, tag: str = "ev") -> list[dict[str, Any]]:
    return [event_record(i, when + dt.timedelta(seconds=i), count=count, tag=tag) for i in range(n)]


def _settings(tmp: Path, encoding: EncodingSettings = PARQUET, **batch: Any) -> Settings:
    return Settings(
        batch=BatchSettings(**{"max_records": 4, "max_age_s": 60, **batch}),
        encoding=encoding,
        cluster=ClusterSettings(name="prod-eu-1"),
        sink=SinkSettings(prefix="arch", stream_uid="u", file=FileSinkSettings(dir=tmp / "out"),
                          retry_initial_s=0.01, retry_max_s=0.02),
    )


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = SimServer(SimConfig())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.db")
    yield s
    s.close()


async def _through_the_pipeline(settings: Settings, state: StateStore, spool_dir: Path,
                                records: list[dict[str, Any]], metrics: Metrics | None = None) -> None:
    spool = Spool(spool_dir, state, max_bytes=1 << 24)
    pipeline = Pipeline("events", settings, state, spool, metrics=metrics)
    for position, record in enumerate(records, 1):
        await pipeline.put(Record(data=record, sort_key=record["timestamp"], position=position))
    await pipeline.flush()
    delivery = Delivery(spool, FileSink(settings.sink.file), settings=settings.sink, metrics=metrics)
    assert await delivery.drain(10.0)


# -- the format ---------------------------------------------------------------------------------


def test_the_settings_pick_the_events_parquet_format_without_a_compression_suffix() -> None:
    codec = make_encoder(PARQUET)
    assert isinstance(codec.record_format, EventsParquetFormat) and codec.record_format.zstd_level == 3
    assert codec.extension == "parquet" and codec.compressor.suffix == ""
    assert isinstance(make_record_format(EncodingSettings(format="parquet", compression="zstd")), EventsParquetFormat)
    records = _records(5)
    assert codec.decode(codec.encode_dicts(records)) == records


def test_the_pipeline_schema_is_the_archive_schema() -> None:
    assert ARCHIVE_EVENTS_SCHEMA is EVENTS_SCHEMA


async def test_a_round_trip_through_batcher_spool_and_file_sink(tmp_path: Path, state: StateStore) -> None:
    settings = _settings(tmp_path)
    records = _records(10)
    await _through_the_pipeline(settings, state, tmp_path / "spool", records)
    files = sorted((tmp_path / "out").rglob("*"))
    names = [p.relative_to(tmp_path / "out").as_posix() for p in files if p.is_file()]
    assert names == ["arch/events/dt=2024-05-01/hour=10/u-1-4.parquet", "arch/events/dt=2024-05-01/hour=10/u-5-8.parquet",
                     "arch/events/dt=2024-05-01/hour=10/u-9-10.parquet"]
    back: list[dict[str, Any]] = []
    for path in (p for p in files if p.is_file()):
        data = path.read_bytes()
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        assert meta.num_row_groups == 1
        group = meta.row_group(0)
        columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
        assert {c.compression for c in columns.values()} == {"ZSTD"}
        dictionary = {name for name, c in columns.items() if c.has_dictionary_page}
        assert dictionary == set(EVENT_DICTIONARY_COLUMNS)
        table = pq.read_table(io.BytesIO(data))
        assert table.schema.equals(EVENTS_SCHEMA, check_metadata=True)
        assert table.column("cluster").to_pylist() == ["prod-eu-1"] * table.num_rows
        back += read_records(path.name, data)
    assert back == [{"kind": "event", "cluster": "prod-eu-1", **{k: v for k, v in r.items() if k != "kind"}}
                    for r in records]


# -- hostile values ---------------------------------------------------------------------------------


def test_a_value_of_the_wrong_type_is_null_in_its_column_and_kept_in_the_record() -> None:
    records = _records(3)
    records[1]["event"]["count"] = "many"
    records[1]["event"]["first_timestamp"] = "yesterday"
    records[1]["event"]["resource_version"] = 2**70  # beyond int64: orjson refuses, NDJSON's slow path writes it
    records[1]["involved"] = ["not", "an", "object"]
    records[1]["kubernetes"]["object_deleted"] = "no"
    records[2]["timestamp"] = {"nested": True}
    records[2]["related"] = {"kind": "Node", "name": "node-000"}
    records[2]["extra"] = {"\u00e9t\u00e9": "\U0001f600", "set": {1}}  # not JSON: written as NDJSON does (str)
    table = events_table_from_records(records)
    assert table.schema.equals(EVENTS_SCHEMA) and table.num_rows == 3
    event = table.column("event").to_pylist()
    assert event[1]["count"] is None and event[1]["first_timestamp"] is None and event[1]["resource_version"] is None
    assert event[0]["count"] == 1 and event[2]["uid"] == "ev-00000002"
    assert table.column("involved").to_pylist()[1] is None
    assert table.column("kubernetes").to_pylist()[1]["object_deleted"] is None
    assert table.column("timestamp").to_pylist()[2] is None
    texts = table.column("record").to_pylist()
    assert orjson.loads(texts[1])["event"]["count"] == "many"
    assert json.loads(texts[1])["event"]["resource_version"] == 2**70
    assert orjson.loads(texts[2])["related"] == {"kind": "Node", "name": "node-000"}
    assert orjson.loads(texts[2])["extra"] == {"\u00e9t\u00e9": "\U0001f600", "set": "{1}"}
    # The same rows as the compactor makes of the NDJSON of these records.
    assert table.equals(events_table_from_lines(events_lines(records)))
    payload = EventsParquetFormat().serialize(records)
    assert read_table("x.parquet", payload, "events").equals(table)
    assert [r["event"]["uid"] for r in read_records("x.parquet", payload)] == [f"ev-{i:08d}" for i in range(3)]


def test_the_agent_batch_and_the_compacted_ndjson_batch_are_the_same_rows() -> None:
    records = _records(20)
    ndjson = make_encoder(FORMATS["ndjson"]).encode_dicts(records)
    parquet = make_encoder(PARQUET).encode_dicts(records)
    assert read_table("a.ndjson.gz", ndjson, "events").equals(read_table("a.parquet", parquet, "events"))


def test_an_empty_batch_is_an_empty_file_of_the_schema() -> None:
    payload = EventsParquetFormat().serialize([])
    assert pq.read_table(io.BytesIO(payload)).schema.equals(EVENTS_SCHEMA) and EventsParquetFormat().parse(payload) == []


async def test_a_batch_the_parquet_writer_refuses_is_a_dead_letter_in_ndjson(
    tmp_path: Path, state: StateStore
) -> None:
    """``NaN`` beside an integer beyond 64 bits: orjson refuses the record, the stdlib path writes
    ``NaN``, which is not JSON; Parquet refuses to store a ``record`` no reader could parse, and the
    batch goes to the dead-letter folder as NDJSON. The batches around it stay Parquet."""
    settings = _settings(tmp_path, max_records=3)
    metrics = Metrics()
    records = _records(9)
    records[4]["event"]["count"] = 2**70
    records[4]["event"]["score"] = math.nan
    with pytest.raises(ValueError):
        EventsParquetFormat().serialize(records[3:6])
    await _through_the_pipeline(settings, state, tmp_path / "spool", records, metrics)
    out = tmp_path / "out" / "arch"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "dead-letter/events/dt=2024-05-01/hour=10/u-4-6.ndjson.gz",
        "events/dt=2024-05-01/hour=10/u-1-3.parquet",
        "events/dt=2024-05-01/hour=10/u-7-9.parquet",
    ]
    dead = gzip.decompress((out / "dead-letter/events/dt=2024-05-01/hour=10/u-4-6.ndjson.gz").read_bytes())
    lines = [json.loads(line) for line in dead.splitlines()]  # the stdlib reads NaN
    assert [r["event"]["uid"] for r in lines] == ["ev-00000003", "ev-00000004", "ev-00000005"]
    assert lines[1]["event"]["count"] == 2**70 and math.isnan(lines[1]["event"]["score"])
    assert metrics.registry.get_sample_value("kubestream_dead_letters_total",
                                             {"stream": "events", "reason": "encode"}) == 1


async def test_a_batch_neither_parquet_nor_ndjson_can_write_is_kept_as_plain_lines(
    tmp_path: Path, state: StateStore
) -> None:
    """A lone surrogate is no UTF-8: both encoders refuse the batch, which is kept as the batcher's
    last resort (one line per record, the data as its ``repr``) under the dead-letter folder."""
    settings = _settings(tmp_path, max_records=3)
    records = _records(3)
    records[1]["event"]["message"] = "broken \ud800 text"
    with pytest.raises(ValueError):
        EventsParquetFormat().serialize(records)
    await _through_the_pipeline(settings, state, tmp_path / "spool", records)
    out = tmp_path / "out" / "arch"
    (dead,) = [p for p in out.rglob("*") if p.is_file()]
    assert dead.relative_to(out).as_posix() == "dead-letter/events/dt=2024-05-01/hour=10/u-1-3.ndjson"
    lines = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert [line["position"] for line in lines] == [1, 2, 3] and "\\ud800" in lines[1]["data"]


# -- readers ----------------------------------------------------------------------------------------


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubestream.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def _query(archive: Path, sql: str) -> list[dict[str, Any]]:
    done = _run_cli("query", "--archive", str(archive), "-o", "jsonl", sql)
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_query_reads_events_in_all_three_formats_with_the_same_columns(tmp_path: Path) -> None:
    answers = {}
    for name, encoding in FORMATS.items():
        ledger = Ledger()
        write_events(tmp_path / name, ledger, start=START, hours=2, objects_per_hour=3, records_per_object=5,
                     encoding=encoding, cluster="prod-eu-1")
        rows = _query(tmp_path / name, "select * from events order by event_uid")
        assert [(r["event_uid"], r["count"]) for r in rows] == sorted(ledger.events)
        answers[name] = rows
    assert answers["parquet"] == answers["ndjson"] == answers["protobuf"]
    assert list(answers["parquet"][0]) == list(answers["ndjson"][0])

    mixed = tmp_path / "mixed"
    ledger = Ledger()
    for name, encoding in FORMATS.items():
        write_events(mixed, ledger, start=START, hours=2, objects_per_hour=3, records_per_object=5,
                     encoding=encoding, stream_uid=f"agent-{name}", cluster="prod-eu-1")
    assert {p.name.split(".", 1)[1] for p in mixed.rglob("*.*")} == {"ndjson.gz", "pb.zst", "parquet"}
    rows = _query(mixed, "select event_uid, count, reason, workload_name, labels from events")
    assert Counter((r["event_uid"], r["count"]) for r in rows) == Counter(ledger.events)
    assert {r["workload_name"] for r in rows} == {"web"} and all(r["labels"] for r in rows)
    timeline = _run_cli("timeline", "-n", "shop", "-a", str(mixed), "--since", "2024-05-01T00:00:00Z",
                        "--until", "2024-05-02T00:00:00Z", "-o", "csv")
    assert timeline.returncode == 0, timeline.stderr
    assert len(timeline.stdout.splitlines()) == len(ledger.events) + 1


async def test_compacting_a_partition_of_the_three_formats_keeps_every_record_once(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    ledger = Ledger()
    # One stream uid, three encodings over time: one compaction group mixing them.
    for index, encoding in enumerate(FORMATS.values()):
        write_events(root, ledger, start=START + dt.timedelta(minutes=5 * index), hours=1, objects_per_hour=3,
                     records_per_object=5, encoding=encoding, stream_uid="kubestream")
    settings = Settings.model_validate({"sink": {"file": {"dir": str(root)}}, "state": {"dir": str(tmp_path / "s")},
                                        "compaction": {"grace_s": 0}})
    sources = sorted(p.name for p in root.rglob("*") if p.is_file())
    assert {n.split(".", 1)[1] for n in sources} == {"ndjson.gz", "pb.zst", "parquet"}
    store = open_archive(settings)
    report = await compact_archive(store, settings, now=LATER)
    assert report.sources == len(sources) and report.parts == 1 and not report.unreadable
    (part,) = root.rglob("*-compacted-*.parquet")
    table = pq.read_table(part)
    assert table.schema.equals(EVENTS_SCHEMA, check_metadata=True)
    seen: Counter[tuple[str, int]] = Counter()
    for key, data in await read_live(store, "events/dt=2024-05-01/hour=10/"):
        for record in read_records(key, data):
            seen[(record["event"]["uid"], record["event"]["count"])] += 1
    # The three writers used the same uids (one stream uid): each (uid, count) three times, once per format.
    assert seen == Counter({identity: 3 for identity in ledger.events})
    assert table.num_rows == 3 * len(ledger.events)


def _write_archive(root: Path, encoding: EncodingSettings, now: dt.datetime) -> None:
    """Events of the two last hours; each uid's count grows across batches (and partitions)."""
    codec = make_encoder(encoding)
    hour = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    for batch in range(12):
        when = hour + dt.timedelta(minutes=9 * batch)
        records = [event_record(uid, when, count=batch + 1) for uid in range(batch % 4, 40, 3)]
        for r in records:
            r["event"]["resource_version"] = 1000 * batch + int(r["event"]["uid"][-4:])
        key = batch_key(prefix="", stream="events", stream_uid="kubestream", timestamp=when,
                        first_position=batch * 100, last_position=batch * 100 + 99, extension=codec.extension)
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(codec.encode_dicts(records))


async def _rebuild(settings: Settings, path: Path) -> tuple[int, dict[str, Watermark]]:
    store = StateStore(path)
    try:
        result = await rebuild_from_archive(settings, FileSink(settings.sink.file), store)
        return result.records, EventState(store).load().watermarks
    finally:
        store.close()


async def test_a_takeover_reads_the_events_parquet_it_wrote(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    marks = {}
    for name in ("ndjson", "parquet"):
        root = tmp_path / name
        settings = Settings.model_validate({"sink": {"file": {"dir": str(root)}}, "state": {"dir": str(tmp_path / name)},
                                            "encoding": FORMATS[name].model_dump(), "compaction": {"grace_s": 0}})
        _write_archive(root, FORMATS[name], now)
        marks[name] = await _rebuild(settings, tmp_path / f"{name}.db")
        if name == "parquet":
            assert all(p.suffix == ".parquet" for p in root.rglob("*") if p.is_file())
            await compact_archive(open_archive(settings), settings)
            assert await _rebuild(settings, tmp_path / "compacted.db") == marks[name]
    records, watermarks = marks["parquet"]
    assert (records, watermarks) == marks["ndjson"]
    assert len(watermarks) == 40 and max(m.occurrences for m in watermarks.values()) == 12


# -- docs -------------------------------------------------------------------------------------------


def test_the_documented_events_parquet_query_runs_on_agent_batches(tmp_path: Path) -> None:
    queries = [q for q in re.findall(r"```sql\n(.*?)```", SCHEMA_DOC.read_text(), re.S) if "bucket/events/" in q]
    assert len(queries) == 1
    root = tmp_path / "bucket"
    ledger = Ledger()
    write_events(root, ledger, start=START, hours=2, objects_per_hour=2, records_per_object=12, encoding=PARQUET)
    # A compacted copy beside them must not count twice: the documented glob leaves it out.
    folder = root / "events/dt=2024-05-01/hour=10/~compacted/abc/parts"
    folder.mkdir(parents=True)
    (folder / "kubestream-compacted-00000.parquet").write_bytes(
        EventsParquetFormat().serialize(_records(12, tag="kubestream")))
    query = queries[0].replace("'bucket/", f"'{root}/").strip().rstrip(";")
    rows = duckdb.connect().sql(query).fetchall()
    warnings = Counter(event_record(int(uid.rsplit("-", 1)[1]), START)["event"]["reason"]
                       for uid, _ in ledger.events if int(uid.rsplit("-", 1)[1]) % 3 == 0)
    assert {(r[0], r[1], r[2]): r[3] for r in rows} == {("Deployment", "web", reason): n
                                                        for reason, n in warnings.items()}
    assert {r[4] for r in rows} == {"web"}
    assert [r[3] for r in rows] == sorted((r[3] for r in rows), reverse=True)


def test_the_encoded_table_is_arrow_of_the_documented_types() -> None:
    table = events_table_from_records(_records(2))
    assert table.schema.field("kind").type == pa.dictionary(pa.int32(), pa.string())
    assert table.schema.field("timestamp").type == pa.timestamp("us", "UTC")
    assert table.schema.field("record").type == pa.string()
    doc = SCHEMA_DOC.read_text()
    section = doc[doc.index("## Events in Parquet"):doc.index("## Log records")]
    for name in EVENT_DICTIONARY_COLUMNS:
        assert f"`{name}`" in section


# -- the events collector ---------------------------------------------------------------------------


def _read_parquet_archive(root: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and "dead-letter" not in path.parts:
            assert path.name.endswith(".parquet"), path
            records += read_records(path.name, path.read_bytes())
    return records


def _caught_up(root: Path, total: int, timeout: float = 40.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        records = _read_parquet_archive(root)
        if sum(int(r["event"]["count_delta"]) for r in records) >= total or time.monotonic() > deadline:
            return records
        time.sleep(0.25)


def test_the_events_collector_archives_parquet_exactly_once_across_a_sigkill(sim: SimServer, tmp_path: Path) -> None:
    workload = make_workload(sim, seed=17, rate=300)
    config = write_config(tmp_path, sim, encoding={"format": "parquet"}, batch={"max_records": 80, "max_age_s": 0.3})
    workload.start()
    try:
        agent = AgentProcess(config, tmp_path).start()
        agent.wait_ready()
        time.sleep(1.5)
        agent.kill()
        time.sleep(0.5)
    finally:
        workload.stop()
    killed_with = _read_parquet_archive(tmp_path / "archive")
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    records = _caught_up(tmp_path / "archive", workload.ledger.total())
    assert agent.terminate() == 0, agent.log()
    assert killed_with, "the first run archived nothing before the kill"
    assert workload.ledger.total() > 300
    assert_exactly_once(records, workload.ledger)
    (cluster,) = {r["cluster"] for r in records}
    assert cluster
