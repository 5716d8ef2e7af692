"""CPU per record of the events and logs pipelines delivering to the archive alone against the
archive plus an OTLP destination, in the same run.

    BENCH_OUTPUTS_EVENTS=50000 BENCH_OUTPUTS_LOG_BYTES=33554432 python -m bench.bench_outputs

The whole walk runs in this process: ``Pipeline`` (the agent's routes from ``sinks:``, so the
OTLP destination gets its own encode at commit) → ``Spool`` (fsync + SQLite commit of every
part) → one ``Delivery`` per destination (``FileSink`` for the archive, ``OtlpSink`` for OTLP).
The OTLP receiver is another process (aiohttp on 127.0.0.1 that reads the body and answers
200), so its CPU is not counted: CPU time is user + system of this process, from the first
record until every destination has acknowledged every part. Events are the ~1.1 KB enriched
records of ``bench_pipeline``; logs are CRI lines from ``bench.gen_cri`` in 1 MiB chunks, as in
``bench_otlp``, whose OTLP encode rate is printed alongside.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_otlp import CLUSTER, batches
from bench.bench_otlp import run as encode_run
from bench.bench_pipeline import make_records
from bench.gen_cri import generate
from kubestream.agent.routing import build_routes
from kubestream.config.outputs import OtlpSinkSettings
from kubestream.config.settings import BatchSettings, ClusterSettings, EncodingSettings, Settings
from kubestream.model import Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.encode.logs_ndjson import NdjsonLogEncoder
from kubestream.pipeline.encode.otlp import OtlpEncoder
from kubestream.pipeline.spool import Spool
from kubestream.sinks.factory import make_destination_sink
from kubestream.state.store import StateStore

RECEIVER = """
import sys
from aiohttp import web

async def logs(request):
    await request.read()
    return web.Response(status=200, content_type="application/x-protobuf", body=b"")

app = web.Application(client_max_size=64 << 20)
app.router.add_post("/v1/logs", logs)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return proc, f"http://127.0.0.1:{port}/v1/logs"
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the receiver did not start")
        time.sleep(0.05)


def settings_for(work: Path, stream: str, otlp_url: str | None, batch_records: int) -> Settings:
    sinks: list[dict[str, Any]] = [{"name": "archive", "type": "file", "streams": [stream],
                                    "file": {"dir": str(work / "archive")}}]
    if otlp_url is not None:
        sinks.append({"name": "otlp", "type": "otlp", "streams": [stream], "otlp": {"endpoint": otlp_url}})
    return Settings.model_validate({
        "batch": BatchSettings(max_records=batch_records, max_age_s=60).model_dump(),
        "encoding": EncodingSettings(format="ndjson", compression="gzip").model_dump(),
        "cluster": ClusterSettings(name=CLUSTER).model_dump(),
        "sinks": sinks,
    })


async def run_walk(stream: str, records: list[Record], work: Path, otlp_url: str | None,
                   batch_records: int) -> tuple[float, float, dict[str, int]]:
    """(CPU seconds, wall seconds, parts delivered per destination) to push ``records`` through."""
    settings = settings_for(work, stream, otlp_url, batch_records)
    state = StateStore(work / "state.db")
    sinks = []
    try:
        spool = Spool(work / "spool", state, max_bytes=1 << 30)
        pipeline = Pipeline(stream, settings, state, spool, routes=build_routes(settings, stream))
        deliveries = []
        for destination in settings.destinations():
            sink = make_destination_sink(destination)
            sinks.append(sink)
            deliveries.append(Delivery(spool, sink, settings=destination, destination=destination.name))
        workers = [asyncio.create_task(d.run()) for d in deliveries]
        cpu0, wall0 = _cpu(), time.perf_counter()
        for record in records:
            await pipeline.put(record)
        await pipeline.flush()
        for delivery in deliveries:
            assert await spool.wait_empty(600, delivery.destination)
        cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
        for worker in workers:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        return cpu, wall, {d.destination: d.delivered for d in deliveries}
    finally:
        for sink in sinks:
            await sink.close()
        state.close()


def measure(stream: str, records: list[Record], units: int, otlp_url: str | None, batch_records: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-outputs-") as tmp:
        cpu, wall, parts = asyncio.run(run_walk(stream, records, Path(tmp), otlp_url, batch_records))
    label = "archive + otlp" if otlp_url else "archive alone"
    print(f"  {label:<15} {cpu * 1e6 / units:8.2f} µs CPU/record  {units / cpu:11,.0f} records/CPU-s  "
          f"wall {wall:6.2f} s  parts {parts}", flush=True)
    return cpu / units


def main() -> int:
    events = int(os.environ.get("BENCH_OUTPUTS_EVENTS", 50_000))
    log_bytes = int(os.environ.get("BENCH_OUTPUTS_LOG_BYTES", 32 << 20))
    proc, url = start_receiver()
    try:
        print(f"events: {events:,} records of ~1.1 KB, batches of 1000")
        records = make_records(events)
        alone = measure("events", records, events, None, 1000)
        both = measure("events", records, events, url, 1000)
        print(f"  ratio (archive + otlp) / archive alone: {both / alone:.2f}x CPU per record")
        event_batches = [records[i:i + 1000] for i in range(0, len(records), 1000)]
        for name, encoder in (("NDJSON + gzip (archive encoder)", make_encoder(EncodingSettings(compression="gzip"))),
                              ("OTLP protobuf + gzip", OtlpEncoder(OtlpSinkSettings(), stream="events",
                                                                   cluster=CLUSTER))):
            cpu0 = _cpu()
            for batch in event_batches:
                encoder.encode(batch)
            print(f"  encode only, {name:<32} {len(records) / (_cpu() - cpu0):11,.0f} records/CPU-s")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "cri.log"
            generate(path, log_bytes)
            work = batches(path)
        chunks = [r for batch in work for r in batch]
        lines = sum(r.chunk.block.count for r in chunks)
        print(f"\nlogs: {lines:,} lines in {len(chunks)} chunks of 1 MiB, batches of 8 chunks")
        alone_l = measure("logs", chunks, lines, None, 8)
        both_l = measure("logs", chunks, lines, url, 8)
        print(f"  ratio (archive + otlp) / archive alone: {both_l / alone_l:.2f}x CPU per line")
        ndjson = encode_run("NDJSON + gzip (archive encoder)", work,
                            NdjsonLogEncoder(EncodingSettings(compression="gzip"), cluster=CLUSTER).encode)
        otlp = encode_run("OTLP protobuf + gzip", work,
                          OtlpEncoder(OtlpSinkSettings(), stream="logs", cluster=CLUSTER).encode)
        print("\nencode only (bench_otlp's measure, same lines):")
        print(f"  {ndjson.show()}\n  {otlp.show()}\n  OTLP / NDJSON: {otlp.rate / ndjson.rate:.2f}x")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
