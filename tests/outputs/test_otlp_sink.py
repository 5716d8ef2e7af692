"""``OtlpSink`` against a receiver on 127.0.0.1: what it sends (decoded with the official
messages), credentials, TLS with a client certificate, and how each answer is classified."""

from __future__ import annotations

import email.utils
import gzip
import socket
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from tests.outputs.outputs_support import (
    JOB_KUBE,
    KUBE,
    MutualTls,
    Receiver,
    Reply,
    attrs,
    cri,
    decode_request,
    log_record,
    tls_server_only,
    write_spool,
)

from kubestream.config.interpolate import interpolate_tree
from kubestream.config.outputs import OtlpSinkSettings
from kubestream.errors import SinkFatalError, SinkRejectedError, SinkRetryableError, SinkUnreachableError
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.encode.otlp import OtlpEncoder
from kubestream.sinks.base import Sink
from kubestream.sinks.otlp import OtlpSink, split_protobuf


def _settings(receiver: Receiver, **extra: object) -> OtlpSinkSettings:
    return OtlpSinkSettings(endpoint=f"{receiver.url}/v1/logs", **extra)  # type: ignore[arg-type]


def _payload(settings: OtlpSinkSettings) -> bytes:
    encoder = OtlpEncoder(settings, stream="logs", cluster="c1")
    return encoder.encode([log_record(KUBE), log_record(JOB_KUBE, file_key="2049:78")])


async def _put(sink: OtlpSink, settings: OtlpSinkSettings, tmp_path: Path) -> None:
    payload = _payload(settings)
    try:
        await sink.put("logs/part-1", write_spool(tmp_path, payload), len(payload))
    finally:
        await sink.close()


async def test_posts_gzip_protobuf_with_headers_and_a_rotated_token(receiver: Receiver, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    settings = _settings(receiver, headers={"X-Scope-OrgID": "tenant-1"}, bearer_token_file=token)
    sink = OtlpSink(settings)
    assert isinstance(sink, Sink)
    payload = _payload(settings)
    spool = write_spool(tmp_path, payload)
    await sink.put("k", spool, len(payload))
    token.write_text("second")
    await sink.put("k", spool, len(payload))
    await sink.close()
    first, second = receiver.requests
    assert first.path == "/v1/logs"
    assert first.headers["Content-Type"] == "application/x-protobuf"
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["X-Scope-OrgID"] == "tenant-1"
    assert first.headers["Authorization"] == "Bearer first"
    assert second.headers["Authorization"] == "Bearer second"
    assert first.body == gzip.decompress(payload)  # the server inflated it, as its Content-Encoding says
    request = decode_request(first.body, first.headers)
    assert [attrs(rl.resource)["k8s.pod.name"] for rl in request.resource_logs] == ["web-7d9f8-abcde",
                                                                                      "backup-28000-x1"]


async def test_json_encoding_uncompressed(receiver: Receiver, tmp_path: Path) -> None:
    settings = _settings(receiver, encoding="json", compression="none")
    await _put(OtlpSink(settings), settings, tmp_path)
    seen = receiver.requests[0]
    assert seen.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in seen.headers
    request = decode_request(seen.body, seen.headers)
    assert sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs) == 8


async def test_mutual_tls(mutual_tls: MutualTls, tmp_path: Path) -> None:
    server = await Receiver().start(mutual_tls.server)
    try:
        settings = _settings(server, ca_file=mutual_tls.ca_file, client_cert_file=mutual_tls.client_cert,
                             client_key_file=mutual_tls.client_key)
        sink = OtlpSink(settings)
        await sink.check()
        assert server.requests == []  # the check sends nothing
        await _put(sink, settings, tmp_path)
        assert server.url.startswith("https://")
        peer = server.requests[0].peer_cert
        assert peer is not None and peer["subject"] == ((("commonName", "kubestream-agent"),),)
        # Without the CA the server is not trusted: retrying cannot help.
        untrusted = OtlpSink(_settings(server, client_cert_file=mutual_tls.client_cert,
                                       client_key_file=mutual_tls.client_key))
        with pytest.raises(SinkFatalError, match="not trusted"):
            await untrusted.check()
        with pytest.raises(SinkFatalError):
            await _put(untrusted, settings, tmp_path)
    finally:
        await server.stop()


@pytest.mark.parametrize(("status", "error"), [
    (429, SinkRetryableError), (502, SinkRetryableError), (503, SinkRetryableError), (504, SinkRetryableError),
    (400, SinkRejectedError), (413, SinkRejectedError), (404, SinkRejectedError), (500, SinkRejectedError),
    (401, SinkFatalError), (403, SinkFatalError), (308, SinkFatalError),
])
async def test_answers_are_classified_per_the_otlp_specification(
        receiver: Receiver, tmp_path: Path, status: int, error: type[Exception]) -> None:
    receiver.replies.append(Reply(status, body=b"no"))
    settings = _settings(receiver)
    with pytest.raises(error) as raised:
        await _put(OtlpSink(settings), settings, tmp_path)
    assert type(raised.value) is error
    assert str(status) in str(raised.value)


