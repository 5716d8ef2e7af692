"""A node agent's API cost follows the pods on its node: owners and namespaces by GET, services
watched only in its pods' namespaces; nothing cluster-wide besides what the events collector does."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.enrich.enrich_support import Cluster, controller_spec, eventually, make_pod, owner_ref, uid

from kubestream.config.settings import Settings
from kubestream.enrich import Enricher
from kubestream.enrich import enricher as enricher_module
from kubestream.enrich import lookups as lookups_module
from kubestream.sim.server import SimServer

CLUSTER_SCOPED_KINDS = ("replicasets.apps", "jobs.batch", "services", "namespaces")


def _elsewhere(server: SimServer, count: int) -> None:
    """A busy rest of the cluster: other namespaces, Deployments and ReplicaSets on node-2."""
    c = server.cluster
    for i in range(count):
        ns = f"team-{i}"
        c.create("namespaces", {"metadata": {"name": ns}})
        dep = c.create("deployments", {"metadata": {"name": "api", "namespace": ns},
                                       "spec": controller_spec("api")}, group="apps")
        rs = c.create("replicasets", {"metadata": {"name": "api-1", "namespace": ns, "labels": {"app": "api"},
                                                   "ownerReferences": [owner_ref(dep, "Deployment")]},
                                      "spec": controller_spec("api")}, group="apps")
        c.create("services", {"metadata": {"name": "api", "namespace": ns}, "spec": {"selector": {"app": "api"}}})
        make_pod(server, "api-1-a", ns, owner=owner_ref(rs, "ReplicaSet"), node="node-2", labels={"app": "api"})


def _with_enrich(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(update={"enrich": settings.enrich.model_copy(update=update)})


def _rollout(server: SimServer, cluster: Cluster, name: str, node: str = "node-1") -> tuple[dict[str, Any], dict[str, Any]]:
    rs = server.cluster.create("replicasets", {"metadata": {
        "name": f"web-{name}", "namespace": "shop", "labels": {"app": "web"},
        "ownerReferences": [owner_ref(cluster.deploy, "Deployment")]}, "spec": controller_spec("web")}, group="apps")
    pod = make_pod(server, f"web-{name}-p", "shop", owner=owner_ref(rs, "ReplicaSet"), node=node,
                   labels={"app": "web", "tier": "front"})
    return rs, pod


async def test_a_node_agent_watches_nothing_cluster_wide_and_still_has_every_field(
        cluster: Cluster, sim_server: SimServer, enricher_factory: Callable[..., Any]) -> None:
    _elsewhere(sim_server, 5)
    e: Enricher = await enricher_factory(node_name="node-1")
    records = sim_server.requests.records()
    wide = [r for r in records if r.resource in CLUSTER_SCOPED_KINDS and r.verb in ("list", "watch")
            and r.namespace is None]
    assert not wide, wide
    # Cached: what node-1's three pods need, nothing of the five other namespaces.
    assert [r.name for r in e.workloads["ReplicaSet"].items()] == ["web-7d9f"]
    assert [j.name for j in e.workloads["Job"].items()] == ["nightly-2900"]
    assert [n.name for n in e.namespaces.items()] == ["shop"]  # type: ignore[union-attr]
    assert sorted(s.name for s in e.services.items()) == ["db", "external", "front", "web"]  # type: ignore[union-attr]
    web = e.for_pod("shop", "web-7d9f-x1", uid(cluster.web), container="app")
    assert web["owners"] == [{"kind": "ReplicaSet", "name": "web-7d9f", "uid": uid(cluster.rs)},
                             {"kind": "Deployment", "name": "web", "uid": uid(cluster.deploy)}]
    assert web["owner_kind"] == "Deployment" and web["namespace_labels"]["team"] == "payments"
    assert web["services"] == ["front", "web"] and web["enrichment"] == "ok"
    batch = e.for_pod("shop", "nightly-2900-q", uid(cluster.batch))
    assert (batch["owner_kind"], batch["owner_name"], batch["enrichment"]) == ("CronJob", "nightly", "ok")
    db = e.for_pod("shop", "db-0", uid(cluster.db0))
    assert db["owner_kind"] == "StatefulSet" and db["services"] == ["db"]
    # One GET per owner and namespace, no matter how many blocks are built.
    before = len(sim_server.requests.records())
    for _ in range(50):
        e.for_pod("shop", "web-7d9f-x1", uid(cluster.web), container="app")
    assert len(sim_server.requests.records()) == before
    gets = sorted((r.resource, r.path.rsplit("/", 1)[-1]) for r in sim_server.requests.records() if r.verb == "get")
    assert gets == [("jobs.batch", "nightly-2900"), ("namespaces", "shop"), ("replicasets.apps", "web-7d9f")]


async def test_a_rollout_on_the_node_is_enriched_from_its_first_line(
        cluster: Cluster, sim_server: SimServer, enricher_factory: Callable[..., Any], tmp_path: Path) -> None:
    e: Enricher = await enricher_factory(node_name="node-1")
    rs, pod = _rollout(sim_server, cluster, "8e1a")
    log_dir = tmp_path / f"shop_web-8e1a-p_{uid(pod)}" / "app"
    log_dir.mkdir(parents=True)
    # The log file can be found before the watch event: the first lines wait for the pod, its
    # new ReplicaSet and (already cached) the Deployment above it.
    e.find_pod("shop", "web-8e1a-p", uid(pod))
    await e.settle_pod(uid(pod), log_dir / "0.log")
    block = e.for_pod("shop", "web-8e1a-p", uid(pod), container="app")
    assert block["owners"] == [{"kind": "ReplicaSet", "name": "web-8e1a", "uid": uid(rs)},
                               {"kind": "Deployment", "name": "web", "uid": uid(cluster.deploy)}]
    assert block["enrichment"] == "ok"
    # A rollout elsewhere costs this agent nothing.
    before = len(sim_server.requests.records())
    _rollout(sim_server, cluster, "99ff", node="node-2")
    await asyncio.sleep(0.3)
    assert len(sim_server.requests.records()) == before
    assert "web-99ff" not in {r.name for r in e.workloads["ReplicaSet"].items()}


async def test_a_deleted_owner_is_kept_for_the_delay(cluster: Cluster, sim_server: SimServer, settings: Settings,
                                                     enricher_factory: Callable[..., Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lookups_module, "TTL_S", 0.2)
    e: Enricher = await enricher_factory(node_name="node-1", settings_=_with_enrich(settings, delete_delay_s=30.0))
    sim_server.cluster.delete("replicasets", "shop", "web-7d9f", group="apps")
    await asyncio.sleep(0.3)  # the TTL passed: the next use refreshes it, and learns it is gone
    e.for_pod("shop", "web-7d9f-x1", uid(cluster.web))
    store = e.workloads["ReplicaSet"]
    await eventually(lambda: store.is_deleted(uid(cluster.rs)))
    block = e.for_pod("shop", "web-7d9f-x1", uid(cluster.web))
    assert block["owner_kind"] == "Deployment" and block["enrichment"] == "ok"
    # Gone is an answer: no more GETs for it while the negative answer holds.
    gets = sim_server.requests.count(verb="get", resource="replicasets.apps")
    for _ in range(20):
        e.for_pod("shop", "web-7d9f-x1", uid(cluster.web))
    await asyncio.sleep(0.1)
    assert sim_server.requests.count(verb="get", resource="replicasets.apps") == gets


async def test_an_api_outage_gives_a_bounded_jittered_request_count(
        cluster: Cluster, sim_server: SimServer, settings: Settings, enricher_factory: Callable[..., Any]) -> None:
    slow = settings.model_copy(update={"kube": settings.kube.model_copy(
        update={"backoff_initial_s": 0.2, "backoff_max_s": 1.0})})
    e: Enricher = await enricher_factory(node_name="node-1", settings_=slow)
    storm_s = 4.0
    sim_server.faults.error_storm(503, seconds=storm_s, resource="replicasets.apps", verbs=["get"])
    started = time.time()
    pods = [_rollout(sim_server, cluster, f"r{i}")[1] for i in range(8)]  # 8 new ReplicaSets
    await eventually(lambda: all(p["metadata"]["uid"] in e.pods for p in pods))  # type: ignore[operator]
    await asyncio.sleep(storm_s - (time.time() - started))
    during = [r for r in sim_server.requests.records()
              if r.resource == "replicasets.apps" and r.verb == "get" and started <= r.time < started + storm_s]
    # 8 keys, 4 s: one probe per backoff interval (mean 0.1, 0.2, 0.4, then 0.5 s), not 8 per interval.
    assert 2 <= len(during) <= 20, len(during)
    assert all(r.code == 503 for r in during)
    gaps = [b.time - a.time for a, b in itertools.pairwise(during)]
    assert len({round(g, 2) for g in gaps}) > 1, "full jitter, not a fixed period"
    # After the storm every ReplicaSet arrives, one GET each.
    await eventually(lambda: all(
        e.for_pod("shop", p["metadata"]["name"], uid(p))["enrichment"] == "ok" for p in pods), within=10)
    ok = [r for r in sim_server.requests.records() if r.resource == "replicasets.apps" and r.code == 200]
    assert len(ok) == 1 + 8


async def test_service_watches_follow_the_namespaces_of_the_nodes_pods(
        cluster: Cluster, sim_server: SimServer, settings: Settings, enricher_factory: Callable[..., Any]) -> None:
    _elsewhere(sim_server, 2)
    e: Enricher = await enricher_factory(node_name="node-1", settings_=_with_enrich(settings, delete_delay_s=0.5))
    scope = e.node_scope
    assert scope is not None and scope.service_namespaces == ["shop"]
    # A pod of team-0 lands on this node: that namespace's services are watched, and used.
    rs = sim_server.cluster.get("replicasets", "team-0", "api-1", group="apps")
    pod = make_pod(sim_server, "api-1-b", "team-0", owner=owner_ref(rs, "ReplicaSet"), labels={"app": "api"})
    await eventually(lambda: scope.services_synced("team-0"))
    assert e.for_pod("team-0", "api-1-b", uid(pod))["services"] == ["api"]
    assert sim_server.requests.open_watches("services") == 2
    # It leaves: the watch stops delete_delay_s later, and its services are dropped.
    sim_server.cluster.delete("pods", "team-0", "api-1-b", grace_period_s=0)
    await eventually(lambda: scope.service_namespaces == ["shop"], within=5)
    await eventually(lambda: sim_server.requests.open_watches("services") == 1)
    assert {s.namespace for s in e.services.items()} == {"shop"}  # type: ignore[union-attr]


async def test_services_off_means_no_service_requests(
        cluster: Cluster, sim_server: SimServer, settings: Settings, enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory(node_name="node-1", settings_=_with_enrich(settings, services=False))
    block = e.for_pod("shop", "web-7d9f-x1", uid(cluster.web))
    assert "services" not in block and block["owner_kind"] == "Deployment"
    assert sim_server.requests.count(resource="services") == 0


async def test_the_events_collector_stays_cluster_wide(
        cluster: Cluster, sim_server: SimServer, enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory()
    assert e.node_scope is None
    await eventually(lambda: sim_server.requests.open_watches() >= 6)
    for kind in CLUSTER_SCOPED_KINDS:
        assert [r for r in sim_server.requests.records()
                if r.resource == kind and r.verb == "watch" and r.namespace is None]


# -- a new pod's first lines wait for it (API server mode), leftovers never do ------------------


def _pod_dir(root: Path, name: str, pod_uid: str, *, age_s: float = 0.0) -> Path:
    directory = root / f"shop_{name}_{pod_uid}"
    (directory / "app").mkdir(parents=True)
    if age_s:
        then = time.time() - age_s
        os.utime(directory, (then, then))
    return directory / "app" / "0.log"


async def test_a_new_pods_lines_wait_for_its_watch_event(
        cluster: Cluster, sim_server: SimServer, enricher_factory: Callable[..., Any], tmp_path: Path) -> None:
    e: Enricher = await enricher_factory(node_name="node-1")
    created = sim_server.cluster.create("pods", {"metadata": {"name": "late", "namespace": "shop"}, "spec": {
        "nodeName": "node-1", "containers": [{"name": "app", "image": "x"}]}})
    path = _pod_dir(tmp_path, "late", uid(created))
    started = time.monotonic()
    if uid(created) not in e.pods:  # type: ignore[operator]
        await e.settle_pod(uid(created), path)
    assert uid(created) in e.pods  # type: ignore[operator]
    assert time.monotonic() - started < enricher_module.SETTLE_S


async def test_leftover_directories_never_wait_and_new_ones_share_one_bound(
        cluster: Cluster, sim_server: SimServer, enricher_factory: Callable[..., Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enricher_module, "SETTLE_S", 0.5)
    e: Enricher = await enricher_factory(node_name="node-1")
    old = [(f"gone-{i}", f"0000-old-{i:03d}") for i in range(100)]
    paths = [_pod_dir(tmp_path / "old", name, u, age_s=3600) for name, u in old]
    started = time.monotonic()
    for (name, u), path in zip(old, paths, strict=True):
        e.find_pod("shop", name, u)
        await e.settle_pod(u, path)
    assert time.monotonic() - started < 0.5, "100 directories of long-gone pods wait for nothing"
    # 100 recent directories whose pods never show up, found in one sweep: one shared bound.
    fresh = [(f"new-{i}", f"0000-new-{i:03d}") for i in range(100)]
    paths = [_pod_dir(tmp_path / "new", name, u) for name, u in fresh]
    for name, u in fresh:
        e.find_pod("shop", name, u)
    started = time.monotonic()
    for (_, u), path in zip(fresh, paths, strict=True):
        await e.settle_pod(u, path)
    assert time.monotonic() - started < 0.5 + 0.5
    # Each UID waits once.
    started = time.monotonic()
    await e.settle_pod(fresh[0][1], paths[0])
    assert time.monotonic() - started < 0.05


async def test_an_outage_at_start_never_makes_existing_pods_wait_one_by_one(
        cluster: Cluster, sim_server: SimServer, enricher_factory: Callable[..., Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enricher_module, "SYNC_LOOKUPS_S", 0.5)
    monkeypatch.setattr(enricher_module, "SETTLE_S", 1.0)
    sim_server.faults.error_storm(503, seconds=30, verbs=["get"])
    started = time.monotonic()
    e: Enricher = await enricher_factory(node_name="node-1")
    assert time.monotonic() - started < 3.0, "synced does not wait for lookups beyond its bound"
    await asyncio.sleep(1.0)
    started = time.monotonic()
    for pod in (cluster.web, cluster.batch, cluster.db0):
        await e.settle_pod(uid(pod), _pod_dir(tmp_path, pod["metadata"]["name"], uid(pod)))
    assert time.monotonic() - started < 0.2, "pods known since start share one deadline, already past"
    block = e.for_pod("shop", "web-7d9f-x1", uid(cluster.web))
    assert block["enrichment"] == "partial" and block["labels"] == {"app": "web", "tier": "front"}
