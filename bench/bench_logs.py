"""Container log lines per CPU-second: rsyslog (C) against our parse + encode paths, same file.

    BENCH_LOGS_BYTES=100000000 python -m bench.bench_logs     (default: a 1 GiB file)

The CRI file comes from ``bench.gen_cri`` (deterministic, ~190 B/line, 2 % partial lines). Each
contender reads the whole file and writes compressed output to a private temporary directory;
CPU time is user + system of the process doing the work (rsyslogd's from /proc), so the figures
are lines per CPU-second, i.e. per core:

* rsyslog imfile → omfile, JSON template, ``zipLevel=1`` (skipped if ``rsyslogd`` is missing);
* a bare Python loop floor: split each line, orjson the message, splice the metadata, ISA-L gzip 1;
* stdlib ``json`` + ``gzip`` level 6 with the metadata as a dict (the naive implementation);
* ours, NDJSON + gzip: ``FileParser`` (P/F merging, UTF-8 checks, checkpoints) + ``NdjsonLogEncoder``
  driven in-process (the parse + encode path; tailing, enrichment and the pipeline are not in it);
* ours, Parquet + zstd, same driving;
* ours, the WHOLE source, NDJSON + gzip and Parquet: the file hard-linked into a kubelet pod log
  directory, read by the real ``LogsSource`` (discovery, tailing, parsing, enrichment through a
  fixed-block ``PodEnricher``) into the real ``Pipeline`` → ``Spool`` (fsync, SQLite checkpoint
  transaction) → ``Delivery`` → ``FileSink``, under ``asyncio.run``, until every record is delivered.
  The archive's record count and the committed checkpoint offset are checked afterwards (untimed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
from isal import igzip

from bench.gen_cri import generate, target_bytes
from kubestream.config.settings import (
    EncodingSettings,
    FileSinkSettings,
    LogsSettings,
    Settings,
    SinkSettings,
    StateSettings,
)
from kubestream.enrich.block import ContainerMeta
from kubestream.model import LogChunk, Record
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import make_log_encoder
from kubestream.pipeline.encode.compress import make_compressor
from kubestream.pipeline.spool import Spool
from kubestream.sinks.file import FileSink
from kubestream.sources.logs import checkpoint
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser
from kubestream.sources.logs.source import LogsSource
from kubestream.state.store import StateStore

READ_BYTES = 1 << 20
CHUNKS_PER_BATCH = 8
LOG_PATH = "/var/log/pods/shop_checkout-api-7d9f8c6b5-x2x9z_5f1c2d3e/app/0.log"
KUBERNETES: dict[str, Any] = {
    "namespace": "shop", "namespace_labels": {"team": "payments", "env": "prod"}, "object_kind": "Pod",
    "object_name": "checkout-api-7d9f8c6b5-x2x9z", "object_uid": "5f1c2d3e-1111-2222-3333-444455556666",
    "labels": {"app": "checkout-api", "pod-template-hash": "7d9f8c6b5", "version": "1.14.2"},
    "annotations": {"prometheus.io/scrape": "true"}, "pod_name": "checkout-api-7d9f8c6b5-x2x9z",
    "pod_uid": "5f1c2d3e-1111-2222-3333-444455556666", "pod_ip": "10.0.3.17", "container_name": "app",
    "container_image": "registry.example.com/shop/checkout-api:1.14.2", "container_id": "containerd://" + "ab" * 32,
    "owner_kind": "ReplicaSet", "owner_name": "checkout-api-7d9f8c6b5", "owner_uid": "6a1c2d3e-1111-2222-3333-4444",
    "owners": [{"kind": "ReplicaSet", "name": "checkout-api-7d9f8c6b5"}, {"kind": "Deployment", "name": "checkout-api"}],
    "node_name": "ip-10-0-3-17.ec2.internal", "node_ip": "10.0.3.17",
    "node_labels": {"topology.kubernetes.io/zone": "eu-west-1a"}, "services": ["checkout-api"],
    "object_deleted": False, "enrichment": "ok",
}


class Result:
    """One contender's figures."""

    def __init__(self, name: str, lines: int, cpu_s: float, out_bytes: int) -> None:
        self.name, self.lines, self.cpu_s, self.out_bytes = name, lines, cpu_s, out_bytes

    @property
    def rate(self) -> float:
        return self.lines / self.cpu_s if self.cpu_s else 0.0

    def show(self) -> str:
        per_line = self.out_bytes / self.lines if self.lines else 0.0
        return f"{self.name:<44} {self.rate:>12,.0f} lines/CPU-s  {self.cpu_s:7.2f} CPU-s  {per_line:6.1f} B/line out"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _timed(name: str, run: Callable[[], tuple[int, int]]) -> Result:
    start = _cpu()
    lines, out = run()
    return Result(name, lines, _cpu() - start, out)


