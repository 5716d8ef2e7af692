"""``cluster.name`` on every record: events (NDJSON, kubestream protobuf) and logs (NDJSON,
Parquet), decoded by the libraries a reader would use (orjson, protobuf, pyarrow); and the
``cluster=`` key level of ``cluster.partition``, written by the batcher."""

from __future__ import annotations

import datetime as dt
import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bench.gen_archive import event_record

from kubestream.config.settings import EncodingSettings, LogsSettings, Settings
from kubestream.enrich.block import ContainerMeta
from kubestream.model import LogChunk, Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.encode import make_encoder, make_log_encoder
from kubestream.pipeline.encode.logs_ndjson import NdjsonLogEncoder
from kubestream.pipeline.encode.protobuf import unframe
from kubestream.pipeline.naming import batch_key, parse_key
from kubestream.pipeline.proto import kubestream_pb2
from kubestream.pipeline.spool import Spool
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser
from kubestream.state.store import StateStore

WHEN = dt.datetime(2026, 3, 1, 7, 30, tzinfo=dt.UTC)
CRI = b"".join(b"2026-03-01T07:30:%02d.000000001Z stdout F line %d\n" % (i, i) for i in range(5))


def _settings(**encoding: Any) -> Settings:
    return Settings(cluster={"name": "prod-eu-1"}, encoding=EncodingSettings(**encoding))


def _log_records() -> list[Record]:
    records = []
    for n in range(2):
        block = FileParser(LogFormat.CRI, LogsSettings()).feed(CRI, 0)
        meta = ContainerMeta.build({"namespace": "shop", "pod_name": f"web-{n}", "pod_uid": f"u-{n}"})
        chunk = LogChunk(block, meta, f"/var/log/pods/shop_web-{n}_u-{n}/app/0.log")
        records.append(Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=n))
    return records


def _event_records() -> list[Record]:
    return [Record(data=event_record(n, WHEN), sort_key=WHEN.isoformat(), position=n) for n in range(3)]


def test_event_ndjson_lines_carry_the_cluster_after_kind() -> None:
    settings = _settings(compression="gzip")
    payload = make_encoder(settings.encoding, cluster=settings.cluster.name).encode(_event_records())
    lines = [orjson.loads(line) for line in gzip.decompress(payload).splitlines()]
    assert [line["cluster"] for line in lines] == ["prod-eu-1"] * 3
    assert list(lines[0])[:3] == ["kind", "cluster", "timestamp"]
    # The rest of the record is as the source built it.
    assert {k: v for k, v in lines[0].items() if k != "cluster"} == event_record(0, WHEN)


def test_event_protobuf_has_a_typed_cluster_field() -> None:
    settings = _settings(format="protobuf", compression="none")
    payload = make_encoder(settings.encoding, cluster="prod-eu-1").encode(_event_records())
    messages = [kubestream_pb2.Record.FromString(raw) for raw in unframe(payload)]
    assert [m.cluster for m in messages] == ["prod-eu-1"] * 3
    # Typed, not in the JSON residual.
    assert all("cluster" not in orjson.loads(m.extra_json or "{}") for m in messages)


def test_a_record_without_kind_and_one_that_names_its_cluster() -> None:
    codec = make_encoder(EncodingSettings(compression="none"), cluster="a")
    lines = [orjson.loads(line) for line in codec.encode_dicts([{"x": 1}, {"kind": "event", "cluster": "b"}])
             .splitlines()]
    assert lines == [{"cluster": "a", "x": 1}, {"kind": "event", "cluster": "b"}]


def test_without_a_name_no_field_is_written() -> None:
    lines = make_encoder(EncodingSettings(compression="none")).encode(_event_records()).splitlines()
    assert all("cluster" not in orjson.loads(line) for line in lines)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_log_ndjson_lines_carry_the_cluster(compression: str) -> None:
    encoder = make_log_encoder(_settings(compression=compression))
    assert isinstance(encoder, NdjsonLogEncoder)
    lines = encoder.decode(encoder.encode(_log_records()))
    assert len(lines) == 10
    assert {line["cluster"] for line in lines} == {"prod-eu-1"}
    assert list(lines[0])[:3] == ["kind", "cluster", "timestamp"]


def test_a_cluster_name_that_needs_escaping_stays_valid_json() -> None:
    settings = Settings(cluster={"name": 'we"ird\u00e9'}, encoding=EncodingSettings(compression="none"))
    lines = [orjson.loads(line) for line in make_log_encoder(settings).encode(_log_records()).splitlines()]
    assert {line["cluster"] for line in lines} == {'we"ird\u00e9'}


def test_log_parquet_has_a_constant_dictionary_column() -> None:
    table = pq.read_table(io.BytesIO(make_log_encoder(_settings(format="parquet")).encode(_log_records())))
    assert table.column("cluster").to_pylist() == ["prod-eu-1"] * 10
    assert table.schema.field("cluster").type == pa.dictionary(pa.int32(), pa.string())
    assert table.schema.names[:3] == ["kind", "cluster", "timestamp"]
    # One dictionary entry for the whole batch, whatever the number of rows.
    assert table.column("cluster").combine_chunks().dictionary.to_pylist() == ["prod-eu-1"]


def test_log_parquet_without_a_name_has_a_null_column() -> None:
    table = pq.read_table(io.BytesIO(make_log_encoder(Settings(encoding=EncodingSettings(format="parquet")))
                                     .encode(_log_records())))
    assert table.column("cluster").null_count == 10


def test_the_key_layout_with_and_without_the_cluster_level() -> None:
    common: dict[str, Any] = {"prefix": "/prod/", "stream": "logs", "stream_uid": "n1", "timestamp": WHEN,
                              "first_position": 3, "last_position": 9, "extension": "parquet"}
    assert batch_key(**common) == "prod/logs/dt=2026-03-01/hour=07/n1-3-9.parquet"
    key = batch_key(**common, cluster="east")
    assert key == "prod/logs/cluster=east/dt=2026-03-01/hour=07/n1-3-9.parquet"
    assert parse_key(key).cluster == "east" and parse_key(key).hour == WHEN.replace(minute=0)
    assert parse_key("prod/logs/dt=2026-13-01/hour=07/x").hour is None


@pytest.mark.parametrize(("partition", "folder"), [(True, "events/cluster=east/dt=2026-03-01/hour=07/"),
                                                    (False, "events/dt=2026-03-01/hour=07/")])
async def test_the_batcher_names_keys_with_the_cluster_level_when_partitioned(
        tmp_path: Path, partition: bool, folder: str) -> None:
    settings = Settings(cluster={"name": "east", "partition": partition})
    state = StateStore(tmp_path / "state.db")
    try:
        spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
        pipeline = Pipeline("events", settings, state, spool)
        for record in _event_records():
            await pipeline.put(record)
        await pipeline.flush()
        [entry] = spool.pending()
        assert entry.key == f"{folder}kubestream-0-2.ndjson.gz"
        assert {r["cluster"] for r in make_encoder(settings.encoding).decode(entry.path.read_bytes())} == {"east"}
    finally:
        state.close()
