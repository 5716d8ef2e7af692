"""NDJSON (spliced, gzip/zstd/none) and Parquet output of log chunks, read back."""

from __future__ import annotations

import base64
import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from kubestream.config.settings import EncodingSettings, LogsSettings, Settings
from kubestream.enrich.block import ContainerMeta
from kubestream.model import LogChunk, ParsedBlock, Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.encode import make_log_encoder
from kubestream.pipeline.encode.json_strings import json_string_bodies
from kubestream.pipeline.spool import Spool
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser
from kubestream.state.store import StateStore

KUBE: dict[str, Any] = {
    "namespace": "shop", "namespace_labels": {"team": "pay"}, "object_kind": "Pod", "object_name": "web-1",
    "object_uid": "u-1", "labels": {"app": "web"}, "annotations": {}, "pod_name": "web-1", "pod_uid": "u-1",
    "pod_ip": "10.0.0.5", "container_name": "app", "container_image": "web:1.2", "container_id": "c1",
    "owner_kind": "ReplicaSet", "owner_name": "web-rs", "owner_uid": "rs-1",
    "owners": [{"kind": "ReplicaSet", "name": "web-rs"}], "node_name": "node-a", "node_ip": "10.0.0.1",
    "node_labels": {}, "services": ["web"], "object_deleted": False, "enrichment": "ok",
}
OTHER = {**KUBE, "pod_name": "api-1", "pod_uid": "u-2", "container_name": "main", "labels": {"app": "api"},
         "object_deleted": True}


def cri(i: int, stream: str, message: bytes, tag: str = "F") -> bytes:
    return b"2026-01-01T00:00:%02d.123456789Z %s %s %s\n" % (i, stream.encode(), tag.encode(), message)


DATA = (cri(1, "stdout", b'{"json":"line","n":1}') + cri(2, "stderr", b"tab\there \\ back") + cri(3, "stdout", b"P1 ", "P")
        + cri(3, "stdout", b"F2") + cri(4, "stdout", b"caf\xc3\xa9 \xff raw") + cri(5, "stdout", b"L" * 2000))


def chunk(kube: dict[str, Any], path: str) -> LogChunk:
    settings = LogsSettings(invalid_utf8="lossless", max_line_bytes=1024)
    block = FileParser(LogFormat.CRI, settings).feed(DATA, 10)
    return LogChunk(block, ContainerMeta.build(kube), path, file_key="1:2")


def records() -> list[Record]:
    chunks = [chunk(KUBE, "/var/log/pods/shop_web-1_u-1/app/0.log"),
              chunk(OTHER, "/var/log/pods/shop_api-1_u-2/main/0.log")]
    return [Record(data={}, chunk=c, sort_key=c.sort_key, position=i, size_hint=c.size_hint)
            for i, c in enumerate(chunks)]


def settings(**encoding: Any) -> Settings:
    return Settings(encoding=EncodingSettings(**encoding))


@pytest.mark.parametrize(("compression", "extension", "unpack"), [
    ("gzip", "ndjson.gz", gzip.decompress),
    ("zstd", "ndjson.zst", lambda b: zstandard.ZstdDecompressor().decompress(b, max_output_size=1 << 24)),
    ("none", "ndjson", lambda b: b),
])
def test_ndjson_round_trip(compression: str, extension: str, unpack: Any) -> None:
    encoder = make_log_encoder(settings(compression=compression))
    assert encoder.extension == extension
    lines = [orjson.loads(line) for line in unpack(encoder.encode(records())).splitlines()]
    assert len(lines) == 10
    first = lines[0]
    assert first == {"kind": "log", "timestamp": "2026-01-01T00:00:01.123456789Z", "stream": "stdout",
                     "message": '{"json":"line","n":1}',
                     "file": {"path": "/var/log/pods/shop_web-1_u-1/app/0.log", "offset": 10}, "kubernetes": KUBE}
    assert lines[1]["message"] == "tab\there \\ back" and lines[1]["stream"] == "stderr"
    assert lines[2]["message"] == "P1 F2" and "truncated" not in lines[2]
    assert lines[3]["message"] == "café \ufffd raw"
    assert base64.b64decode(lines[3]["message_base64"]) == b"caf\xc3\xa9 \xff raw"
    assert lines[4]["truncated"] is True and set(lines[4]["message"]) == {"L"}
    assert lines[5]["kubernetes"] == OTHER and lines[5]["file"]["path"].endswith("main/0.log")
    offsets = [line["file"]["offset"] for line in lines[:5]]
    assert offsets == [10 + DATA.index(cri(i, *a)) for i, a in
                       [(1, ("stdout", b'{"json":"line","n":1}')), (2, ("stderr", b"tab\there \\ back")),
                        (3, ("stdout", b"P1 ", "P")), (4, ("stdout", b"caf\xc3\xa9 \xff raw")),
                        (5, ("stdout", b"L" * 2000))]]