def ours(path: Path, out_dir: Path, encoding: EncodingSettings) -> tuple[int, int]:
    """FileParser + the log encoder, 1 MiB reads, 8 chunks per batch, each batch written to a file."""
    encoder = make_log_encoder(Settings(encoding=encoding))
    meta = ContainerMeta.build(KUBERNETES)
    parser = FileParser(LogFormat.CRI, LogsSettings())
    lines = written = offset = 0
    batch: list[Record] = []

    def flush() -> int:
        payload = encoder.encode(batch)
        (out_dir / f"batch-{offset}.{encoder.extension}").write_bytes(payload)
        batch.clear()
        return len(payload)

    with path.open("rb", buffering=0) as f:
        while data := f.read(READ_BYTES):
            block = parser.feed(data, offset)
            offset += len(data)
            lines += block.count
            chunk = LogChunk(block, meta, LOG_PATH)
            batch.append(Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=lines))
            if len(batch) == CHUNKS_PER_BATCH:
                written += flush()
    block = parser.finish()
    lines += block.count
    batch.append(Record(data={}, chunk=LogChunk(block, meta, LOG_PATH), sort_key="", position=lines))
    written += flush()
    return lines, written


def bare_floor(path: Path, out_dir: Path) -> tuple[int, int]:
    """The simplest fast Python: a loop over lines, orjson per message, spliced metadata, ISA-L gzip 1."""
    tail = b',"kubernetes":' + orjson.dumps(KUBERNETES) + b"}\n"
    lines = written = 0
    with path.open("rb") as f, (out_dir / "floor.ndjson.gz").open("wb") as out:
        while block := f.readlines(READ_BYTES * CHUNKS_PER_BATCH):
            parts = []
            for line in block:
                ts, stream, _tag, message = line.split(b" ", 3)
                parts.append(b'{"kind":"log","timestamp":"' + ts + b'","stream":"' + stream + b'","message":'
                             + orjson.dumps(message[:-1].decode("utf-8", "replace")) + tail)
            lines += len(block)
            written += out.write(igzip.compress(b"".join(parts), compresslevel=1, mtime=0))
    return lines, written


def stdlib_baseline(path: Path, out_dir: Path) -> tuple[int, int]:
    """The naive implementation: a dict per line, stdlib json, stdlib gzip level 6."""
    lines = written = 0
    with path.open("rb") as f, (out_dir / "stdlib.ndjson.gz").open("wb") as out:
        while block := f.readlines(READ_BYTES * CHUNKS_PER_BATCH):
            text = []
            for line in block:
                ts, stream, _tag, message = line.decode("utf-8", "replace").split(" ", 3)
                record = {"kind": "log", "timestamp": ts, "stream": stream, "message": message[:-1],
                          "kubernetes": KUBERNETES}
                text.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
            lines += len(block)
            written += out.write(gzip.compress(("\n".join(text) + "\n").encode(), compresslevel=6, mtime=0))
    return lines, written


POD_DIR = "shop_checkout-api-7d9f8c6b5-x2x9z_5f1c2d3e-1111-2222-3333-444455556666"
POLL_S = 0.05
DELIVERY_TIMEOUT_S = 600.0


class FixedEnricher:
    """A real ``PodEnricher`` (enrich.containers) whose every pod has the bench's block.

    It stands in for the cluster-backed Enricher: no pod cache (``pods``/``namespaces`` None), so
    the source builds each container's block once from ``for_pod`` and keeps it.
    """

    def __init__(self, kubernetes: dict[str, Any]) -> None:
        self._kubernetes = kubernetes
        self._synced = asyncio.Event()
        self._synced.set()

    @property
    def synced(self) -> asyncio.Event:
        return self._synced

    @property
    def pods(self) -> None:
        return None

    @property
    def namespaces(self) -> None:
        return None

    def find_pod(self, namespace: str | None, name: str, uid: str | None) -> None:
        return None

    def for_pod(self, namespace: str, name: str, uid: str | None, *, container: str | None = None,
                source: str = "logs") -> dict[str, Any]:
        return dict(self._kubernetes)


def logical_records(path: Path) -> int:
    """Records the file holds once P parts are merged: physical lines minus P lines."""
    lines = partial = 0
    with path.open("rb") as f:
        while block := f.readlines(1 << 22):
            data = b"".join(block)
            lines += len(block)
            partial += data.count(b" stdout P ") + data.count(b" stderr P ")
    return lines - partial


