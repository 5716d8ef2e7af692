"""``kubestream timeline`` on one day of a 100-node cluster, uncompacted and compacted, same run.

The archive is generated with the project's own encoders, laid out as the agent writes it with
default batching (``batch.max_age_s`` 10 s: one object per stream every 10 s): one events
collector and one node agent per node, NDJSON + gzip. Then:

1. the timeline of one Deployment (3 pods on 3 nodes) over 30 minutes, on the archive as written;
2. ``archive.compact.compact_archive`` (the compaction engineer's public function) over it;
3. the same timeline on the compacted archive (best of 3).

Reported: objects and bytes, objects listed/read by each timeline (only the window's partitions
are), compaction time and input MB/s, and the ratios the targets name (object count cut ≥ 50x,
timeline ≥ 5x faster, compacted timeline ≤ 2 s).

    python -m bench.bench_query [nodes] [hours] [lines_per_node_per_s]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubestream.archive.compact import compact_archive
from kubestream.archive.store import open_archive
from kubestream.config.settings import EncodingSettings, FileSinkSettings, Settings, SinkSettings
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.naming import batch_key
from kubestream.query.engine import Archive
from kubestream.query.location import location_from_sink
from kubestream.query.timeline import parse_target, timeline_sql
from kubestream.query.window import TimeWindow

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BATCH_S = 10  # batch.max_age_s default: one object per stream every 10 s
PODS_PER_NODE = 12
EVENTS_PER_S = 5.0
REASONS = ("Pulled", "Created", "Started", "Unhealthy", "BackOff", "Killing", "Scheduled", "FailedMount")
TARGET = ("shop", "checkout")


def _pods(nodes: int) -> list[dict[str, Any]]:
    """PODS_PER_NODE pods per node; the first three nodes each run one pod of the target Deployment."""
    pods = []
    for n in range(nodes):
        for p in range(PODS_PER_NODE):
            target = p == 0 and n < 3
            ns, app = TARGET if target else (f"ns-{(n * PODS_PER_NODE + p) % 20}", f"app-{(n + p) % 40}")
            name = f"{app}-5d8f7-{n:03d}{p:02d}"
            uid = f"{n:08x}-{p:04x}-4000-8000-{n * PODS_PER_NODE + p:012x}"
            pods.append({"namespace": ns, "pod_name": name, "pod_uid": uid, "container_name": "app",
                         "container_image": f"registry.example/{app}:1.2.3", "node_name": f"node-{n:03d}",
                         "owner_kind": "Deployment", "owner_name": app, "labels": {"app": app},
                         "owners": [{"kind": "ReplicaSet", "name": f"{app}-5d8f7"}, {"kind": "Deployment", "name": app}],
                         "enrichment": "ok", "object_kind": "Pod", "object_name": name, "object_uid": uid})
    return pods


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def generate(root: Path, nodes: int, hours: int, lines_per_s: float, seed: int = 1) -> tuple[int, int]:
    """Write the archive; (objects, bytes)."""
    rng = random.Random(seed)
    codec = make_encoder(EncodingSettings(), cluster="bench")  # records as a named agent writes them
    pods = _pods(nodes)
    by_node = [pods[n * PODS_PER_NODE:(n + 1) * PODS_PER_NODE] for n in range(nodes)]
    lines_per_batch = max(1, round(lines_per_s * BATCH_S))
    events_per_batch = max(1, round(EVENTS_PER_S * BATCH_S))
    objects = size = 0
    offsets: dict[str, int] = {}
    rv = 0
    made_dirs: set[Path] = set()

    def write(key: str, payload: bytes) -> None:
        nonlocal objects, size
        path = root / key
        if path.parent not in made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(path.parent)
        path.write_bytes(payload)
        objects += 1
        size += len(payload)

    for step in range(hours * 3600 // BATCH_S):
        at = START + dt.timedelta(seconds=step * BATCH_S)
        for n, node_pods in enumerate(by_node):
            lines = []
            for i in range(lines_per_batch):
                pod = node_pods[rng.randrange(len(node_pods))]
                path = f"/var/log/pods/{pod['namespace']}_{pod['pod_name']}_{pod['pod_uid']}/app/0.log"
                offset = offsets.get(path, 0)
                message = f"GET /api/v1/items/{rng.randrange(10**6)} 200 {rng.randrange(900)}ms"
                offsets[path] = offset + len(message) + 40
                lines.append({"kind": "log", "timestamp": _stamp(at + dt.timedelta(seconds=i * BATCH_S / lines_per_batch)),
                              "stream": "stderr" if rng.random() < 0.1 else "stdout", "message": message,
                              "file": {"path": path, "offset": offset}, "kubernetes": pod})
            key = batch_key(prefix="", stream="logs", stream_uid=f"node-{n:03d}", timestamp=at,
                            first_position=step * lines_per_batch, last_position=(step + 1) * lines_per_batch - 1,
                            extension=codec.extension)
            write(key, codec.encode_dicts(lines))
        events = []
        for i in range(events_per_batch):
            rv += 1
            pod = pods[rng.randrange(len(pods))] if i else pods[step % 3 * PODS_PER_NODE]  # the target, often
            reason = REASONS[rng.randrange(len(REASONS))]
            events.append({
                "kind": "event", "timestamp": _stamp(at + dt.timedelta(seconds=i * BATCH_S / events_per_batch)),
                "event": {"uid": f"ev-{rv}", "name": f"{pod['pod_name']}.{rv:x}", "namespace": pod["namespace"],
                          "resource_version": rv, "reason": reason, "message": f"{reason} for container app",
                          "type": "Warning" if reason in ("Unhealthy", "BackOff") else "Normal", "count": 1,
                          "count_delta": 1, "source_component": "kubelet", "source_host": pod["node_name"],
                          "api": "core/v1"},
                "involved": {"kind": "Pod", "name": pod["pod_name"], "namespace": pod["namespace"],
                             "uid": pod["pod_uid"], "api_version": "v1", "field_path": "spec.containers{app}"},
                "kubernetes": pod})
        key = batch_key(prefix="", stream="events", stream_uid="collector", timestamp=at,
                        first_position=rv - events_per_batch + 1, last_position=rv, extension=codec.extension)
        write(key, codec.encode_dicts(events))
    return objects, size


def timeline(root: Path, window: TimeWindow) -> tuple[float, int, int, int]:
    """Seconds, rows, objects listed, objects read of the target's timeline."""
    started = time.perf_counter()
    archive = Archive(location_from_sink(SinkSettings(file=FileSinkSettings(dir=root))), window)
    loaded = archive.load(["events", "logs"])
    rows = archive.execute(timeline_sql(parse_target(f"deploy/{TARGET[1]}", TARGET[0]))).fetchall()
    seconds = time.perf_counter() - started
    listed = sum(s.objects_listed for s in loaded.stats.values())
    read = sum(s.objects_read for s in loaded.stats.values())
    return seconds, len(rows), listed, read


