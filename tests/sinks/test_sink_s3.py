"""The S3 sink against a real S3-protocol server (moto in server mode): keys, bytes,
idempotent overwrites, multipart, storage class, encryption, the write check, the factory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import FaultProxy, MotoServer, s3_settings
from kubestream.config.settings import FileSinkSettings, Settings, SinkSettings
from kubestream.errors import ConfigError, SinkFatalError
from kubestream.sinks.base import Sink, SinkReader
from kubestream.sinks.factory import make_sink
from kubestream.sinks.file import FileSink
from kubestream.sinks.s3 import S3Sink

MiB = 1024 * 1024


def _spool_file(tmp_path: Path, payload: bytes, name: str = "batch") -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


async def test_put_stores_exact_bytes_under_the_given_key(moto_server: MotoServer, bucket: str,
                                                          tmp_path: Path) -> None:
    sink = S3Sink(s3_settings(moto_server.endpoint, bucket))
    payload = os.urandom(70_000)
    key = "prod/events/dt=2024-05-01/hour=23/ks-1-70.ndjson.gz"
    await sink.put(key, _spool_file(tmp_path, payload), len(payload))
    assert moto_server.keys(bucket) == [key]
    assert moto_server.read(bucket, key) == payload
    await sink.close()


async def test_replaying_a_key_overwrites_it_with_one_object(moto_server: MotoServer, bucket: str,
                                                             tmp_path: Path) -> None:
    sink = S3Sink(s3_settings(moto_server.endpoint, bucket))
    payload = os.urandom(1000)
    source = _spool_file(tmp_path, payload)
    for _ in range(3):
        await sink.put("events/a-1-9.ndjson", source, len(payload))
    assert moto_server.keys(bucket) == ["events/a-1-9.ndjson"]
    assert moto_server.read(bucket, "events/a-1-9.ndjson") == payload


async def test_multipart_above_the_threshold_with_storage_class_and_sse(moto_server: MotoServer, bucket: str,
                                                                        tmp_path: Path) -> None:
    settings = s3_settings(moto_server.endpoint, bucket, multipart_threshold_bytes=5 * MiB,
                           multipart_chunk_bytes=5 * MiB, storage_class="STANDARD_IA", sse="AES256")
    sink = S3Sink(settings)
    big = os.urandom(11 * MiB)
    small = os.urandom(1000)
    await sink.put("big", _spool_file(tmp_path, big, "big"), len(big))
    await sink.put("small", _spool_file(tmp_path, small, "small"), len(small))
    head_big = moto_server.head(bucket, "big")
    head_small = moto_server.head(bucket, "small")
    # A multipart ETag is "<md5 of the part md5s>-<number of parts>": 11 MiB in 5 MiB parts.
    assert head_big["etag"].strip('"').endswith("-3")
    assert "-" not in head_small["etag"].strip('"')
    for head in (head_big, head_small):
        assert head["x-amz-storage-class"] == "STANDARD_IA"
        assert head["x-amz-server-side-encryption"] == "AES256"
    assert moto_server.read(bucket, "big") == big


async def test_sse_kms_key_reaches_the_server(moto_server: MotoServer, bucket: str, tmp_path: Path) -> None:
    key_id = moto_server.admin("kms-key")["key_id"]
    sink = S3Sink(s3_settings(moto_server.endpoint, bucket, sse="aws:kms", sse_kms_key_id=key_id))
    await sink.put("k", _spool_file(tmp_path, b"secret"), 6)
    head = moto_server.head(bucket, "k")
    assert head["x-amz-server-side-encryption"] == "aws:kms"
    assert key_id in head["x-amz-server-side-encryption-aws-kms-key-id"]


async def test_no_flexible_checksum_headers_are_sent(fault_proxy: FaultProxy, moto_server: MotoServer,
                                                     bucket: str, tmp_path: Path) -> None:
    """Several S3-compatible servers reject the CRC32 checksum headers recent AWS SDKs add."""
    sink = S3Sink(s3_settings(fault_proxy.endpoint, bucket, multipart_threshold_bytes=5 * MiB,
                              multipart_chunk_bytes=5 * MiB))
    await sink.put("small", _spool_file(tmp_path, b"x" * 100, "s"), 100)
    await sink.put("big", _spool_file(tmp_path, b"y" * (6 * MiB), "b"), 6 * MiB)
    sent = {name for headers in fault_proxy.log.headers for name in headers}
    assert not [name for name in sent if "checksum" in name], sent
    assert ("PUT", f"/{bucket}/small") in fault_proxy.log.requests  # path style on custom endpoints


async def test_check_leaves_no_probe_object(moto_server: MotoServer, bucket: str) -> None:
    sink = S3Sink(s3_settings(moto_server.endpoint, bucket), prefix="/prod/eu-1/")
    await sink.check()
    assert moto_server.keys(bucket) == []


async def test_check_probes_under_the_prefix(fault_proxy: FaultProxy, bucket: str) -> None:
    sink = S3Sink(s3_settings(fault_proxy.endpoint, bucket), prefix="prod/eu-1")
    await sink.check()
    probes = [path for method, path in fault_proxy.log.requests if method == "PUT"]
    assert len(probes) == 1
    assert probes[0].startswith(f"/{bucket}/prod/eu-1/.kubestream-write-check-")
    assert ("DELETE", probes[0]) in fault_proxy.log.requests


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"bucket": ""}, "sink.s3.bucket"),
        ({"endpoint_url": "minio:9000"}, "sink.s3.endpoint_url"),
        ({"endpoint_url": "http://127.0.0.1:notaport"}, "sink.s3.endpoint_url"),
        ({"sse_kms_key_id": "k"}, "sink.s3.sse_kms_key_id"),
        ({"access_key_id": None}, "sink.s3"),
    ],
)
def test_unusable_settings_are_config_errors_naming_the_key(overrides: dict[str, object], key: str) -> None:
    settings = s3_settings("http://127.0.0.1:9", "bkt").model_copy(update=overrides)
    with pytest.raises(ConfigError) as caught:
        S3Sink(settings)
    assert caught.value.key == key
    assert "\n" not in str(caught.value)


def test_factory_builds_the_configured_sink(tmp_path: Path, moto_server: MotoServer) -> None:
    file_settings = Settings(sink=SinkSettings(type="file", file=FileSinkSettings(dir=tmp_path)))
    file_sink = make_sink(file_settings)
    assert isinstance(file_sink, FileSink)
    s3 = Settings(sink=SinkSettings(type="s3", prefix="p", s3=s3_settings(moto_server.endpoint, "bkt")))
    s3_sink = make_sink(s3)
    assert isinstance(s3_sink, S3Sink)
    assert isinstance(s3_sink, Sink)
    assert s3_sink.name == "s3"


async def test_the_archive_reads_back_for_a_takeover(moto_server: MotoServer, bucket: str, tmp_path: Path) -> None:
    sink = S3Sink(s3_settings(moto_server.endpoint, bucket))
    assert isinstance(sink, SinkReader)
    keys = [f"p/s/dt=2026-01-01/hour=0{h}/ks-{n}.ndjson" for h in (0, 1) for n in range(3)]
    for n, key in enumerate(keys):
        await sink.put(key, _spool_file(tmp_path, f"batch {n}".encode(), f"b{n}"), len(f"batch {n}"))
    await sink.put("p/s/dt=2026-01-010/x.ndjson", _spool_file(tmp_path, b"other", "o"), 5)
    # Path-segment prefixes: dt=2026-01-01/ does not match dt=2026-01-010/.
    assert sorted(await sink.list_keys("p/s/dt=2026-01-01/")) == keys
    assert sorted(await sink.list_keys("p/s/dt=2026-01-01/hour=01/")) == keys[3:]
    assert await sink.list_keys("p/nothing/") == []
    assert await sink.get(keys[4]) == b"batch 4"
    with pytest.raises(SinkFatalError, match=r"reading p/missing: NoSuchKey \(HTTP 404\)"):
        await sink.get("p/missing")