def whole_source(log: Path, root: Path, encoding: EncodingSettings, records: int, name: str) -> Result:
    """The real source and pipeline over ``log`` laid out as a pod log file; CPU of the whole process."""
    container_dir = root / "pods" / POD_DIR / "app"
    container_dir.mkdir(parents=True)
    os.link(log, container_dir / "0.log")
    settings = Settings(
        logs=LogsSettings(enabled=True, pods_dir=root / "pods", containers_dir=None),
        encoding=encoding,
        sink=SinkSettings(stream_uid="bench", file=FileSinkSettings(dir=root / "out")),
        state=StateSettings(dir=root / "state"),
    )
    start = time.process_time()
    asyncio.run(_drive(settings, records))
    cpu = time.process_time() - start
    _check_archive(settings, records, log.stat().st_size)
    out_bytes = sum(p.stat().st_size for p in (root / "out").rglob("*") if p.is_file())
    return Result(name, records, cpu, out_bytes)


async def _drive(settings: Settings, records: int) -> None:
    """Source → Pipeline → Spool → Delivery → FileSink until every record is delivered."""
    metrics = Metrics()
    state = StateStore(settings.state.dir / "state.db")
    spool = Spool(settings.spool_dir, state, max_bytes=settings.spool.max_bytes, metrics=metrics)
    spool.recover()
    sink = FileSink(settings.sink.file, metrics=metrics)
    await sink.check()
    pipeline = Pipeline("logs", settings, state, spool, metrics=metrics, encoder=make_log_encoder(settings))
    delivery = Delivery(spool, sink, settings=settings.sink, metrics=metrics)
    source = LogsSource(settings, state, pipeline, FixedEnricher(KUBERNETES), node_name="bench-node",
                        metrics=metrics)
    tasks = [asyncio.create_task(t) for t in (pipeline.run(), source.run(), delivery.run())]
    try:
        # The source has no "lines emitted" event to wait on; a 50 ms poll costs nothing measurable.
        while source.next_line - 1 < records:  # noqa: ASYNC110
            await asyncio.sleep(POLL_S)
        await pipeline.flush()  # the last batch, without waiting out batch.max_age_s
        if not await spool.wait_empty(DELIVERY_TIMEOUT_S):
            raise TimeoutError("whole source: the spool was not delivered")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        state.close()


