"""What one node agent costs the API server, beside a cluster-wide (events-collector-style) agent.

A simulated cluster of 100 nodes and about 1,000 pods (``bench_soak.workload_config(1000)``:
200 Deployments of 5 replicas, 50 Services, 20 namespaces, CronJobs) with churn: pods replaced,
Deployments rolled out (a new ReplicaSet, new pods on random nodes) and CronJob runs, all over
the cluster, including the agent's node. In this process run, each with its own token (the
simulator tells their requests apart by user):

* a node agent's ``Enricher(node_name=<a node with about 10 pods>)`` — what a DaemonSet pod with
  ``logs.enabled`` runs;
* a cluster-wide ``Enricher()`` — what the events collector (or a combined agent) runs.

Measured over ``--window`` seconds after both synced (plus the initial sync, reported apart):
requests by verb and resource, what their watches streamed (events and bytes, the simulator's
per-watch accounting), objects cached; and at the end, how many of the node's pods have a complete
block (owner chain to the top workload, namespace labels, services).

    python -m bench.bench_node_agent_cost [--window 60]

``--scale NODES,PODS`` measures instead a sample of node agents (``--agents``, default 3) in
*both* metadata modes at once (``logs.metadata_source`` apiserver and kubelet, each agent with its
own token; the simulator serves HTTPS kubelets) against a cluster of that size with churn, and
prints per agent per hour: requests, watch events and bytes, kubelet ``/pods`` reads, objects
cached; and the process's RSS growth while the agents ran (all agents together, the simulator's
own growth included, so an upper bound). A 5,000-node cluster of 150,000 pods does not fit this
machine's simulator (about 270 KB of RSS per stored pod with its managedFields and history), so
the figures come from the largest size that builds; per-agent cost depends on the pods of the
agent's node, not on the cluster, which is what the run shows.

    python -m bench.bench_node_agent_cost --scale 500,15000 --agents 3 --window 120
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.bench_soak import workload_config
from kubestream.config.settings import EventsSettings, KubeletSettings, KubeSettings, LogsSettings, Settings
from kubestream.enrich import Enricher
from kubestream.kube.client import KubeClient
from kubestream.sim.server import SimServer
from kubestream.sim.testing import running_sim
from kubestream.sim.workload.generator import Workload
from kubestream.sim.workload.scenario import WorkloadConfig

NODE_USER = "system:serviceaccount:kubestream:node-agent"
WIDE_USER = "system:serviceaccount:kubestream:events-collector"
TOKENS = {"node-agent-token": NODE_USER, "collector-token": WIDE_USER}
POD_TARGET = 10
SCOPED = ("replicasets.apps", "jobs.batch", "namespaces", "services")


def _pick_node(server: SimServer) -> tuple[str, int]:
    per_node = Counter(p["spec"].get("nodeName") for p in server.cluster.list("pods") if p["spec"].get("nodeName"))
    node, count = min(per_node.items(), key=lambda kv: (abs(kv[1] - POD_TARGET), kv[0]))
    return str(node), count


def _cached(e: Enricher) -> dict[str, int]:
    out = {"pods": len(e.pods or ()), "nodes": len(e.nodes or ()), "namespaces": len(e.namespaces or ()),
           "services": len(e.services or ())}
    for kind, store in e.workloads.items():
        out[kind] = len(store)
    return out


def _by_request(server: SimServer, user: str, since: float, until: float) -> Counter[str]:
    return Counter(f"{r.verb} {r.resource}" + (" (namespaced)" if r.namespace else "")
                   for r in server.requests.records() if r.user == user and since <= r.time < until)


async def _measure(window_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-node-cost-") as tmp, \
            running_sim(tokens=TOKENS, bookmark_interval_s=60.0) as server:
        config = workload_config(1000)
        config["events_per_s"] = 5.0  # events are not what is measured here
        workload = Workload(server.cluster, WorkloadConfig(**config))
        for _ in range(3):  # created, then scheduled
            workload.step()
        node, node_pods = _pick_node(server)
        pods_total = len(server.cluster.list("pods"))
        clients: list[KubeClient] = []
        enrichers: dict[str, Enricher] = {}
        tasks: list[asyncio.Task[None]] = []
        for token, user in TOKENS.items():
            kubeconfig = server.write_kubeconfig(Path(tmp) / f"{token}.kubeconfig", token=token)
            settings = Settings(kube=KubeSettings(kubeconfig=str(kubeconfig)))
            client = await KubeClient.create(settings.kube)
            clients.append(client)
            e = Enricher(client, settings, node_name=node if user == NODE_USER else None)
            enrichers[user] = e
            tasks.append(asyncio.create_task(e.run()))
        t_sync = time.time()
        try:
            for e in enrichers.values():
                await asyncio.wait_for(e.synced.wait(), 120)
            synced_at = time.time()
            sync_traffic = {u: server.requests.watch_totals(user=u) for u in TOKENS.values()}
            sync_requests = {u: _by_request(server, u, 0, synced_at) for u in TOKENS.values()}
            server.requests.reset()
            workload.start()
            t0 = time.time()
            node_pods_seen: set[str] = set()
            while time.time() - t0 < window_s:
                await asyncio.sleep(1.0)
                pods = enrichers[NODE_USER].pods
                node_pods_seen.update(p.uid for p in (pods.items() if pods is not None else ()))
            t1 = time.time()
            workload.stop(flush=False)
            await asyncio.sleep(2.0)  # the last answers land
            traffic = {u: server.requests.watch_totals(user=u) for u in TOKENS.values()}
            # What a node agent streamed before its owners, namespaces and services were scoped to
            # its node: the cluster-wide watches of those four kinds (the pods and the node were
            # already node-scoped).
            wide_part = [server.requests.watch_totals(user=WIDE_USER, resource=r) for r in SCOPED]
            own_part = [server.requests.watch_totals(user=NODE_USER, resource=r) for r in ("pods", "nodes")]
            requests = {u: _by_request(server, u, t0, time.time()) for u in TOKENS.values()}
            node_enricher = enrichers[NODE_USER]
            blocks = [node_enricher.for_pod(p.namespace, p.name, p.uid)
                      for p in (node_enricher.pods.items() if node_enricher.pods is not None else ())]
            cached = {u: _cached(e) for u, e in enrichers.items()}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for client in clients:
                await client.close()

    print(f"machine: {platform.machine()} {platform.processor() or ''} {platform.python_implementation()} "
          f"{platform.python_version()}, {_cpus()} CPUs")
    print(f"cluster: {pods_total} pods on 100 nodes; node agent on {node} ({node_pods} pods at start); "
          f"sync {synced_at - t_sync:.1f} s; window {t1 - t0:.0f} s with churn "
          f"({len(node_pods_seen)} pods seen on the node during it)")
    for label, user in (("node agent", NODE_USER), ("cluster-wide", WIDE_USER)):
        print(f"\n{label}:")
        print(f"  initial sync: {sum(sync_requests[user].values())} requests "
              f"({_fmt(sync_requests[user])}); watches streamed {sync_traffic[user].events} events, "
              f"{sync_traffic[user].bytes / 1e6:.2f} MB")
        print(f"  window: {sum(requests[user].values())} requests ({_fmt(requests[user])})")
        print(f"  window watch traffic: {traffic[user].events} events, {traffic[user].bytes / 1e6:.3f} MB "
              f"({traffic[user].watches} watch streams)")
        print(f"  cached objects: {_fmt(cached[user])} (total {sum(cached[user].values())})")
    n, w = traffic[NODE_USER], traffic[WIDE_USER]
    print(f"\nnode agent / cluster-wide, window: watch events {n.events / max(w.events, 1):.4f}, "
          f"watch bytes {n.bytes / max(w.bytes, 1):.4f}, cached objects "
          f"{sum(cached[NODE_USER].values()) / max(sum(cached[WIDE_USER].values()), 1):.4f}")
    own_events, own_bytes = sum(t.events for t in own_part), sum(t.bytes for t in own_part)
    old_events = own_events + sum(t.events for t in wide_part)
    old_bytes = own_bytes + sum(t.bytes for t in wide_part)
    old_cached = sum(cached[WIDE_USER][k] for k in ("ReplicaSet", "Job", "namespaces", "services"))
    new_cached = sum(cached[NODE_USER][k] for k in ("ReplicaSet", "Job", "namespaces", "services"))
    print(f"a node agent with cluster-wide ReplicaSet/Job/Namespace/Service watches (the same node-scoped "
          f"pods and node, {own_events} events, {own_bytes / 1e6:.3f} MB, plus those four as streamed to the "
          f"cluster-wide agent): {old_events} events, {old_bytes / 1e6:.3f} MB in the window, {old_cached} "
          f"objects of those four kinds cached; node agent now: {n.events} events, {n.bytes / 1e6:.3f} MB, "
          f"{new_cached} objects "
          f"(ratio events {n.events / max(old_events, 1):.4f}, bytes {n.bytes / max(old_bytes, 1):.4f}, "
          f"objects {new_cached / max(old_cached, 1):.3f})")
    ok = sum(1 for b in blocks if b.get("enrichment") == "ok")
    owners = sum(1 for b in blocks if b.get("owner_kind"))
    print(f"node agent blocks at the end: {ok}/{len(blocks)} enrichment ok, {owners} with an owner")


def _fmt(counts: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _cpus() -> int:
    return os.cpu_count() or 0


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _pick_nodes(server: SimServer, count: int, target: int) -> list[tuple[str, int]]:
    per_node = Counter(p["spec"].get("nodeName") for p in server.cluster.list("pods") if p["spec"].get("nodeName"))
    ranked = sorted(per_node.items(), key=lambda kv: (abs(kv[1] - target), kv[0]))
    return [(str(n), c) for n, c in ranked[:count]]


async def _measure_scale(nodes: int, pods: int, agents: int, window_s: float) -> None:
    tokens = {f"{mode}-{i}-token": f"system:serviceaccount:kubestream:{mode}-{i}"
              for mode in ("apiserver", "kubelet") for i in range(agents)}
    rss_start = _rss_mb()
    with tempfile.TemporaryDirectory(prefix="bench-node-scale-") as tmp, \
            running_sim(tokens=tokens, bookmark_interval_s=60.0, kubelets=True, kubelet_sync_s=5.0) as server:
        config = workload_config(pods)
        config.update(nodes=nodes, events_per_s=0.0, namespaces=max(20, pods // 1000),
                      services=max(50, pods // 30))
        workload = Workload(server.cluster, WorkloadConfig(**config))
        t_build = time.time()
        for _ in range(3):  # created, then scheduled
            workload.step()
        build_s = time.time() - t_build
        pods_total = len(server.cluster.list("pods"))
        chosen = _pick_nodes(server, agents, pods // nodes)
        for node, _ in chosen:
            server.kubelet(node)
        rss_cluster = _rss_mb()
        clients: list[KubeClient] = []
        enrichers: dict[str, Enricher] = {}
        tasks: list[asyncio.Task[None]] = []
        for token, user in tokens.items():
            mode, index = user.rsplit(":", 1)[1].split("-")
            kubeconfig = server.write_kubeconfig(Path(tmp) / f"{token}.kubeconfig", token=token)
            token_file = Path(tmp) / f"{token}.token"
            token_file.write_text(token)
            logs = LogsSettings(enabled=True, node_name=chosen[int(index)][0], metadata_source=mode,
                                kubelet=KubeletSettings(ca_file=server.kubelet_ca_path, token_file=token_file))
            settings = Settings(kube=KubeSettings(kubeconfig=str(kubeconfig)), logs=logs,
                                events=EventsSettings(enabled=False))
            client = await KubeClient.create(settings.kube)
            clients.append(client)
            e = Enricher(client, settings, node_name=chosen[int(index)][0])
            enrichers[user] = e
            tasks.append(asyncio.create_task(e.run()))
        try:
            t_sync = time.time()
            for e in enrichers.values():
                await asyncio.wait_for(e.synced.wait(), 600)
            sync_s = time.time() - t_sync
            server.requests.reset()
            server.kubelet_requests.reset()
            workload.start()
            t0 = time.time()
            await asyncio.sleep(window_s)
            t1 = time.time()
            workload.stop(flush=False)
            await asyncio.sleep(2.0)
            rss_agents = _rss_mb()
            per_user = {u: (server.requests.watch_totals(user=u), _by_request(server, u, t0, time.time()))
                        for u in tokens.values()}
            kubelet_reads = {node: server.kubelet_requests.count(node=node, path="/pods") for node, _ in chosen}
            cached = {u: _cached(e) for u, e in enrichers.items()}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for client in clients:
                await client.close()
    hours = (t1 - t0) / 3600
    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}, "
          f"{_cpus()} CPUs")
    print(f"cluster: {nodes} nodes, {pods_total} pods; built in {build_s:.0f} s; agents on "
          f"{', '.join(f'{n} ({c} pods)' for n, c in chosen)}; synced in {sync_s:.1f} s; window {t1 - t0:.0f} s")
    print(f"RSS: start {rss_start:.0f} MB, cluster built {rss_cluster:.0f} MB, after the window with "
          f"{len(enrichers)} agents {rss_agents:.0f} MB")
    for mode in ("apiserver", "kubelet"):
        users = [u for u in tokens.values() if f":{mode}-" in u]
        n = len(users)
        requests = sum(sum(per_user[u][1].values()) for u in users)
        events = sum(per_user[u][0].events for u in users)
        mbytes = sum(per_user[u][0].bytes for u in users) / 1e6
        objects = sum(sum(cached[u].values()) for u in users)
        pod_requests = sum(v for u in users for k, v in per_user[u][1].items() if k.endswith(" pods"))
        print(f"\n{mode} mode, per agent per hour (mean of {n}): {requests / n / hours:.0f} requests "
              f"({pod_requests / n / hours:.0f} on pods), {events / n / hours:.0f} watch events, "
              f"{mbytes / n / hours:.2f} MB streamed; objects cached {objects / n:.0f}")
        if mode == "kubelet":
            print(f"  kubelet GET /pods per agent per hour: {sum(kubelet_reads.values()) / n / hours:.0f}")
        for u in users:
            print(f"  {u.rsplit(':', 1)[1]}: {_fmt(per_user[u][1])}; cached {_fmt(cached[u])}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=60.0, help="seconds of churn measured (default 60)")
    parser.add_argument("--scale", help="NODES,PODS: node agents in both metadata modes on a cluster of that size")
    parser.add_argument("--agents", type=int, default=3, help="node agents per mode with --scale (default 3)")
    args = parser.parse_args()
    if args.scale:
        nodes, pods = (int(x) for x in args.scale.split(","))
        asyncio.run(_measure_scale(nodes, pods, args.agents, args.window))
    else:
        asyncio.run(_measure(args.window))


if __name__ == "__main__":
    main()
