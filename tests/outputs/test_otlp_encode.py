"""``OtlpEncoder``: requests decoded with the official opentelemetry-proto messages (and
``json_format`` for OTLP/JSON): resources, attributes, severities, timestamps, stable ids."""

from __future__ import annotations

import gzip
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from tests.outputs.outputs_support import (
    JOB_KUBE,
    KUBE,
    READ_TIME_NS,
    attrs,
    cri,
    event_records,
    log_record,
)

from kubestream.config.outputs import OtlpSinkSettings
from kubestream.config.settings import LogsSettings
from kubestream.enrich.block import ContainerMeta
from kubestream.model import LogChunk, Record
from kubestream.pipeline.encode.otlp import OtlpEncoder, rfc3339_to_ns
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser

Request = logs_service_pb2.ExportLogsServiceRequest


def _encoder(stream: str = "logs", **settings: object) -> OtlpEncoder:
    return OtlpEncoder(OtlpSinkSettings(compression="none", **settings), stream=stream,  # type: ignore[arg-type]
                       cluster="prod-eu-1")


def _decode(body: bytes) -> logs_service_pb2.ExportLogsServiceRequest:
    return Request.FromString(body)


def _uids(request: logs_service_pb2.ExportLogsServiceRequest) -> list[str]:
    return [attrs(r)["log.record.uid"] for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]


def test_log_lines_carry_their_pod_once_per_container_and_the_line_attributes() -> None:
    records = [log_record(KUBE, position=0), log_record(JOB_KUBE, position=1, file_key="2049:78"),
               log_record(KUBE, data=cri(9, "stdout", b"later"), offset=500, position=2)]
    request = _decode(_encoder().encode(records))
    assert len(request.resource_logs) == 2  # two containers: the third chunk joins the first resource
    web, job = request.resource_logs
    assert attrs(web.resource) == {
        "k8s.cluster.name": "prod-eu-1", "k8s.namespace.name": "shop", "k8s.pod.name": "web-7d9f8-abcde",
        "k8s.pod.uid": "pod-uid-1", "k8s.node.name": "node-a", "k8s.container.name": "app",
        "k8s.replicaset.name": "web-7d9f8", "k8s.replicaset.uid": "rs-1", "k8s.deployment.name": "web",
        "k8s.deployment.uid": "dep-1", "k8s.pod.label.app": "web", "k8s.pod.label.tier": "front",
        "service.name": "web", "service.namespace": "shop",  # the Deployment's name: no annotation says otherwise
    }
    job_attrs = attrs(job.resource)
    assert job_attrs["k8s.job.name"] == "backup-28000" and job_attrs["k8s.cronjob.name"] == "backup"
    assert job_attrs["k8s.container.name"] == "main"
    scope = web.scope_logs[0]
    assert scope.scope.name == "kubestream"
    lines = scope.log_records
    assert [r.body.string_value for r in lines] == ["GET /healthz 200", "panic: boom", "part one and two", "café",
                                                    "later"]
    first = attrs(lines[0])
    assert first["log.iostream"] == "stdout" and attrs(lines[1])["log.iostream"] == "stderr"
    assert first["log.file.path"] == "/var/log/pods/shop_web-7d9f8-abcde_pod-uid-1/app/0.log"
    # The Collector's container parser sets no severity for stdout/stderr: neither do we.
    assert {r.severity_number for r in lines} == {0}
    assert lines[0].time_unix_nano == rfc3339_to_ns("2026-01-01T00:00:01.123456789Z") == 1_767_225_601_123_456_789
    assert lines[0].observed_time_unix_nano == READ_TIME_NS
    assert len(job.scope_logs[0].log_records) == 4  # the P and F parts are one line


def test_ids_are_stable_and_distinct() -> None:
    records = [log_record(KUBE), log_record(JOB_KUBE, file_key="2049:78")]
    once, again = _encoder().encode(records), _encoder().encode(records)
    assert once == again  # same input, same bytes
    uids = _uids(_decode(once))
    assert len(uids) == len(set(uids)) == 8
    # The same lines read again after a restart (a new chunk object, a new read time): the same ids.
    reread = [log_record(KUBE), log_record(JOB_KUBE, file_key="2049:78")]
    reread[0].chunk.read_time_ns += 5
    assert _uids(_decode(_encoder().encode(reread))) == uids
    # Other bytes of the same file (another offset) or another file: other ids.
    later = _uids(_decode(_encoder().encode([log_record(KUBE, offset=4096)])))
    assert not set(later) & set(uids)
    # The line's id ends with its byte offset in the file.
    offsets = records[0].chunk.block.offsets
    assert [u.rsplit("-", 1)[1] for u in uids[:4]] == [str(o) for o in offsets]


def test_the_file_identity_of_the_checkpoint_wins_over_the_inode() -> None:
    class Checkpoint:
        fingerprint = "abc@shop_web_pod-uid-1/app"

        def apply(self, conn: object) -> None:
            pass

    one = log_record(KUBE, file_key="1:1")
    two = log_record(KUBE, file_key="9:9")  # the same file after gzip rotation: another inode
    one.checkpoint = two.checkpoint = Checkpoint()
    assert _uids(_decode(_encoder().encode([one]))) == _uids(_decode(_encoder().encode([two])))