def _check_archive(settings: Settings, records: int, size: int) -> None:
    """Every record delivered once, and the committed checkpoint at the end of the file."""
    out = settings.sink.file.dir
    got = 0
    for path in (p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix == ".parquet":
            got += pq.read_metadata(path).num_rows
        else:
            got += make_compressor(settings.encoding).decompress(path.read_bytes()).count(b"\n")
    state = StateStore(settings.state.dir / "state.db")
    try:
        offsets = list(checkpoint.load(state).offsets.values())
    finally:
        state.close()
    if got != records or offsets != [size]:
        raise AssertionError(f"whole source: archive holds {got} of {records} records; checkpoints {offsets}, "
                             f"file size {size}")


_RSYSLOG_CONF = """
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile" mode="inotify")
template(name="kubejson" type="list" option.jsonf="on") {{
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="file" name="$!metadata!filename" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
ruleset(name="logs") {{
  action(type="omfile" file="{out}" template="kubejson" zipLevel="1" ioBufferSize="1m" flushOnTXEnd="off")
}}
input(type="imfile" file="{log}" tag="bench" ruleset="logs" addMetadata="on" reopenOnTruncate="on")
"""


def rsyslog(path: Path, out_dir: Path, lines: int) -> Result | None:
    """rsyslogd in the foreground on a private config; its CPU time from /proc once it is idle."""
    binary = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if binary is None:
        print("rsyslog: SKIPPED (rsyslogd not installed; apt-get install rsyslog to compare)")
        return None
    work = out_dir / "rsyslog-work"
    work.mkdir()
    out = out_dir / "rsyslog.json.gz"
    conf = out_dir / "rsyslog.conf"
    conf.write_text(_RSYSLOG_CONF.format(work=work, out=out, log=path))
    proc = subprocess.Popen([binary, "-n", "-f", str(conf), "-i", str(out_dir / "rsyslog.pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        cpu = _wait_idle(proc.pid, path.stat().st_size)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    if err.strip():
        print("rsyslog stderr:", err.decode(errors="replace").strip()[:500])
    with gzip.open(out, "rb") as f:
        got = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 22), b""))
    if got != lines:
        print(f"rsyslog: wrote {got} lines for {lines} physical lines")
    return Result("rsyslog imfile -> omfile json zipLevel=1 (C)", got, cpu, out.stat().st_size)


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def _read_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def _wait_idle(pid: int, size: int, timeout_s: float = 3600.0) -> float:
    """rsyslogd's CPU seconds once it has read the file and stopped using CPU."""
    deadline = time.monotonic() + timeout_s
    last, still = -1.0, 0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cpu = _proc_cpu(pid)
        done_reading = _read_bytes(pid) >= size
        still = still + 1 if done_reading and cpu == last else 0
        if still >= 3:
            return cpu
        last = cpu
    raise TimeoutError("rsyslogd did not finish")


ENV_ONLY = "BENCH_LOGS_ONLY"
"""Comma-separated contender keys to run (default: all), e.g. ``whole-ndjson,rsyslog``."""


def main() -> int:
    size = target_bytes()
    only = {k for k in os.environ.get(ENV_ONLY, "").split(",") if k}
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        root = Path(tmp)
        log = root / "0.log"
        written, physical = generate(log, size)
        records = logical_records(log)
        print(f"file: {written / 2**20:.0f} MiB, {physical:,} physical lines ({records:,} records), "
              f"{written / physical:.1f} B/line, 2 % partial; metadata "
              f"{len(ContainerMeta.build(KUBERNETES).encoded)} B/line of NDJSON")
        results: dict[str, Result] = {}
        for key, run in _contenders(log, records):
            if only and key not in only:
                continue
            out_dir = root / key
            out_dir.mkdir()
            results[key] = run(out_dir)
            print(results[key].show(), flush=True)
            shutil.rmtree(out_dir)
        if not only or "rsyslog" in only:
            rs_dir = root / "rsyslog"
            rs_dir.mkdir()
            rs = rsyslog(log, rs_dir, physical)
            if rs is not None:
                results["rsyslog"] = rs
                print(rs.show())
        _ratios(results)
    return 0


def _contenders(log: Path, records: int) -> list[tuple[str, Callable[[Path], Result]]]:
    ndjson, parquet = EncodingSettings(), EncodingSettings(format="parquet")

    def timed(name: str, run: Callable[[Path], tuple[int, int]]) -> Callable[[Path], Result]:
        return lambda out_dir: _timed(name, lambda: run(out_dir))

    def whole(name: str, encoding: EncodingSettings) -> Callable[[Path], Result]:
        return lambda out_dir: whole_source(log, out_dir, encoding, records, name)

    return [
        ("floor", timed("bare Python loop floor (orjson, isal gzip 1)", lambda d: bare_floor(log, d))),
        ("stdlib", timed("stdlib json + gzip level 6", lambda d: stdlib_baseline(log, d))),
        ("ndjson", timed("ours: parse+encode NDJSON + isal gzip 1", lambda d: ours(log, d, ndjson))),
        ("parquet", timed("ours: parse+encode Parquet + zstd 1", lambda d: ours(log, d, parquet))),
        ("whole-ndjson", whole("ours: WHOLE source NDJSON + isal gzip 1", ndjson)),
        ("whole-parquet", whole("ours: WHOLE source Parquet + zstd 1", parquet)),
    ]


def _ratios(results: dict[str, Result]) -> None:
    floor, rsyslog_result = results.get("floor"), results.get("rsyslog")
    for key, label in [("ndjson", "parse+encode NDJSON"), ("parquet", "parse+encode Parquet"),
                       ("whole-ndjson", "WHOLE source NDJSON"), ("whole-parquet", "WHOLE source Parquet")]:
        result = results.get(key)
        if result is None:
            continue
        ratios = []
        if rsyslog_result is not None:
            ratios.append(f"{result.rate / rsyslog_result.rate:5.2f}x rsyslog")
        if floor is not None:
            ratios.append(f"{result.rate / floor.rate:5.2f}x bare floor")
        if "stdlib" in results:
            ratios.append(f"{result.rate / results['stdlib'].rate:5.2f}x stdlib")
        print(f"{label:<22} {', '.join(ratios)}")
    print("targets: NDJSON >= 2x rsyslog; Parquet >= 3.6x rsyslog and <= 45 B/line")
    for key in ("parquet", "whole-parquet"):
        if key in results:
            print(f"{key} bytes per line: {results[key].out_bytes / results[key].lines:5.1f}")


if __name__ == "__main__":
    sys.exit(main())