def test_parquet_round_trip_with_dictionary_metadata() -> None:
    encoder = make_log_encoder(settings(format="parquet"))
    assert encoder.extension == "parquet"
    table = pq.read_table(io.BytesIO(encoder.encode(records())))
    assert table.num_rows == 10
    schema = table.schema
    assert schema.field("timestamp").type == pa.timestamp("ns", "UTC")
    assert pa.types.is_dictionary(schema.field("stream").type)
    kube_type = schema.field("kubernetes").type
    assert pa.types.is_dictionary(kube_type.field("pod_name").type)
    assert pa.types.is_dictionary(kube_type.field("labels").type)
    nanos = table.column("timestamp").cast(pa.int64()).to_pylist()
    assert nanos[0] == 1_767_225_601_123_456_789 and nanos[4] == 1_767_225_605_123_456_789
    rows = table.drop_columns(["timestamp"]).to_pylist()
    assert [r["message"] for r in rows[:3]] == ['{"json":"line","n":1}', "tab\there \\ back", "P1 F2"]
    assert base64.b64decode(rows[3]["message_base64"]) == b"caf\xc3\xa9 \xff raw"
    assert [r["truncated"] for r in rows[:5]] == [False, False, False, False, True]
    assert rows[0]["kubernetes"]["pod_name"] == "web-1" and rows[5]["kubernetes"]["pod_name"] == "api-1"
    assert orjson.loads(rows[5]["kubernetes"]["labels"]) == {"app": "api"}
    assert rows[0]["kubernetes"]["object_deleted"] is False and rows[9]["kubernetes"]["object_deleted"] is True
    assert rows[0]["file"] == {"path": "/var/log/pods/shop_web-1_u-1/app/0.log", "offset": 10}
    assert {r["kind"] for r in rows} == {"log"}


def test_an_empty_batch_encodes() -> None:
    empty = LogChunk(FileParser(LogFormat.CRI, LogsSettings()).feed(b"", 0), ContainerMeta.build(KUBE), "/p")
    record = Record(data={}, chunk=empty, sort_key="", position=0)
    assert gzip.decompress(make_log_encoder(settings()).encode([record])) == b""
    assert pq.read_table(io.BytesIO(make_log_encoder(settings(format="parquet")).encode([record]))).num_rows == 0


@pytest.mark.parametrize("messages", [
    [b"plain", b'with "quotes"', b"back\\slash", b""],
    [b"ends with quote comma \",", b"next"],
    [b"ctrl \x01 char", b"multi\nline", "ünïcode ✓".encode()],
    [b'\\","', b'","', b"\\"],
])
def test_json_string_bodies_match_orjson(messages: list[bytes]) -> None:
    assert json_string_bodies(messages) == [orjson.dumps(m.decode())[1:-1] for m in messages]


# -- metadata that differs between chunks, timestamps that are invalid or unusual ----------------

READ_NS = 1_893_456_000_123_456_789  # 2030-01-01T00:00:00.123456789Z: when the test chunks were "read"
READ_TEXT = "2030-01-01T00:00:00.123456789Z"


def block_of(stamps: list[bytes]) -> LogChunk:
    """A chunk whose rows carry exactly these timestamps (b"": the parser found no valid time)."""
    block = ParsedBlock(timestamps=stamps, streams=[b"stdout"] * len(stamps),
                        messages=[b"m%d" % i for i in range(len(stamps))],
                        offsets=list(range(0, 10 * len(stamps), 10)), resume_offset=10 * len(stamps))
    return LogChunk(block, ContainerMeta.build(KUBE), "/var/log/pods/shop_web-1_u-1/app/0.log", file_key="1:2",
                    read_time_ns=READ_NS)


def as_records(*chunks: LogChunk) -> list[Record]:
    return [Record(data={}, chunk=c, sort_key=c.sort_key, position=i) for i, c in enumerate(chunks)]


