"""Records/s through batch → encode → spool (fsync + SQLite commit) → file sink, for NDJSON +
gzip through orjson/ISA-L against a stdlib json + zlib-gzip encoder measured in the same run.

    python -m bench.bench_pipeline [records]
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubestream.config.settings import (
    BatchSettings,
    EncodingSettings,
    FileSinkSettings,
    Settings,
    SinkSettings,
)
from kubestream.model import Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import Encoder, make_encoder
from kubestream.pipeline.spool import Spool
from kubestream.sinks.file import FileSink
from kubestream.state.store import StateStore

BATCH_RECORDS = 1000


class StdlibGzipEncoder:
    """The baseline: stdlib json, one object per line, stdlib gzip at ``level``."""

    extension = "ndjson.gz"

    def __init__(self, level: int) -> None:
        self.level = level

    def encode(self, records: list[Record]) -> bytes:
        text = "".join(json.dumps(r.data, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records)
        return gzip.compress(text.encode(), compresslevel=self.level, mtime=0)


def event(n: int) -> dict[str, Any]:
    """A realistic enriched event record (~1 KB of JSON)."""
    ts = f"2024-05-01T10:{(n // 60) % 60:02d}:{n % 60:02d}Z"
    pod = f"checkout-{n % 50}-7d9f8c6b5-x{n % 7}"
    return {
        "kind": "event", "timestamp": ts,
        "event": {"uid": f"5f1c-{n:08d}", "name": f"{pod}.17c3a{n:x}", "namespace": "shop",
                  "resource_version": str(100000 + n), "reason": "BackOff" if n % 3 else "Pulled",
                  "message": f"Back-off restarting failed container app in pod {pod}", "type": "Warning",
                  "count": n % 17, "first_timestamp": ts, "last_timestamp": ts, "source_component": "kubelet",
                  "source_host": f"node-{n % 5}", "api": "core/v1"},
        "involved": {"kind": "Pod", "name": pod, "namespace": "shop", "uid": f"pod-{n % 50:04d}",
                     "api_version": "v1", "field_path": "spec.containers{app}", "resource_version": str(n)},
        "kubernetes": {"namespace": "shop", "namespace_labels": {"team": "payments", "env": "prod"},
                       "pod_name": pod, "pod_ip": f"10.1.{n % 200}.{n % 250}", "labels": {
                           "app": "checkout", "pod-template-hash": "7d9f8c6b5", "tier": "backend"},
                       "owner_kind": "Deployment", "owner_name": "checkout", "node_name": f"node-{n % 5}",
                       "node_labels": {"topology.kubernetes.io/zone": f"eu-1{'abc'[n % 3]}"},
                       "services": ["checkout"], "object_deleted": False},
    }


def make_records(count: int) -> list[Record]:
    return [Record(data=event(n), sort_key=event(n)["timestamp"], position=n, size_hint=1100)
            for n in range(1, count + 1)]


async def run_pipeline(records: list[Record], encoder: Encoder, work: Path) -> float:
    """Seconds to push ``records`` through the whole walk until the sink holds them all."""
    settings = Settings(
        batch=BatchSettings(max_records=BATCH_RECORDS, max_age_s=60),
        encoding=EncodingSettings(format="ndjson", compression="gzip"),
        sink=SinkSettings(file=FileSinkSettings(dir=work / "out")),
    )
    state = StateStore(work / "state.db")
    try:
        spool = Spool(work / "spool", state, max_bytes=256 << 20)
        sink = FileSink(settings.sink.file)
        pipeline = Pipeline("events", settings, state, spool, encoder=encoder)
        delivery = Delivery(spool, sink, settings=settings.sink)
        worker = asyncio.create_task(delivery.run())
        started = time.perf_counter()
        for record in records:
            await pipeline.put(record)
        await pipeline.flush()
        await spool.wait_empty(600)
        elapsed = time.perf_counter() - started
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        return elapsed
    finally:
        state.close()


def best_of(runs: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(runs))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    count = int(args[0]) if args else 50_000
    records = make_records(count)
    batch = records[:BATCH_RECORDS]
    ours = make_encoder(EncodingSettings(format="ndjson", compression="gzip", gzip_level=1))
    contenders: list[tuple[str, Encoder]] = [
        ("orjson + isal gzip level 1 (kubestream)", ours),
        ("stdlib json + gzip level 1", StdlibGzipEncoder(1)),
        ("stdlib json + gzip level 6", StdlibGzipEncoder(6)),
    ]
    print(f"{count} records of ~{len(json.dumps(records[0].data))} B JSON, batches of {BATCH_RECORDS}")
    print(f"{'encoder':42} {'encode rec/s':>13} {'bytes/rec':>10} {'end-to-end rec/s':>17}")
    results: dict[str, tuple[float, float]] = {}
    for name, encoder in contenders:
        encode_s = best_of(3, _encode_timer(encoder, batch))
        size = len(encoder.encode(batch)) / len(batch)
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            e2e_s = asyncio.run(run_pipeline(records, encoder, Path(tmp)))
        results[name] = (len(batch) / encode_s, count / e2e_s)
        print(f"{name:42} {len(batch) / encode_s:13,.0f} {size:10.1f} {count / e2e_s:17,.0f}")
    ours_encode, ours_e2e = results[contenders[0][0]]
    for name, _ in contenders[1:]:
        base_encode, base_e2e = results[name]
        print(f"ratio vs {name}: encode x{ours_encode / base_encode:.2f}, end-to-end x{ours_e2e / base_e2e:.2f}")


def _encode_timer(encoder: Encoder, batch: list[Record]) -> Callable[[], float]:
    def measure() -> float:
        started = time.perf_counter()
        encoder.encode(batch)
        return time.perf_counter() - started

    return measure


if __name__ == "__main__":
    main()
