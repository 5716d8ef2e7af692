"""Generate an archive as the agent writes it: one small object per batch, real encoders, real names.

Events are records of the documented shape (docs/schema.md, ~1.1 KB of JSON each), encoded by the
agent's own codec (NDJSON gzip/zstd or protobuf); logs are CRI lines parsed by the agent's parser
into ``LogChunk``s and encoded by its log encoder (NDJSON or Parquet). Keys come from
``pipeline.naming.batch_key``. Every record has an identity (events: uid and count; logs: file path
and offset) so a reader can be checked against the ledger of what was written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubestream.config.settings import ClusterSettings, EncodingSettings, LogsSettings, Settings
from kubestream.enrich.block import ContainerMeta
from kubestream.model import LogChunk, Record
from kubestream.pipeline.encode import make_encoder, make_log_encoder
from kubestream.pipeline.naming import batch_key
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser

REASONS = ["BackOff", "Pulled", "Created", "Started", "Killing", "Unhealthy", "FailedScheduling", "Scheduled"]


@dataclass
class Ledger:
    """What was written: record identities per stream."""

    events: set[tuple[str, int]] = field(default_factory=set)
    logs: set[tuple[str, int]] = field(default_factory=set)
    keys: list[str] = field(default_factory=list)
    bytes: int = 0


def event_record(n: int, when: dt.datetime, *, node: int = 0, count: int = 1, tag: str = "ev") -> dict[str, Any]:
    """One event record of the documented shape."""
    pod = f"web-{n % 97:02d}-7d9f8-abcde"
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "kind": "event", "timestamp": stamp,
        "event": {
            "uid": f"{tag}-{n:08d}", "name": f"{pod}.17c9a2b3f4e5d6c7", "namespace": "shop",
            "resource_version": 1000 + n, "reason": REASONS[n % len(REASONS)],
            "message": f"Back-off restarting failed container web in pod {pod}_shop({n})",
            "type": "Warning" if n % 3 == 0 else "Normal", "action": "", "count": count, "count_delta": 1,
            "first_timestamp": stamp, "last_timestamp": stamp, "event_time": None, "series_count": None,
            "reporting_controller": "", "reporting_instance": "", "source_component": "kubelet",
            "source_host": f"node-{node:03d}", "api": "core/v1",
        },
        "involved": {"kind": "Pod", "name": pod, "namespace": "shop", "uid": f"pod-{n % 97:04d}",
                     "api_version": "v1", "field_path": "spec.containers{web}", "resource_version": str(900 + n)},
        "kubernetes": {
            "enrichment": "ok", "namespace": "shop", "namespace_labels": {"team": "checkout"},
            "object_kind": "Pod", "object_name": pod, "object_uid": f"pod-{n % 97:04d}", "object_deleted": False,
            "labels": {"app": "web", "pod-template-hash": "7d9f8"}, "pod_name": pod, "pod_uid": f"pod-{n % 97:04d}",
            "pod_ip": "10.0.3.17", "container_name": "web", "container_image": "registry.example/web:1.4.2",
            "owner_kind": "Deployment", "owner_name": "web", "owner_uid": "9e8d7c6b-1111",
            "owners": [{"kind": "ReplicaSet", "name": "web-7d9f8", "uid": "7a6b5c4d"},
                       {"kind": "Deployment", "name": "web", "uid": "9e8d7c6b-1111"}],
            "node_name": f"node-{node:03d}", "node_ip": "192.168.1.20",
            "node_labels": {"topology.kubernetes.io/zone": "eu-1a"}, "services": ["web"],
        },
    }


def _write(root: Path, key: str, payload: bytes, ledger: Ledger) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    ledger.keys.append(key)
    ledger.bytes += len(payload)


def write_events(root: Path, ledger: Ledger, *, start: dt.datetime, hours: int, objects_per_hour: int,
                 records_per_object: int, encoding: EncodingSettings | None = None,
                 stream_uid: str = "kubestream", prefix: str = "", cluster: str | None = None) -> None:
    """Event batches spread evenly over ``hours`` hours from ``start``; with ``cluster``, every
    record carries it as the agent writes it (``cluster.name``)."""
    codec = make_encoder(encoding or EncodingSettings(), cluster=cluster)
    n = 0
    step = dt.timedelta(hours=1) / objects_per_hour
    for hour in range(hours):
        for obj in range(objects_per_hour):
            when = start + dt.timedelta(hours=hour) + step * obj
            batch = [event_record(n + i, when + dt.timedelta(milliseconds=i), tag=stream_uid)
                     for i in range(records_per_object)]
            key = batch_key(prefix=prefix, stream="events", stream_uid=stream_uid, timestamp=when,
                            first_position=1000 + n, last_position=1000 + n + records_per_object - 1,
                            extension=codec.extension)
            _write(root, key, codec.encode_dicts(batch), ledger)
            ledger.events.update((r["event"]["uid"], r["event"]["count"]) for r in batch)
            n += records_per_object


def _kube(pod: int, node: int) -> dict[str, Any]:
    name = f"checkout-{pod:03d}-7d9f8"
    return {
        "enrichment": "ok", "namespace": "shop", "namespace_labels": {"team": "checkout"}, "object_kind": "Pod",
        "object_name": name, "object_uid": f"uid-{pod:04d}", "object_deleted": False,
        "labels": {"app": "checkout"}, "annotations": {}, "pod_name": name, "pod_uid": f"uid-{pod:04d}",
        "pod_ip": f"10.0.{node}.{pod % 250}", "container_name": "app", "container_image": "checkout:2.1",
        "container_id": f"containerd://{pod:064d}", "owner_kind": "Deployment", "owner_name": "checkout",
        "owner_uid": "d-1", "owners": [{"kind": "ReplicaSet", "name": "checkout-7d9f8"}],
        "node_name": f"node-{node:03d}", "node_ip": f"192.168.0.{node % 250}", "node_labels": {},
        "services": ["checkout"],
    }


def _log_lines(when: dt.datetime, count: int, offset_base: int) -> Iterator[bytes]:
    for i in range(count):
        stamp = (when + dt.timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
        stream = b"stderr" if i % 10 == 0 else b"stdout"
        yield b"%s %s F GET /api/cart/%d 200 %dms user=%d trace=%032x\n" % (
            stamp.encode(), stream, offset_base + i, i % 500, i % 9973, offset_base + i)


def write_logs(root: Path, ledger: Ledger, *, start: dt.datetime, hours: int, objects_per_hour: int,
               lines_per_object: int, pods_per_object: int = 2, parquet: bool = False,
               compression: str = "gzip", stream_uid: str = "node-000", node: int = 0, prefix: str = "",
               cluster: str | None = None) -> None:
    """Log batches (``pods_per_object`` containers each) over ``hours`` hours from ``start``;
    ``cluster`` as for ``write_events``."""
    settings = Settings(encoding=EncodingSettings(format="parquet" if parquet else "ndjson", compression=compression),
                        cluster=ClusterSettings(name=cluster))
    encoder = make_log_encoder(settings)
    parse = LogsSettings()
    metas = [ContainerMeta.build(_kube(p, node)) for p in range(pods_per_object)]
    position = 0
    step = dt.timedelta(hours=1) / objects_per_hour
    for hour in range(hours):
        for obj in range(objects_per_hour):
            when = start + dt.timedelta(hours=hour) + step * obj
            records = []
            per_pod = max(1, lines_per_object // pods_per_object)
            for p, meta in enumerate(metas):
                path = f"/var/log/pods/shop_checkout-{p:03d}_uid-{p:04d}/app/{stream_uid}.log"
                offset = position * 200
                data = b"".join(_log_lines(when, per_pod, position))
                block = FileParser(LogFormat.CRI, parse).feed(data, offset)
                chunk = LogChunk(block, meta, path, file_key=f"1:{p}")
                records.append(Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=position))
                ledger.logs.update((path, off) for off in block.offsets)
                position += block.count
            key = batch_key(prefix=prefix, stream="logs", stream_uid=stream_uid, timestamp=when,
                            first_position=records[0].position, last_position=position - 1,
                            extension=encoder.extension)
            _write(root, key, encoder.encode(records), ledger)