def test_untimed_truncated_and_invalid_utf8_lines() -> None:
    settings = LogsSettings(invalid_utf8="lossless", max_line_bytes=1024)
    data = b"not a cri line\n" + cri(2, "stdout", b"x" * 2000) + cri(3, "stderr", b"caf\xff")
    block = FileParser(LogFormat.CRI, settings).feed(data, 0)
    chunk = LogChunk(block, ContainerMeta.build(KUBE), "/var/log/pods/x/app/0.log", read_time_ns=READ_TIME_NS)
    request = _decode(_encoder().encode([Record(data={}, chunk=chunk, sort_key="", position=0)]))
    lines = request.resource_logs[0].scope_logs[0].log_records
    assert lines[0].time_unix_nano == 0 and lines[0].observed_time_unix_nano == READ_TIME_NS
    assert attrs(lines[1])["kubestream.truncated"] is True
    assert attrs(lines[2])["kubestream.message_bytes"] == b"caf\xff"
    assert lines[2].body.string_value == "caf\ufffd"


async def test_events_map_type_to_severity_and_group_by_involved_object(tmp_path: Path) -> None:
    records = await event_records(tmp_path)
    assert len(records) == 3
    request = _decode(_encoder("events").encode(records))
    by_pod = {attrs(rl.resource).get("k8s.pod.name"): rl for rl in request.resource_logs}
    assert set(by_pod) == {"web-7d9f8-abcde", None}
    pod = by_pod["web-7d9f8-abcde"]
    assert attrs(pod.resource) == {"k8s.cluster.name": "prod-eu-1", "k8s.namespace.name": "shop",
                                   "k8s.pod.name": "web-7d9f8-abcde", "k8s.pod.uid": "u-e1",
                                   "service.name": "web-7d9f8-abcde", "service.namespace": "shop"}
    warning, normal = pod.scope_logs[0].log_records
    assert (warning.severity_number, warning.severity_text) == (13, "Warning")
    assert (normal.severity_number, normal.severity_text) == (9, "Normal")
    assert warning.body.string_value == "message of e1"
    a = attrs(warning)
    assert a["k8s.event.reason"] == "BackOff" and a["k8s.event.count"] == 3 and a["k8s.event.count_delta"] == 3
    assert a["k8s.event.uid"] == "e1" and a["k8s.object.kind"] == "Pod" and a["k8s.object.uid"] == "u-e1"
    assert a["k8s.event.source_component"] == "kubelet"
    assert warning.time_unix_nano == rfc3339_to_ns(records[0].data["timestamp"])
    node = by_pod[None]
    assert attrs(node.resource)["k8s.node.name"] == "node-a"
    assert attrs(node.resource)["k8s.namespace.name"] == "default"
    uids = _uids(request)
    assert len(set(uids)) == 3 and uids == _uids(_decode(_encoder("events").encode(records)))


def test_json_encoding_and_gzip() -> None:
    records = [log_record(KUBE)]
    as_protobuf = _decode(_encoder().encode(records))
    encoder = OtlpEncoder(OtlpSinkSettings(encoding="json"), stream="logs", cluster="prod-eu-1")
    assert encoder.extension == "otlp.json.gz" and encoder.content_type == "application/json"
    body = gzip.decompress(encoder.encode(records))
    as_json = json_format.Parse(body, Request())
    assert as_json == as_protobuf
    assert b'"severityNumber"' not in body  # unset enums stay out; set ones are integers (OTLP/JSON)
    gz = OtlpEncoder(OtlpSinkSettings(), stream="logs", cluster="prod-eu-1")
    assert gz.extension == "otlp.pb.gz"
    assert Request.FromString(gzip.decompress(gz.encode(records))) == as_protobuf


def test_an_empty_batch_and_long_lines() -> None:
    assert _decode(_encoder().encode([])) == Request()
    long = log_record(KUBE, data=cri(1, "stdout", b"y" * 100_000))
    lines = _decode(_encoder().encode([long])).resource_logs[0].scope_logs[0].log_records
    assert lines[0].body.string_value == "y" * 100_000


async def test_json_is_the_same_request_for_events_and_unusual_lines(tmp_path: Path) -> None:
    settings = LogsSettings(invalid_utf8="lossless", max_line_bytes=1024)
    data = b"not a cri line\n" + cri(2, "stdout", b"x" * 2000) + cri(3, "stderr", b"caf\xff")
    block = FileParser(LogFormat.CRI, settings).feed(data, 0)
    odd = Record(data={}, chunk=LogChunk(block, ContainerMeta.build(KUBE), "/p", read_time_ns=READ_TIME_NS),
                 sort_key="", position=0)
    events = await event_records(tmp_path)
    for stream, records in (("logs", [log_record(KUBE), odd, log_record(JOB_KUBE, file_key="9:9")]),
                            ("events", events)):
        as_protobuf = _decode(_encoder(stream).encode(records))
        as_json = json_format.Parse(_encoder(stream, encoding="json").encode(records), Request())
        assert as_json == as_protobuf
        assert len(as_json.resource_logs) >= 2


def test_resource_annotations_name_the_service() -> None:
    annotated = {**KUBE, "annotations": {"resource.opentelemetry.io/service.name": "checkout",
                                         "resource.opentelemetry.io/service.version": "1.4.2",
                                         "resource.opentelemetry.io/k8s.pod.name": "ignored", "other": "x"}}
    resource = attrs(_decode(_encoder().encode([log_record(annotated)])).resource_logs[0].resource)
    assert resource["service.name"] == "checkout" and resource["service.version"] == "1.4.2"
    assert resource["service.namespace"] == "shop"
    assert resource["k8s.pod.name"] == "web-7d9f8-abcde"  # an annotation never overrides what the agent knows
    assert "other" not in resource
