"""Events in Parquet (``encoding.format: parquet``) against NDJSON+gzip and protobuf+zstd.

1. Encode: batches of documented-shape event records (bench.gen_archive, ~1.1 KB of JSON each)
   through each codec; records per CPU-second (process time, so Arrow's threads count) and
   bytes per record, with ratios against NDJSON+gzip measured in the same run. Also the two
   ways to make the Arrow table: the batch's NDJSON read by Arrow's JSON reader (what the encoder
   does) against ``pa.Table.from_pylist`` of the dicts.
2. Whole agent: the events collector (watch → … → Parquet files) exporting N retained events
   from the simulator, pinned to one core, as bench_events runs it; events per agent CPU-second
   for NDJSON+gzip and Parquet in the same run (target ≥ 10,000 with Parquet).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from bench.bench_events import _cpu_seconds, _event, _start_agent
from bench.gen_archive import event_record
from kubestream.config.settings import EncodingSettings
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.encode.events_parquet import EventsParquetFormat
from kubestream.pipeline.encode.events_schema import EVENTS_PARSE_SCHEMA, EVENTS_SCHEMA, events_lines
from kubestream.sim.server import SimConfig, SimServer
from kubestream.sim.workload.generator import Workload
from kubestream.sim.workload.scenario import WorkloadConfig

BATCH = int(os.environ.get("BENCH_EVENTS_BATCH", "5000"))
ROUNDS = int(os.environ.get("BENCH_EVENTS_ROUNDS", "6"))
N_EVENTS = int(os.environ.get("BENCH_EVENTS", "50000"))
CODECS = {
    "ndjson+gzip": EncodingSettings(format="ndjson", compression="gzip"),
    "protobuf+zstd": EncodingSettings(format="protobuf", compression="zstd"),
    "parquet": EncodingSettings(format="parquet"),
}


def _batch(offset: int) -> list[dict[str, Any]]:
    start = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    records = [event_record(offset + i, start + dt.timedelta(milliseconds=i), count=1 + i % 7, node=i % 10)
               for i in range(BATCH)]
    for record in records:
        record["cluster"] = "bench"
    return records


def _rate(work: Callable[[list[dict[str, Any]]], bytes], batches: list[list[dict[str, Any]]]) -> tuple[float, float]:
    """(records per CPU-second, bytes per record) of ``work`` over ``batches`` (after one warm-up)."""
    work(batches[0])
    size = 0
    started = time.process_time()
    for batch in batches:
        size += len(work(batch))
    cpu = time.process_time() - started
    records = sum(len(b) for b in batches)
    return records / cpu, size / records


def _as_text(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_struct(type_):
        return pa.struct([pa.field(f.name, _as_text(f.type)) for f in type_])
    return pa.string() if pa.types.is_timestamp(type_) else type_


# from_pylist does not parse RFC 3339 text: timestamps go in as strings and are cast after.
_PYLIST_SCHEMA = pa.schema([pa.field(f.name, _as_text(f.type)) for f in EVENTS_PARSE_SCHEMA])


def _from_pylist(records: list[dict[str, Any]]) -> bytes:
    """The table by ``pa.Table.from_pylist`` (no protection against values of the wrong type)."""
    lines = events_lines(records)
    parsed = pa.Table.from_pylist(records, schema=_PYLIST_SCHEMA).cast(EVENTS_PARSE_SCHEMA)
    columns = [parsed.column(name) for name in EVENTS_PARSE_SCHEMA.names]
    columns[0] = columns[0].cast(EVENTS_SCHEMA.field("kind").type)
    table = pa.Table.from_arrays([*columns, pa.array([line.decode() for line in lines], pa.string())],
                                 schema=EVENTS_SCHEMA)
    return EventsParquetFormat().write(table)


def encode() -> None:
    batches = [_batch(r * BATCH) for r in range(ROUNDS)]
    print(f"encode: {ROUNDS} batches of {BATCH} event records")
    results: dict[str, tuple[float, float]] = {}
    for name, settings in CODECS.items():
        codec = make_encoder(settings)
        results[name] = _rate(codec.encode_dicts, batches)
    results["parquet (from_pylist)"] = _rate(_from_pylist, batches)
    base_rate, base_size = results["ndjson+gzip"]
    for name, (rate, size) in results.items():
        print(f"  {name:22s} {rate:9.0f} records/CPU-s ({rate / base_rate:4.2f}x ndjson+gzip), "
              f"{size:7.1f} bytes/record ({size / base_size:4.2f}x)")


def _config(tmp: Path, server: SimServer, encoding: EncodingSettings) -> Path:
    cfg = {
        "kube": {"kubeconfig": str(server.write_kubeconfig(tmp / "kubeconfig"))},
        "events": {"since": "retained"},
        "batch": {"max_records": 5000, "max_age_s": 2.0},
        "encoding": encoding.model_dump(),
        "sink": {"type": "file", "file": {"dir": str(tmp / "archive")}},
        "state": {"dir": str(tmp / "state")},
        "server": {"enabled": False},
        "log": {"level": "warning"},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _count(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.name.endswith(".parquet"):
            total += pq.read_metadata(path).num_rows
        elif path.name.endswith(".ndjson.gz"):
            total += gzip.decompress(path.read_bytes()).count(b"\n")
    return total


def _agent(server: SimServer, encoding: EncodingSettings) -> tuple[float, float, int]:
    """(wall seconds, agent CPU-seconds, archived bytes) for exporting the N retained events."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc = _start_agent(_config(tmp, server, encoding), tmp)
        started = time.perf_counter()
        try:
            while _count(tmp / "archive") < N_EVENTS:
                if proc.poll() is not None:
                    raise SystemExit(f"agent died: {(tmp / 'agent.log').read_text()[-2000:]}")
                time.sleep(0.2)
            wall = time.perf_counter() - started
            cpu = _cpu_seconds(proc.pid)
            size = sum(p.stat().st_size for p in (tmp / "archive").rglob("*") if p.is_file())
        finally:
            proc.terminate()
            proc.wait(30)
    return wall, cpu, size


def agent() -> None:
    server = SimServer(SimConfig(history_max_events=max(102400, N_EVENTS * 2)))
    server.start()
    try:
        workload = Workload(server.cluster, WorkloadConfig(seed=1, events_per_s=0, deployments=40, nodes=10))
        workload.step()
        pods = server.cluster.list("pods")
        for i in range(N_EVENTS):
            server.cluster.create("events", _event(i, pods[i % len(pods)]))
        print(f"agent: {N_EVENTS} retained events, enriched and archived (one core)")
        base = 0.0
        for name in ("ndjson+gzip", "parquet"):
            wall, cpu, size = _agent(server, CODECS[name])
            rate = N_EVENTS / cpu
            base = base or rate
            verdict = f";  target ≥ 10,000: {'PASS' if rate >= 10000 else 'FAIL'}" if name == "parquet" else ""
            print(f"  {name:12s} {N_EVENTS / wall:8.0f} events/s wall ({wall:.2f} s), {rate:8.0f} events per agent "
                  f"CPU-second ({cpu:.2f} CPU-s, {rate / base:4.2f}x ndjson+gzip), "
                  f"{size / N_EVENTS:6.1f} bytes/event{verdict}")
    finally:
        server.stop()


def main() -> None:
    encode()
    agent()


if __name__ == "__main__":
    main()
