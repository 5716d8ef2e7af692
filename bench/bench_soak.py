"""Soak: the agent's memory with a 10,000-pod cluster under churn and a steady event stream.

Run: ``.venv/bin/python -m bench.bench_soak [--minutes M] [--pods N] [--trace]``
(``python -m bench`` runs the short default; ``make soak`` runs the 30-minute one through
tests/kube/test_kube_soak.py).

The simulated API server and its workload generator run in a child process (their memory and
CPU are not the agent's). The workload keeps ~N pods (Deployments of 5 replicas) on 100 nodes,
deletes and replaces pods, rolls Deployments out (each rollout a new ReplicaSet; two old ones
kept, so ~3 ReplicaSets per Deployment), runs Jobs and short-lived pods, and records a steady
stream of Events. Event TTL and ``enrich.delete_delay_s`` are shortened so that the state they
bound (retained events, retained deletions) reaches its steady size inside the warm-up.

Default mode: the real agent as a process (``kubestream run``, file sink). Its RSS is sampled
every few seconds; after the warm-up it must stay within 10 % of the warm-up figure ("flat").
``--trace`` instead runs the agent's enricher and Events source in this process and prints
tracemalloc snapshot diffs (what grew between the end of the warm-up and the end), plus the
bytes per cached object of each cache, measured by walking the stores (shared, interned strings
counted once).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

EVENTS_PER_S = 50.0
EVENT_TTL_S = 120.0
DELETE_DELAY_S = 60.0
SAMPLE_EVERY_S = 5.0
FLAT_TOLERANCE = 0.10


# -- the cluster (child process) -----------------------------------------------------------------


def workload_config(pods: int, seed: int = 5, churn: float = 1.0) -> dict[str, Any]:
    """Workload knobs for about ``pods`` pods (5 per Deployment) on 100 nodes; ``churn``
    multiplies the rates of pod replacement, rollouts and events."""
    base = {
        "seed": seed, "nodes": 100, "namespaces": 20, "deployments": max(1, pods // 5), "replicas": (5, 5),
        "statefulsets": 2, "daemonsets": 0, "cronjobs": 2, "cronjob_period_s": 60.0, "services": 50,
        "events_per_s": EVENTS_PER_S, "tick_s": 0.5, "pod_churn_per_s": 5.0, "rollouts_per_s": 0.5,
        "short_lived_per_s": 0.5, "crashloop_fraction": 0.02, "ephemeral_fraction": 0.01,
        "failed_scheduling_fraction": 0.01, "events_api": "core",
    }
    for key in ("events_per_s", "pod_churn_per_s", "rollouts_per_s", "short_lived_per_s"):
        base[key] = float(base[key]) * churn
    return base


def _serve(pods: int, ttl_s: float, churn: float, kubeconfig: str, ready: Any, stop: Any) -> None:
    from kubestream.sim.testing import running_sim
    from kubestream.sim.workload.generator import Workload
    from kubestream.sim.workload.scenario import WorkloadConfig

    with running_sim(event_ttl_s=ttl_s) as server:
        workload = Workload(server.cluster, WorkloadConfig(**workload_config(pods, churn=churn)))
        workload.step()
        workload.start()
        server.write_kubeconfig(kubeconfig)
        ready.set()
        stop.wait()
        workload.stop(flush=False)


class Cluster:
    """The simulator + workload in a spawned child process."""

    def __init__(self, pods: int, directory: Path, ttl_s: float = EVENT_TTL_S, churn: float = 1.0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.kubeconfig = directory / "kubeconfig"
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self._child = ctx.Process(target=_serve, args=(pods, ttl_s, churn, str(self.kubeconfig), self._ready, self._stop),
                                  daemon=True)

    def __enter__(self) -> Cluster:
        self._child.start()
        if not self._ready.wait(timeout=600):
            raise RuntimeError("simulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._child.join(timeout=60)
        if self._child.is_alive():
            self._child.terminate()


# -- the agent process ----------------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _scrape(port: int, names: tuple[str, ...]) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith(names):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


_RELIST_METRICS = ("kubestream_relists_total",)


def _total(metrics: dict[str, float]) -> float:
    return sum(metrics.values())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent_config(directory: Path, kubeconfig: Path, port: int, delete_delay_s: float) -> Path:
    config = {
        "kube": {"kubeconfig": str(kubeconfig)},
        "events": {"since": "now"},
        "enrich": {"delete_delay_s": delete_delay_s},
        "batch": {"max_records": 5000, "max_age_s": 5.0},
        "sink": {"type": "file", "file": {"dir": str(directory / "archive")}},
        "state": {"dir": str(directory / "state")},
        "server": {"host": "127.0.0.1", "port": port},
        "log": {"level": "warning"},
    }
    path = directory / "kubestream.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def soak_agent(minutes: float, pods: int, *, warmup_s: float | None = None, ttl_s: float = EVENT_TTL_S,
               delete_delay_s: float = DELETE_DELAY_S, churn: float = 1.0) -> dict[str, Any]:
    """Run the agent against the cluster for ``minutes``; returns the RSS figures."""
    duration = minutes * 60.0
    warmup = warmup_s if warmup_s is not None else min(600.0, max(ttl_s, delete_delay_s) + 60.0, duration / 2)
    with tempfile.TemporaryDirectory(prefix="kubestream-soak-") as d, \
            Cluster(pods, Path(d), ttl_s=ttl_s, churn=churn) as cluster:
        tmp = Path(d)
        port = _free_port()
        cmd = [sys.executable, "-m", "kubestream.cli.main", "run", "--config",
               str(agent_config(tmp, cluster.kubeconfig, port, delete_delay_s)), "--ready-file", str(tmp / "ready")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=(tmp / "agent.log").open("wb"))
        try:
            while not (tmp / "ready").exists():
                if proc.poll() is not None:
                    raise SystemExit(f"agent died: {(tmp / 'agent.log').read_text()[-2000:]}")
                time.sleep(0.2)
            started = time.monotonic()
            samples: list[tuple[float, int]] = []
            relists: list[tuple[int, float]] = []
            while (elapsed := time.monotonic() - started) < duration:
                if proc.poll() is not None:
                    raise SystemExit(f"agent died: {(tmp / 'agent.log').read_text()[-2000:]}")
                samples.append((elapsed, _rss_kib(proc.pid)))
                if len(samples) % int(60 / SAMPLE_EVERY_S) == 1:
                    # Relists per minute beside the RSS: a step in RSS that follows a relist is the
                    # allocator's high-water mark of the re-read objects, not a leak.
                    relists.append((round(elapsed), _total(_scrape(port, _RELIST_METRICS))))
                time.sleep(SAMPLE_EVERY_S)
            cached = _scrape(port, ("kubestream_cached_objects", "kubestream_records_out_total", *_RELIST_METRICS))
        finally:
            proc.terminate()
            proc.wait(60)
    after = [rss for t, rss in samples if t >= warmup]
    at_warmup = after[0] if after else samples[-1][1]
    return {
        "minutes": minutes, "pods": pods, "warmup_s": warmup, "rss_start_kib": samples[0][1],
        "rss_warmup_kib": at_warmup, "rss_end_kib": samples[-1][1], "rss_max_after_warmup_kib": max(after or [0]),
        "growth_after_warmup": (max(after or [at_warmup]) - at_warmup) / at_warmup,
        "timeline_kib": [(round(t), rss) for t, rss in samples[:: max(1, int(60 / SAMPLE_EVERY_S))]],
        "relists_timeline": relists,
        "metrics": cached,
    }


# -- in-process tracing ---------------------------------------------------------------------------


def deep_size(root: object) -> int:
    """Bytes reachable from ``root``, each object counted once (shared interned strings once)."""
    import msgspec

    seen: set[int] = set()
    stack: list[object] = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if obj is None or isinstance(obj, bool | int | float) or id(obj) in seen:  # numbers: rv fields, tiny
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, msgspec.Struct):
            stack.extend(getattr(obj, f) for f in obj.__struct_fields__)
    return total


def _store_bytes(store: Any) -> tuple[int, int]:
    """(bytes, objects) of one ObjectStore: its maps and the objects in them."""
    parts = [store._live, store._live_by_name, store._deleted, store._deleted_by_name, store._indexes]
    return deep_size(parts), len(store._live) + len(store._deleted)


async def _trace(minutes: float, kubeconfig: Path, directory: Path, delete_delay_s: float) -> None:
    from tests.sources.source_events_support import CommittingSink

    from kubestream.config.settings import EnrichSettings, EventsSettings, KubeSettings, Settings
    from kubestream.enrich import Enricher
    from kubestream.kube.client import KubeClient
    from kubestream.obs.metrics import Metrics
    from kubestream.sources.events import EventsSource
    from kubestream.state.store import StateStore

    settings = Settings(events=EventsSettings(since="now"), kube=KubeSettings(kubeconfig=str(kubeconfig)),
                        enrich=EnrichSettings(delete_delay_s=delete_delay_s))
    metrics = Metrics()
    client = await KubeClient.create(settings.kube, metrics=metrics)
    state = StateStore(directory / "state.db")
    sink = CommittingSink(state)
    enricher = Enricher(client, settings, metrics=metrics)
    source = EventsSource(client, settings, state, sink, enricher, metrics=metrics)

    async def commit() -> None:
        while True:
            await asyncio.sleep(0.5)
            sink.commit()
            sink.committed.clear()

    tasks = [asyncio.create_task(c) for c in (enricher.run(), source.run(), commit())]
    await enricher.synced.wait()
    _report_sizes(enricher, source, "synced")
    tracemalloc.start(10)
    interval = minutes * 60.0 / 4
    snapshots = []
    for i in range(4):
        await asyncio.sleep(interval)
        gc.collect()
        snapshots.append(tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen*>")]))
        _report_sizes(enricher, source, f"t={interval * (i + 1):.0f}s traced={tracemalloc.get_traced_memory()[0] >> 20} MiB")
        print(f"  the server retains {await _retained_events(client)} events", flush=True)
    print("grew between the first and the last snapshot:")
    for stat in snapshots[-1].compare_to(snapshots[0], "traceback")[:12]:
        print(f"  {stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+7d} blocks")
        for line in stat.traceback.format()[-6:]:
            print("      " + line)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.close()
    state.close()


async def _retained_events(client: Any) -> int:
    """How many Events the API server holds: one item and its ``remainingItemCount`` (Events have
    no watch cache, so a limited list is a paginated read of etcd that carries the count)."""
    page = await client.request_json("GET", "/api/v1/events", query={"limit": "1"})
    return len(page.get("items") or []) + int(page.get("metadata", {}).get("remainingItemCount") or 0)


def _report_sizes(enricher: Any, source: Any, label: str) -> None:
    parts = []
    for kind, store in _stores(enricher):
        size, count = _store_bytes(store)
        parts.append(f"{kind} {count} ({size / max(count, 1):.0f} B each)")
    marks = source._watermarks
    parts.append(f"event watermarks {len(marks)} ({deep_size(marks) / max(len(marks), 1):.0f} B each)")
    print(f"{label}: " + ", ".join(parts), flush=True)


def _stores(enricher: Any) -> Iterator[tuple[str, Any]]:
    for kind in ("pods", "nodes", "namespaces", "services"):
        store = getattr(enricher, kind)
        if store is not None:
            yield kind, store
    yield from enricher.workloads.items()


def trace(minutes: float, pods: int, *, ttl_s: float, delete_delay_s: float, churn: float) -> None:
    with tempfile.TemporaryDirectory(prefix="kubestream-soak-") as d, \
            Cluster(pods, Path(d), ttl_s=ttl_s, churn=churn) as cluster:
        asyncio.run(_trace(minutes, cluster.kubeconfig, Path(d), delete_delay_s))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_soak")
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "1.5")))
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--ttl", type=float, default=EVENT_TTL_S, help="event TTL of the simulator (s)")
    parser.add_argument("--delete-delay", type=float, default=DELETE_DELAY_S, help="enrich.delete_delay_s")
    parser.add_argument("--churn", type=float, default=1.0, help="multiplies churn and event rates")
    parser.add_argument("--trace", action="store_true", help="in-process tracemalloc diffs instead of RSS")
    args = parser.parse_args(argv)
    if args.trace:
        trace(args.minutes, args.pods, ttl_s=args.ttl, delete_delay_s=args.delete_delay, churn=args.churn)
        return 0
    r = soak_agent(args.minutes, args.pods, ttl_s=args.ttl, delete_delay_s=args.delete_delay, churn=args.churn)
    print(f"soak: {args.pods:,} pods with churn, {EVENTS_PER_S:.0f} events/s, {args.minutes:g} min "
          f"(warm-up {r['warmup_s']:.0f} s)")
    relists = dict(r["relists_timeline"])
    for t, rss in r["timeline_kib"]:
        count = relists.get(t)
        print(f"  t={t:5d}s  RSS {rss / 1024:7.1f} MiB" + (f"  relists so far {count:.0f}" if count is not None else ""))
    print(f"RSS: start {r['rss_start_kib'] / 1024:.1f} MiB, after warm-up {r['rss_warmup_kib'] / 1024:.1f} MiB, "
          f"max after warm-up {r['rss_max_after_warmup_kib'] / 1024:.1f} MiB, end {r['rss_end_kib'] / 1024:.1f} MiB; "
          f"growth after warm-up {r['growth_after_warmup'] * 100:+.1f} % (flat: within {FLAT_TOLERANCE * 100:.0f} %): "
          f"{'PASS' if r['growth_after_warmup'] <= FLAT_TOLERANCE else 'FAIL'}")
    print(json.dumps(r["metrics"]))
    return 0 if r["growth_after_warmup"] <= FLAT_TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
