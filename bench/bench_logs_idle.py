"""The node agent's logs source at rest: RSS while tailing 1,000 files, CPU while they are idle.

Builds a node with ``N_PODS`` pods (one container each) whose files hold a few lines, runs the real
LogsSource → Pipeline → Spool → Delivery → FileSink until every line is delivered, then measures:

* RSS of the process while every file is open and tailed (target < 200 MB);
* CPU time over ``IDLE_S`` seconds with nothing written (target <= 1 % of one core), with the
  default ``sweep_interval_s`` (10 s) and inotify on;
* for contrast, a write to one file in that state and how long until it is delivered.

    python -m bench.bench_logs_idle
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubestream.config.settings import (
    BatchSettings,
    EncodingSettings,
    FileSinkSettings,
    LogsSettings,
    Settings,
    SinkSettings,
    StateSettings,
)
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import make_log_encoder
from kubestream.pipeline.spool import Spool
from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter
from kubestream.sinks.file import FileSink
from kubestream.sources.logs import checkpoint
from kubestream.sources.logs.source import LogsSource
from kubestream.state.store import StateStore

N_PODS = 1000
LINES_PER_FILE = 5
IDLE_S = 30.0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pod(i: int) -> dict[str, Any]:
    uid = str(uuid.UUID(int=i + 1))
    return {"metadata": {"name": f"app-{i}", "namespace": "bench", "uid": uid},
            "spec": {"nodeName": "node-0", "containers": [{"name": "app", "image": "x"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "restartCount": 0, "containerID": f"containerd://{uid.replace('-', '') * 2}"}]}}


def _settings(tmp: Path) -> Settings:
    return Settings(
        logs=LogsSettings(enabled=True, pods_dir=tmp / "pods", containers_dir=tmp / "containers"),
        batch=BatchSettings(max_records=1000, max_age_s=1.0),
        encoding=EncodingSettings(format="ndjson", compression="gzip"),
        sink=SinkSettings(stream_uid="bench", file=FileSinkSettings(dir=tmp / "out")),
        state=StateSettings(dir=tmp / "state"),
    )


async def _wait_delivered(state: StateStore, lines: int, within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        row = state.conn.execute("SELECT value FROM logs_meta WHERE key = 'line_seq'").fetchone()
        if row is not None and int(row[0]) >= lines:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{lines} lines not committed within {within}s")


async def run(tmp: Path) -> None:
    writer = NodeLogWriter(NodeLogConfig(root=tmp / "pods", containers_dir=tmp / "containers", node="node-0",
                                         kind_weights={"plain": 1.0}))
    writer.follow([_pod(i) for i in range(N_PODS)])
    for uid, container, _ in writer.containers():
        for _ in range(LINES_PER_FILE):
            writer.write_line(uid, container)
    settings = _settings(tmp)
    state = StateStore(settings.state.dir / "state.db")
    checkpoint.load(state)  # creates the tables _wait_delivered polls
    spool = Spool(settings.spool_dir, state, max_bytes=settings.spool.max_bytes)
    pipeline = Pipeline("logs", settings, state, spool, encoder=make_log_encoder(settings))
    delivery = Delivery(spool, FileSink(settings.sink.file), settings=settings.sink)
    source = LogsSource(settings, state, pipeline, None, node_name="node-0")
    rss_before = _rss_mb()
    tasks = [asyncio.create_task(c) for c in (pipeline.run(), delivery.run(), source.run())]
    try:
        total = N_PODS * LINES_PER_FILE
        took = await _wait_delivered(state, total, 120)
        print(f"read and committed {total} lines of {len(source.files)} files in {took:.2f}s")
        await asyncio.sleep(1.0)
        print(f"RSS tailing {len(source.files)} files: {_rss_mb():.1f} MB (before the source: {rss_before:.1f} MB; "
              f"target < 200 MB); open fds: {len(os.listdir('/proc/self/fd'))}")
        cpu0, wall0 = _cpu_s(), time.monotonic()
        await asyncio.sleep(IDLE_S)
        cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
        print(f"idle CPU over {wall:.0f}s with {len(source.files)} files: {cpu * 1000:.0f} ms = "
              f"{100 * cpu / wall:.3f} % of one core (target <= 1 %)")
        uid, container, _ = writer.containers()[N_PODS // 2]
        writer.write_line(uid, container)
        latency = await _wait_delivered(state, total + 1, 30)
        print(f"one new line in one of {len(source.files)} idle files committed after {latency * 1000:.0f} ms "
              f"(inotify; batch.max_age_s=1)")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        writer.stop()
        state.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-logs-idle-") as tmp:
        asyncio.run(run(Path(tmp)))


if __name__ == "__main__":
    main()
