"""NDJSON (spliced, gzip/zstd/none) and Parquet output of log chunks, read back."""

from __future__ import annotations

import base64
import gzip
import io
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from kubestream.config.settings import EncodingSettings, LogsSettings, Settings
from kubestream.model import Record
from kubestream.sources.logs.chunk import ContainerMeta, FileParser, LogChunk, LogFormat, make_log_encoder
from kubestream.sources.logs.jsonstr import json_string_bodies

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
    return [Record(data={"chunk": c}, sort_key=c.sort_key, position=i, size_hint=c.size_hint)
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
    record = Record(data={"chunk": empty}, sort_key="", position=0)
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
