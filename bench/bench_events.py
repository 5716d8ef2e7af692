"""Events pipeline benchmark: the whole agent (watch → decode → dedup → enrich → batch → encode →
spool → file) against the simulator, run as a separate process so its CPU time is its own.

1. Throughput: N events already retained in the API; a first start with ``since: retained``
   exports all of them. Reports events/s of wall time and events per CPU-second of the agent
   process (target ≥ 5,000 on one core), beside a baseline measured in the same run: the same
   events read from the same watch by a bare loop (aiohttp + orjson, no processing) — the ceiling
   set by the simulator and the transport.
2. Latency: a paced stream of new events (the agent starts with ``since: now``); each event's time from its API write to the moment its
   file is visible in the archive. p99 must stay ≤ batch.max_age_s + 1 s.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from kubestream.sim.server import SimConfig, SimServer
from kubestream.sim.workload.generator import Workload
from kubestream.sim.workload.scenario import WorkloadConfig

N_EVENTS = int(os.environ.get("BENCH_EVENTS", "50000"))
LATENCY_RATE = 1000.0
LATENCY_SECONDS = 8.0
MAX_AGE_S = 2.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _event(i: int, pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "metadata": {"name": f"{meta['name']}.{i:016x}", "namespace": meta["namespace"]},
        "involvedObject": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                           "uid": meta["uid"], "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
        "reason": ("Pulled", "Created", "Started", "BackOff", "Unhealthy")[i % 5],
        "message": f"Container image \"registry.example.com/app:{i % 97}\" already present on machine",
        "source": {"component": "kubelet", "host": pod["spec"].get("nodeName", "")},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": "Normal",
        "eventTime": None, "reportingComponent": "kubelet", "reportingInstance": pod["spec"].get("nodeName", ""),
    }


def _archive_count(root: Path) -> int:
    total = 0
    for path in root.rglob("*.ndjson.gz"):
        total += gzip.decompress(path.read_bytes()).count(b"\n")
    return total


def _config(tmp: Path, server: SimServer, since: str = "retained") -> Path:
    cfg = {
        "kube": {"kubeconfig": str(server.write_kubeconfig(tmp / "kubeconfig"))},
        "events": {"since": since},
        "batch": {"max_records": 5000, "max_age_s": MAX_AGE_S},
        "sink": {"type": "file", "file": {"dir": str(tmp / "archive")}},
        "state": {"dir": str(tmp / "state")},
        "server": {"enabled": False},
        "log": {"level": "warning"},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _start_agent(config: Path, tmp: Path) -> subprocess.Popen[bytes]:
    # taskset pins the agent to one core so "per core" means one core.
    cmd = [sys.executable, "-m", "kubestream.cli.main", "run", "--config", str(config),
           "--ready-file", str(tmp / "ready")]
    if os.path.exists("/usr/bin/taskset"):
        cmd = ["taskset", "-c", "1", *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=(tmp / "agent.log").open("wb"))


async def _bare_watch_read(url: str, expected: int) -> float:
    """Seconds to read ``expected`` events from a fresh watch with no processing."""
    started = time.perf_counter()
    seen = 0
    async with aiohttp.ClientSession() as session, session.get(
        f"{url}/api/v1/events", params={"watch": "true", "resourceVersion": "0"}) as resp:
        async for line in resp.content:
            orjson.loads(line)
            seen += 1
            if seen >= expected:
                break
    return time.perf_counter() - started


def throughput(server: SimServer, pods: list[dict[str, Any]]) -> None:
    for i in range(N_EVENTS):
        server.cluster.create("events", _event(i, pods[i % len(pods)]))
    bare = asyncio.run(_bare_watch_read(server.url, N_EVENTS))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc = _start_agent(_config(tmp, server), tmp)
        started = time.perf_counter()
        try:
            while _archive_count(tmp / "archive") < N_EVENTS:
                if proc.poll() is not None:
                    raise SystemExit(f"agent died: {(tmp / 'agent.log').read_text()[-2000:]}")
                time.sleep(0.2)
            wall = time.perf_counter() - started
            cpu = _cpu_seconds(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"throughput: {N_EVENTS} retained events, enriched and archived")
    print(f"  agent:    {N_EVENTS / wall:9.0f} events/s wall ({wall:.2f} s incl. start-up), "
          f"{N_EVENTS / cpu:9.0f} events per agent CPU-second ({cpu:.2f} CPU-s)")
    print(f"  baseline: {N_EVENTS / bare:9.0f} events/s for a bare watch read (no processing)")
    print(f"  ratio agent/bare: {bare / wall:.2f}x wall;  target ≥ 5,000 events/s per core: "
          f"{'PASS' if N_EVENTS / cpu >= 5000 else 'FAIL'}")


def latency(server: SimServer) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # since=now: the backlog of the throughput phase is baselined, only new events count.
        proc = _start_agent(_config(tmp, server, since="now"), tmp)
        try:
            while not (tmp / "ready").exists():
                time.sleep(0.05)
            written: dict[str, float] = {}
            seen_at: dict[str, float] = {}
            seen_files: set[Path] = set()
            pods = server.cluster.list("pods")
            start = time.perf_counter()
            i = 0
            while time.perf_counter() - start < LATENCY_SECONDS:
                due = int((time.perf_counter() - start) * LATENCY_RATE)
                while i < due:
                    ev = server.cluster.create("events", _event(10_000_000 + i, pods[i % len(pods)]))
                    written[ev["metadata"]["uid"]] = time.perf_counter()
                    i += 1
                _scan(tmp / "archive", seen_files, seen_at)
                time.sleep(0.01)
            deadline = time.perf_counter() + MAX_AGE_S + 10
            while len(seen_at) < len(written) and time.perf_counter() < deadline:
                _scan(tmp / "archive", seen_files, seen_at)
                time.sleep(0.01)
        finally:
            proc.terminate()
            proc.wait(30)
    lat = sorted(seen_at[u] - t for u, t in written.items() if u in seen_at)
    p50 = statistics.median(lat)
    p99 = lat[int(len(lat) * 0.99) - 1]
    print(f"latency: {len(written)} events at {LATENCY_RATE:.0f}/s, {len(lat)} archived; "
          f"p50 {p50:.2f} s, p99 {p99:.2f} s, max {lat[-1]:.2f} s; bound max_age+1 = {MAX_AGE_S + 1:.1f} s: "
          f"{'PASS' if p99 <= MAX_AGE_S + 1 else 'FAIL'}")


def _scan(root: Path, seen_files: set[Path], seen_at: dict[str, float]) -> None:
    now = time.perf_counter()
    for path in root.rglob("*.ndjson.gz"):
        if path in seen_files:
            continue
        seen_files.add(path)
        for line in gzip.decompress(path.read_bytes()).splitlines():
            seen_at.setdefault(orjson.loads(line)["event"]["uid"], now)


def main() -> None:
    server = SimServer(SimConfig(history_max_events=max(102400, N_EVENTS * 2)))
    server.start()
    try:
        workload = Workload(server.cluster, WorkloadConfig(seed=1, events_per_s=0, deployments=40, nodes=10))
        workload.step()  # objects to enrich against; no events from the workload itself
        pods = server.cluster.list("pods")
        throughput(server, pods)
        latency(server)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