async def test_retry_after_in_seconds_and_as_a_date(receiver: Receiver, tmp_path: Path) -> None:
    settings = _settings(receiver)
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    receiver.replies += [Reply(429, {"Retry-After": "7"}), Reply(503, {"Retry-After": later}), Reply(503)]
    delays = []
    for _ in range(3):
        with pytest.raises(SinkRetryableError) as raised:
            await _put(OtlpSink(settings), settings, tmp_path)
        delays.append(raised.value.retry_after)
    assert delays[0] == 7.0
    assert delays[1] is not None and 100 < delays[1] <= 120
    assert delays[2] is None


async def test_partial_success_is_counted_and_not_retried(receiver: Receiver, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    response = logs_service_pb2.ExportLogsServiceResponse()
    response.partial_success.rejected_log_records = 3
    response.partial_success.error_message = "too old"
    receiver.replies += [Reply(200, {"Content-Type": "application/x-protobuf"}, response.SerializeToString()),
                         Reply(200, {"Content-Type": "application/json"},
                               b'{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old"}}')]
    metrics = Metrics()
    settings = _settings(receiver)
    sink = OtlpSink(settings, metrics=metrics)
    payload = _payload(settings)
    spool = write_spool(tmp_path, payload)
    await sink.put("k", spool, len(payload))
    await sink.put("k", spool, len(payload))
    await sink.close()
    assert sink.rejected_total == 5
    assert metrics.registry.get_sample_value("kubestream_records_dropped_total",
                                             {"source": "otlp", "reason": "otlp_rejected"}) == 5
    assert sum("rejected 3 log records" in r.getMessage() for r in caplog.records) == 1
    assert not any("rejected 2" in r.getMessage() for r in caplog.records)  # logged once


async def test_no_answer_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = OtlpSinkSettings(endpoint=f"http://127.0.0.1:{port}/v1/logs", timeout_s=2)
    sink = OtlpSink(settings)
    with pytest.raises(SinkUnreachableError):
        await sink.check()
    with pytest.raises(SinkUnreachableError):
        await _put(sink, settings, tmp_path)


async def test_a_large_payload_is_split_between_records(receiver: Receiver, tmp_path: Path) -> None:
    data = b"".join(cri(i % 60, "stdout", b"line %05d " % i + b"z" * 200) for i in range(400))
    records = [log_record(KUBE, data=data), log_record(JOB_KUBE, data=data, file_key="2049:78")]
    settings = _settings(receiver, max_request_bytes=16 * 1024)
    payload = OtlpEncoder(settings, stream="logs", cluster="c1").encode(records)
    whole = logs_service_pb2.ExportLogsServiceRequest.FromString(gzip.decompress(payload))
    sink = OtlpSink(settings)
    spool = write_spool(tmp_path, payload)
    await sink.put("k", spool, len(payload))
    first_round = [seen.body for seen in receiver.requests]
    await sink.put("k", spool, len(payload))  # a retry sends the same parts again
    await sink.close()
    assert len(first_round) > 10
    assert [seen.body for seen in receiver.requests[len(first_round):]] == first_round
    lines: list[tuple[str, str]] = []
    for seen in receiver.requests[:len(first_round)]:
        assert seen.headers["Content-Encoding"] == "gzip"
        assert len(seen.body) <= 16 * 1024  # inflated by the server
        request = decode_request(seen.body, seen.headers)
        for rl in request.resource_logs:
            pod = attrs(rl.resource)["k8s.pod.name"]
            lines += [(pod, r.body.string_value) for sl in rl.scope_logs for r in sl.log_records]
    expected = [(attrs(rl.resource)["k8s.pod.name"], r.body.string_value)
                for rl in whole.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert lines == expected and len(lines) == 800


def test_split_protobuf_keeps_small_requests_whole() -> None:
    body = OtlpEncoder(OtlpSinkSettings(compression="none"), stream="logs", cluster="c").encode([log_record(KUBE)])
    assert split_protobuf(body, 1 << 20) == [body]


async def test_insecure_skip_tls_verify_is_warned_about_and_connects(
        mutual_tls: MutualTls, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    plain_tls = tls_server_only(mutual_tls)
    server = await Receiver().start(plain_tls)
    try:
        settings = _settings(server, insecure_skip_tls_verify=True)
        sink = OtlpSink(settings)
        assert any("insecure_skip_tls_verify" in r.getMessage() for r in caplog.records)
        await sink.check()
        await _put(sink, settings, tmp_path)
        assert len(server.requests) == 1
    finally:
        await server.stop()


def test_header_values_take_environment_references_and_stay_secret() -> None:
    raw = interpolate_tree({"endpoint": "https://loki.example.com/otlp/v1/logs",
                            "headers": {"X-Scope-OrgID": "${TENANT}", "Authorization": "Bearer ${TOKEN}"}},
                           {"TENANT": "team-a", "TOKEN": "t0k3n"})
    settings = OtlpSinkSettings.model_validate(raw)
    assert settings.headers["X-Scope-OrgID"].get_secret_value() == "team-a"
    assert "t0k3n" not in repr(settings) and "t0k3n" not in str(settings.model_dump())