def test_parquet_batch_mixing_a_pod_with_annotations_and_one_without() -> None:
    # A deleted pod's chunk has no annotations (nor labels) at all: the crash-looping batch.
    deleted = {k: v for k, v in OTHER.items() if k not in ("annotations", "labels", "pod_ip")}
    annotated = {**KUBE, "annotations": {"team": "pay", "n": 1}}
    batch = [Record(data={}, chunk=c, sort_key=c.sort_key, position=i) for i, c in enumerate([
        chunk(annotated, "/var/log/pods/shop_web-1_u-1/app/0.log"),
        chunk(deleted, "/var/log/pods/shop_api-1_u-2/main/0.log"),
        chunk(annotated, "/var/log/pods/shop_web-1_u-1/app/0.log")])]
    table = pq.read_table(io.BytesIO(make_log_encoder(settings(format="parquet")).encode(batch)))
    kube = table.column("kubernetes").to_pylist()
    assert len(kube) == 15
    assert [orjson.loads(k["annotations"]) if k["annotations"] else None for k in kube[::5]] == \
        [{"n": 1, "team": "pay"}, None, {"n": 1, "team": "pay"}]
    assert [k["labels"] for k in kube[4:6]] == ['{"app":"web"}', None]
    assert [k["pod_ip"] for k in kube[4:6]] == ["10.0.0.5", None]
    assert [k["pod_name"] for k in kube[::5]] == ["web-1", "api-1", "web-1"]


STAMPS = [
    b"2026-01-01T00:00:01.5Z",              # fractional, the common form
    b"",                                     # no valid time (the parser's contract)
    b"2026-01-01t00:00:02.25z",              # lower-case t and z
    b"2026-01-01T02:00:03.123+02:00",        # an offset
    b"2026-01-01T00:00:04Z",                 # no fraction
    b"2026-01-01T00:00:05.123456789Z",       # nine digits
    b"2016-12-31T23:59:60Z",                 # a leap second
]
EXPECTED_NS = [1_767_225_601_500_000_000, READ_NS, 1_767_225_602_250_000_000, 1_767_225_603_123_000_000,
               1_767_225_604_000_000_000, 1_767_225_605_123_456_789, 1_483_228_800_000_000_000]


def test_parquet_parses_each_timestamp_on_its_own() -> None:
    table = pq.read_table(io.BytesIO(make_log_encoder(settings(format="parquet")).encode(as_records(block_of(STAMPS)))))
    assert table.column("timestamp").cast(pa.int64()).to_pylist() == EXPECTED_NS
    assert table.column("timestamp_invalid").to_pylist() == [False, True, False, False, False, False, False]
    # The common case (every stamp castable at once) has the column too, all false.
    valid = pq.read_table(io.BytesIO(make_log_encoder(settings(format="parquet")).encode(
        as_records(block_of([STAMPS[0], STAMPS[4]])))))
    assert valid.column("timestamp_invalid").to_pylist() == [False, False]
    assert valid.column("timestamp").cast(pa.int64()).to_pylist() == [EXPECTED_NS[0], EXPECTED_NS[4]]


def test_ndjson_gives_an_untimed_line_its_read_time_and_a_flag() -> None:
    lines = [orjson.loads(line) for line in gzip.decompress(
        make_log_encoder(settings()).encode(as_records(block_of(STAMPS)))).splitlines()]
    assert [line["timestamp"] for line in lines] == [s.decode() or READ_TEXT for s in STAMPS]
    assert [line.get("timestamp_invalid") for line in lines] == [None, True, None, None, None, None, None]
    assert list(lines[1]) == ["kind", "timestamp", "stream", "message", "timestamp_invalid", "file", "kubernetes"]


def test_the_sort_key_is_the_first_valid_time_else_the_read_time() -> None:
    assert block_of([b"", b"", b"2026-01-01T00:00:04Z"]).sort_key == "2026-01-01T00:00:04Z"
    assert block_of([b"", b""]).sort_key == READ_TEXT
    assert block_of([]).sort_key == ""


async def test_an_untimed_batch_is_partitioned_by_its_read_time(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    try:
        spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
        config = settings()
        pipeline = Pipeline("logs", config, state, spool, encoder=make_log_encoder(config))
        untimed, mixed = block_of([b"", b""]), block_of([b"", b"2026-01-01T00:00:04Z"])
        await pipeline.put(Record(data={}, chunk=untimed, sort_key=untimed.sort_key, position=1))
        await pipeline.flush()
        await pipeline.put(Record(data={}, chunk=untimed, sort_key=untimed.sort_key, position=2))
        await pipeline.put(Record(data={}, chunk=mixed, sort_key=mixed.sort_key, position=3))
        await pipeline.flush()
        # The read time when no line has a time; else the earliest valid time: never 1970, never
        # the time of the commit.
        assert [e.key for e in spool.pending()] == ["logs/dt=2030-01-01/hour=00/kubestream-1-1.ndjson.gz",
                                                    "logs/dt=2026-01-01/hour=00/kubestream-2-3.ndjson.gz"]
    finally:
        state.close()