def _count(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def main(argv: list[str]) -> int:
    nodes = int(argv[0]) if argv else 100
    hours = int(argv[1]) if len(argv) > 1 else 24
    lines_per_s = float(argv[2]) if len(argv) > 2 else 1.0
    base = Path(tempfile.mkdtemp(prefix="bench-query-"))
    root = base / "archive"
    try:
        t0 = time.perf_counter()
        objects, size = generate(root, nodes, hours, lines_per_s)
        print(f"archive: {nodes} nodes, {hours} h, {objects} objects, {size / 1e6:.1f} MB "
              f"(generated in {time.perf_counter() - t0:.1f} s)", flush=True)
        middle = START + dt.timedelta(hours=min(hours - 1, 10), minutes=10)
        window = TimeWindow(middle, middle + dt.timedelta(minutes=30))
        raw_s, raw_rows, raw_listed, raw_read = timeline(root, window)
        print(f"timeline deploy/{TARGET[1]} {window.describe()}, uncompacted: {raw_s:.2f} s, {raw_rows} rows, "
              f"{raw_listed} objects listed, {raw_read} read", flush=True)
        settings = Settings(sink=SinkSettings(file=FileSinkSettings(dir=root)))
        t0 = time.perf_counter()
        report = asyncio.run(compact_archive(open_archive(settings), settings,
                                             now=START + dt.timedelta(hours=hours + 3)))
        compact_s = time.perf_counter() - t0
        after = _count(root)
        print(f"compaction: {compact_s:.1f} s, {report.sources} sources -> {report.parts} parts, "
              f"{report.input_bytes / 1e6 / compact_s:.1f} MB/s of input; objects {objects} -> {after} "
              f"({objects / after:.0f}x fewer)", flush=True)
        runs = [timeline(root, window) for _ in range(3)]
        best = min(runs)
        assert all(r[1] == raw_rows for r in runs), "the compacted archive answers differently"
        print(f"timeline, compacted: best {best[0]:.2f} s of 3 ({', '.join(f'{r[0]:.2f}' for r in runs)}), "
              f"{best[1]} rows, {best[2]} objects listed, {best[3]} read", flush=True)
        print(f"ratios: objects {objects / after:.0f}x (target >= 50x), timeline {raw_s / best[0]:.1f}x faster "
              f"(target >= 5x), compacted timeline {best[0]:.2f} s (target <= 2 s)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
