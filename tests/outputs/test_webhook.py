"""``WebhookEncoder`` + ``HttpSink``: the archive's record objects with a stable ``record_uid``, as
NDJSON or a JSON array, gzip, basic authentication, splitting, and the answers' classes."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import orjson
import pytest
from tests.logs.test_logs_encode_roundtrip import records as hostile_log_records
from tests.outputs.outputs_support import (
    JOB_KUBE,
    KUBE,
    Receiver,
    Reply,
    cri,
    event_records,
    log_record,
    write_spool,
)

from kubestream.config.outputs import HttpSinkSettings
from kubestream.config.settings import EncodingSettings
from kubestream.errors import SinkFatalError, SinkRejectedError, SinkRetryableError
from kubestream.model import Record
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.encode.logs_ndjson import NdjsonLogEncoder
from kubestream.pipeline.encode.webhook import WebhookEncoder
from kubestream.sinks.base import Sink
from kubestream.sinks.http import HttpSink, parse_retry_after, split_array, split_lines


def _logs() -> list[Record]:
    return [log_record(KUBE), log_record(JOB_KUBE, file_key="2049:78")]


def _encoder(**settings: object) -> WebhookEncoder:
    return WebhookEncoder(HttpSinkSettings(**settings), stream="logs", cluster="c1")  # type: ignore[arg-type]


def test_log_objects_are_the_archive_lines_plus_a_stable_uid() -> None:
    records = hostile_log_records()  # lossless bytes, truncation, partial merges, a JSON message
    archive = [orjson.loads(line) for line in
               NdjsonLogEncoder(EncodingSettings(compression="none"), cluster="c1").encode(records).splitlines()]
    sent = [orjson.loads(line) for line in _encoder().encode(records).splitlines()]
    uids = [item.pop("record_uid") for item in sent]
    assert sent == archive
    assert [list(item) for item in sent] == [list(item) for item in archive]  # same field order
    assert len(set(uids)) == len(uids)
    again = [orjson.loads(line)["record_uid"] for line in _encoder().encode(hostile_log_records()).splitlines()]
    assert again == uids


async def test_event_objects_are_the_archive_records_plus_a_stable_uid(tmp_path: Path) -> None:
    records = await event_records(tmp_path)
    archive = [orjson.loads(line) for line in
               make_encoder(EncodingSettings(compression="none"), cluster="c1").encode(records).splitlines()]
    encoder = WebhookEncoder(HttpSinkSettings(format="json_array"), stream="events", cluster="c1")
    assert encoder.extension == "json"
    sent = orjson.loads(encoder.encode(records))
    uids = [item.pop("record_uid") for item in sent]
    assert sent == archive and len(set(uids)) == 3
    assert [item["record_uid"] for item in orjson.loads(encoder.encode(records))] == uids
    assert records[0].data.get("record_uid") is None  # the pipeline's records are left as they are


async def test_ndjson_gzip_with_basic_authentication(receiver: Receiver, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    settings = HttpSinkSettings(url=f"{receiver.url}/hook", compression="gzip", username="agent",
                                password_file=password, headers={"X-Source": "kubestream"})
    payload = WebhookEncoder(settings, stream="logs", cluster="c1").encode(_logs())
    sink = HttpSink(settings)
    assert isinstance(sink, Sink)
    await sink.check()
    assert receiver.requests == []
    await sink.put("k", write_spool(tmp_path, payload), len(payload))
    await sink.close()
    seen = receiver.requests[0]
    assert seen.path == "/hook"
    assert seen.headers["Content-Type"] == "application/x-ndjson"
    assert seen.headers["Content-Encoding"] == "gzip"
    assert seen.headers["X-Source"] == "kubestream"
    assert seen.headers["Authorization"] == "Basic " + base64.b64encode(b"agent:s3cret").decode()
    assert seen.body == gzip.decompress(payload)  # inflated by the server
    assert len(seen.body.splitlines()) == 8


async def test_a_large_array_is_split_into_arrays_at_record_boundaries(receiver: Receiver, tmp_path: Path) -> None:
    data = b"".join(cri(i % 60, "stdout", b"line %04d " % i + b"q" * 300) for i in range(200))
    settings = HttpSinkSettings(url=f"{receiver.url}/hook", format="json_array", max_request_bytes=8 * 1024,
                                compression="gzip")
    payload = WebhookEncoder(settings, stream="logs", cluster="c1").encode([log_record(KUBE, data=data)])
    sink = HttpSink(settings)
    await sink.put("k", write_spool(tmp_path, payload), len(payload))
    await sink.close()
    assert len(receiver.requests) > 5
    messages = []
    for seen in receiver.requests:
        assert seen.headers["Content-Type"] == "application/json"
        assert len(seen.body) <= 8 * 1024
        messages += [item["message"] for item in orjson.loads(seen.body)]
    assert messages == [f"line {i:04d} " + "q" * 300 for i in range(200)]


def test_splitting_is_deterministic_and_keeps_every_line() -> None:
    lines = b"".join(b"%d\n" % (i * 1000) for i in range(500))
    pieces = list(split_lines(lines, 100))
    assert b"".join(pieces) == lines and all(len(p) <= 100 for p in pieces)
    assert pieces == list(split_lines(lines, 100))
    assert list(split_lines(b"x" * 300 + b"\ny\n", 100)) == [b"x" * 300 + b"\n", b"y\n"]
    array = b"[" + b",\n".join(b'{"n":%d}' % i for i in range(50)) + b"]\n"
    parts = list(split_array(array, 64))
    assert [item["n"] for part in parts for item in orjson.loads(part)] == list(range(50))


@pytest.mark.parametrize(("status", "error"), [
    (500, SinkRetryableError), (503, SinkRetryableError), (429, SinkRetryableError), (408, SinkRetryableError),
    (400, SinkRejectedError), (404, SinkRejectedError), (413, SinkRejectedError),
    (401, SinkFatalError), (403, SinkFatalError),
])
async def test_answers_are_classified(receiver: Receiver, tmp_path: Path, status: int,
                                      error: type[Exception]) -> None:
    receiver.replies.append(Reply(status, {"Retry-After": "3"}))
    settings = HttpSinkSettings(url=f"{receiver.url}/hook")
    payload = WebhookEncoder(settings, stream="logs", cluster=None).encode(_logs())
    sink = HttpSink(settings)
    with pytest.raises(error) as raised:
        await sink.put("k", write_spool(tmp_path, payload), len(payload))
    await sink.close()
    assert type(raised.value) is error
    if isinstance(raised.value, SinkRetryableError):
        assert raised.value.retry_after == 3.0


def test_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 60) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_settings_refuse_half_configured_credentials(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="username and password_file"):
        HttpSinkSettings(url="http://x/", username="a")
    with pytest.raises(ValueError, match="not both"):
        HttpSinkSettings(url="http://x/", username="a", password_file=tmp_path, bearer_token_file=tmp_path)
    with pytest.raises(ValueError, match="go together"):
        HttpSinkSettings(url="http://x/", client_cert_file=tmp_path)
    with pytest.raises(ValueError, match="absolute"):
        HttpSinkSettings(url="ftp://x/")


async def test_an_unreadable_password_file_is_fatal(receiver: Receiver, tmp_path: Path) -> None:
    settings = HttpSinkSettings(url=f"{receiver.url}/hook", username="a", password_file=tmp_path / "missing")
    with pytest.raises(SinkFatalError, match="password_file"):
        await HttpSink(settings).check()


def test_a_destination_without_a_url_is_a_configuration_error() -> None:
    from kubestream.errors import ConfigError

    with pytest.raises(ConfigError, match="URL is required"):
        HttpSink(HttpSinkSettings())
