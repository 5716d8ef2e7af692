"""Encoders round-trip: NDJSON and protobuf, each through gzip (ISA-L), zstd and none."""

from __future__ import annotations

import gzip
import json
from typing import Any

import orjson
import pytest
import zstandard

from kubestream.config.settings import EncodingSettings
from kubestream.model import Record
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.encode.protobuf import frame, unframe
from kubestream.pipeline.proto import k8stream_pb2, kubestream_pb2


def event_record() -> dict[str, Any]:
    return {
        "kind": "event",
        "timestamp": "2024-05-01T10:00:00Z",
        "event": {
            "uid": "e-1", "name": "web-1.17c", "namespace": "shop", "resource_version": 9001,
            "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning",
            "action": "", "count": 7, "count_delta": 1, "first_timestamp": "2024-05-01T09:00:00Z",
            "last_timestamp": "2024-05-01T10:00:00Z", "event_time": None, "series_count": 3,
            "reporting_controller": "kubelet", "reporting_instance": "node-a", "source_component": "kubelet",
            "source_host": "node-a", "api": "core/v1",
        },
        "involved": {"kind": "Pod", "name": "web-1", "namespace": "shop", "uid": "p-1", "api_version": "v1",
                     "field_path": "spec.containers{web}", "resource_version": "77"},
        "related": {"kind": "Node", "name": "node-a", "uid": "n-1"},
        "kubernetes": {
            "namespace": "shop", "namespace_labels": {"team": "payments"}, "object_kind": "Pod",
            "object_name": "web-1", "object_uid": "p-1", "labels": {"app": "web"}, "annotations": {},
            "pod_name": "web-1", "pod_uid": "p-1", "pod_ip": "10.0.0.7", "owner_kind": "Deployment",
            "owner_name": "web", "owner_uid": "d-1",
            "owners": [{"kind": "ReplicaSet", "name": "web-5d", "uid": "rs-1", "controller": True},
                       {"kind": "Deployment", "name": "web", "uid": "d-1"}],
            "node_name": "node-a", "node_ip": "192.168.1.10", "node_labels": {"zone": "a"},
            "services": ["web", "web-headless"], "object_deleted": False, "enrichment": "complete",
        },
    }


def odd_record() -> dict[str, Any]:
    """Everything the typed message cannot hold, which must survive anyway."""
    return {
        "kind": "log",
        "timestamp": "2024-05-01T10:00:01.5Z",
        "message": "GET /healthz 200",
        "stream": "stdout",
        "file": {"path": "/var/log/pods/x/0.log", "offset": 12345},  # unknown key
        "event": {"count": "seven", "uid": None, "extra": [1, 2.5, {"x": None}]},  # wrong types, unknown
        "kubernetes": {"labels": {"n": 1}, "owners": [{"kind": "X", "weird": 1}], "services": [],
                       "object_deleted": 0, "node_labels": {"a": "b"}},
        "involved": "not a dict",
        "ünïcode": "✓ 雪",
    }


def records(items: list[dict[str, Any]]) -> list[Record]:
    return [Record(data=d, sort_key=d.get("timestamp", ""), position=i) for i, d in enumerate(items)]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
@pytest.mark.parametrize("fmt", ["ndjson", "protobuf"])
def test_round_trip_is_lossless(fmt: str, compression: str) -> None:
    codec = make_encoder(EncodingSettings(format=fmt, compression=compression))
    items = [event_record(), odd_record(), {"kind": "event"}, {}]
    payload = codec.encode(records(items))
    assert codec.decode(payload) == items


@pytest.mark.parametrize(("fmt", "compression", "extension"), [
    ("ndjson", "gzip", "ndjson.gz"), ("ndjson", "none", "ndjson"), ("protobuf", "zstd", "pb.zst"),
])
def test_extension_names_format_and_compression(fmt: str, compression: str, extension: str) -> None:
    settings = EncodingSettings(format=fmt, compression=compression)
    assert make_encoder(settings).extension == extension


def test_outputs_are_standard_formats_readable_without_kubestream() -> None:
    items = [event_record(), odd_record()]
    gz = make_encoder(EncodingSettings(format="ndjson", compression="gzip")).encode(records(items))
    lines = gzip.decompress(gz).splitlines()
    assert [orjson.loads(line) for line in lines] == items
    zst = make_encoder(EncodingSettings(format="ndjson", compression="zstd")).encode(records(items))
    assert zstandard.ZstdDecompressor().decompress(zst) == gzip.decompress(gz)


def test_protobuf_typed_fields_carry_the_known_schema() -> None:
    pb = make_encoder(EncodingSettings(format="protobuf", compression="none")).encode(records([event_record()]))
    (raw,) = unframe(pb)
    msg = kubestream_pb2.Record.FromString(raw)
    assert msg.event.count == 7 and msg.event.reason == "BackOff" and msg.event.resource_version == 9001
    assert msg.related.kind == "Node"
    assert dict(msg.kubernetes.labels) == {"app": "web"}
    assert [o.kind for o in msg.kubernetes.owners] == ["ReplicaSet", "Deployment"]
    assert list(msg.kubernetes.services) == ["web", "web-headless"]
    # Only what the types cannot express is left for extra_json: the null and the empty map.
    assert orjson.loads(msg.extra_json) == {"event": {"event_time": None}, "kubernetes": {"annotations": {}}}


def test_k8stream_message_matches_its_field_numbers_and_mapping() -> None:
    fields = {f.name: f.number for f in k8stream_pb2.L9Event.DESCRIPTOR.fields}
    assert fields == {"ID": 1, "Timestamp": 2, "Component": 3, "Host": 4, "Message": 5, "Namespace": 6, "Reason": 7,
                      "ReferenceUID": 8, "ReferenceNamespace": 9, "ReferenceName": 10, "ReferenceKind": 11,
                      "ReferenceVersion": 12, "ObjectUid": 13, "Labels": 14, "Annotations": 15, "Address": 16}
    codec = make_encoder(EncodingSettings(format="protobuf", compression="gzip", protobuf_message="k8stream"))
    (decoded,) = codec.decode(codec.encode(records([event_record()])))
    assert decoded == {
        "ID": "e-1", "Timestamp": 1714557600, "Component": "kubelet", "Host": "node-a",
        "Message": "Back-off restarting failed container", "Namespace": "shop", "Reason": "BackOff",
        "ReferenceUID": "p-1", "ReferenceNamespace": "shop", "ReferenceName": "web-1", "ReferenceKind": "Pod",
        "ReferenceVersion": "v1", "ObjectUid": "p-1", "Labels": {"app": "web"}, "Address": ["192.168.1.10"],
    }


def test_values_orjson_refuses_are_still_written_as_json() -> None:
    codec = make_encoder(EncodingSettings(format="ndjson", compression="none"))
    payload = codec.encode(records([{"timestamp": "t", "big": 2**70, "ok": "✓"}]))
    assert json.loads(payload) == {"timestamp": "t", "big": 2**70, "ok": "✓"}


def test_length_delimited_framing_handles_multi_byte_lengths() -> None:
    messages = [b"", b"x" * 127, b"y" * 128, b"z" * 70000]
    assert unframe(frame(messages)) == messages


def test_gzip_level_above_isal_range_is_capped_not_rejected() -> None:
    codec = make_encoder(EncodingSettings(compression="gzip", gzip_level=9))
    assert codec.decode(codec.encode(records([event_record()]))) == [event_record()]
