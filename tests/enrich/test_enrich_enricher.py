"""Enricher against the simulated API server: owner chains, nodes, namespaces, services,
deleted objects, unknown objects, UID-before-name, control-plane cost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.enrich.enrich_support import Cluster, eventually, make_pod, owner_ref, uid

from kubestream.config.settings import Settings
from kubestream.enrich import Enricher
from kubestream.obs.metrics import Metrics
from kubestream.sim.server import SimServer


async def test_deployment_pod_full_block(cluster: Cluster, enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory()
    block = e.for_object("Pod", "shop", "web-7d9f-x1", uid(cluster.web), field_path="spec.containers{app}")
    assert block == {
        "namespace": "shop", "namespace_labels": {"team": "payments", "kubernetes.io/metadata.name": "shop"},
        "object_kind": "Pod", "object_name": "web-7d9f-x1", "object_uid": uid(cluster.web),
        "container_name": "app", "container_image": "shop/web:2.1", "container_id": "containerd://web-7d9f-x1",
        "pod_name": "web-7d9f-x1", "pod_uid": uid(cluster.web), "pod_ip": "10.1.2.3",
        "labels": {"app": "web", "tier": "front"}, "object_deleted": False,
        "owners": [{"kind": "ReplicaSet", "name": "web-7d9f", "uid": uid(cluster.rs)},
                   {"kind": "Deployment", "name": "web", "uid": uid(cluster.deploy)}],
        "owner_kind": "Deployment", "owner_name": "web", "owner_uid": uid(cluster.deploy),
        "node_name": "node-1", "node_ip": "192.168.0.10", "node_labels": {"zone": "eu-1a"},
        "services": ["front", "web"],
        "enrichment": "ok",
    }


async def test_cronjob_statefulset_daemonset_chains(cluster: Cluster, enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory()
    batch = e.for_pod("shop", "nightly-2900-q", uid(cluster.batch))
    assert [o["kind"] for o in batch["owners"]] == ["Job", "CronJob"]
    assert (batch["owner_kind"], batch["owner_name"]) == ("CronJob", "nightly")
    db = e.for_pod("shop", "db-0", uid(cluster.db0), container="app")
    assert db["owners"] == [{"kind": "StatefulSet", "name": "db", "uid": uid(cluster.sts)}]
    assert db["owner_kind"] == "StatefulSet" and db["services"] == ["db"] and db["container_image"] == "shop/web:2.1"
    agent = e.for_pod("shop", "agent-n2", uid(cluster.agent))
    assert (agent["owner_kind"], agent["owner_name"]) == ("DaemonSet", "agent")
    assert agent["node_name"] == "node-2" and "node_ip" not in agent  # node-2 reports no addresses
    assert agent["enrichment"] == "ok"


async def test_init_container_from_field_path(cluster: Cluster, enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory()
    block = e.for_object("Pod", "shop", "web-7d9f-x1", uid(cluster.web), field_path="spec.initContainers{setup}")
    assert (block["container_name"], block["container_image"], block["container_id"]) == (
        "setup", "busybox:1.36", "containerd://i")


async def test_workload_and_node_objects(cluster: Cluster, enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory()
    rs = e.for_object("ReplicaSet", "shop", "web-7d9f", uid(cluster.rs))
    assert rs["labels"] == {"app": "web"} and rs["owner_kind"] == "Deployment" and rs["enrichment"] == "ok"
    deploy = e.for_object("Deployment", "shop", "web", uid(cluster.deploy))
    assert (deploy["owner_kind"], deploy["owner_name"], deploy["enrichment"]) == ("Deployment", "web", "ok")
    node = e.for_object("Node", None, "node-1", uid(cluster.node))
    assert (node["node_ip"], node["labels"], node["enrichment"]) == ("192.168.0.10", {"zone": "eu-1a"}, "ok")


async def test_deleted_pod_is_still_enriched(cluster: Cluster, sim_server: SimServer,
                                             enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory()
    await asyncio.to_thread(sim_server.cluster.delete, "pods", "shop", "web-7d9f-x1", grace_period_s=0)
    await eventually(lambda: e.pods.is_deleted(uid(cluster.web)))  # type: ignore[union-attr]
    block = e.for_pod("shop", "web-7d9f-x1", uid(cluster.web), container="app")
    assert block["object_deleted"] is True and block["owner_name"] == "web"
    assert block["container_id"] == "containerd://web-7d9f-x1" and block["enrichment"] == "ok"


async def test_recreated_name_never_mixes_incarnations(cluster: Cluster, sim_server: SimServer,
                                                       enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory()
    await asyncio.to_thread(sim_server.cluster.delete, "pods", "shop", "db-0", grace_period_s=0)
    new = await asyncio.to_thread(make_pod, sim_server, "db-0", "shop", owner=owner_ref(cluster.sts, "StatefulSet"),
                                  labels={"app": "db", "generation": "2"})
    await eventually(lambda: getattr(e.pods.get(uid(new)), "pod_ip", None) is not None)  # type: ignore[union-attr]
    old_block = e.for_pod("shop", "db-0", uid(cluster.db0))
    new_block = e.for_pod("shop", "db-0", uid(new))
    assert old_block["labels"] == {"app": "db"} and old_block["object_deleted"] is True
    assert new_block["labels"] == {"app": "db", "generation": "2"} and new_block["object_deleted"] is False
    assert e.for_pod("shop", "db-0", None)["pod_uid"] == uid(new)  # without a uid: the live one


async def test_unknown_object_is_kept_and_marked(cluster: Cluster, enricher_factory: Callable[..., Any]) -> None:
    metrics = Metrics()
    e: Enricher = await enricher_factory(metrics=metrics)
    nothing = e.for_object("Pod", "ghost-town", "ghost", "no-such-uid")
    assert nothing == {"namespace": "ghost-town", "object_kind": "Pod", "object_name": "ghost",
                       "object_uid": "no-such-uid", "pod_name": "ghost", "pod_uid": "no-such-uid",
                       "enrichment": "none"}
    partial = e.for_pod("shop", "gone", "another-uid", source="logs")
    assert partial["enrichment"] == "partial" and partial["namespace_labels"]["team"] == "payments"
    assert metrics.enrichment_misses.labels(source="events", kind="Pod")._value.get() == 1
    assert metrics.enrichment_misses.labels(source="logs", kind="Pod")._value.get() == 1
    pv = e.for_object("PersistentVolume", None, "pv-1", "u")
    assert pv == {"object_kind": "PersistentVolume", "object_name": "pv-1", "object_uid": "u", "enrichment": "none"}


async def test_zero_gets_after_sync_one_watch_per_kind(cluster: Cluster, sim_server: SimServer,
                                                       enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory()
    for _ in range(200):
        e.for_pod("shop", "web-7d9f-x1", uid(cluster.web), container="app")
        e.for_object("Pod", "shop", "missing", None)
    await eventually(lambda: sim_server.requests.open_watches() >= 6)
    assert sim_server.requests.count(verb="get") == 0
    opened = {rq.resource: 0 for rq in sim_server.requests.records() if rq.verb == "watch"}
    for rq in sim_server.requests.records():
        if rq.verb == "watch":
            opened[rq.resource] += 1
    assert opened == {"pods": 1, "replicasets.apps": 1, "jobs.batch": 1, "nodes": 1, "namespaces": 1,
                      "services": 1}
    assert sim_server.requests.open_watches() == 6


async def test_node_agent_watches_only_its_node(cluster: Cluster, sim_server: SimServer,
                                                enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory(node_name="node-2")
    assert [p.name for p in e.pods.items()] == ["agent-n2"]  # type: ignore[union-attr]
    assert [n.name for n in e.nodes.items()] == ["node-2"]  # type: ignore[union-attr]
    pod_requests = [rq for rq in sim_server.requests.records() if rq.resource == "pods"]
    assert pod_requests and all(rq.field_selector == "spec.nodeName=node-2" for rq in pod_requests)
    assert e.for_pod("shop", "web-7d9f-x1", uid(cluster.web))["enrichment"] == "partial"  # another node's pod


async def test_switches_decide_the_caches(cluster: Cluster, sim_server: SimServer, settings: Settings,
                                          enricher_factory: Callable[..., Any]) -> None:
    lean = settings.model_copy(update={"enrich": settings.enrich.model_copy(
        update={"owners": False, "services": False, "nodes": False})})
    e: Enricher = await enricher_factory(settings_=lean)
    assert sorted(r.name for r in e.reflectors) == ["namespaces", "pods"]
    block = e.for_pod("shop", "web-7d9f-x1", uid(cluster.web))
    # Without the ReplicaSet cache the chain stops at the pod's direct owner.
    assert block["owners"] == [{"kind": "ReplicaSet", "name": "web-7d9f", "uid": uid(cluster.rs)}]
    assert "services" not in block and "node_ip" not in block and block["enrichment"] == "ok"
    disabled = settings.model_copy(update={"enrich": settings.enrich.model_copy(update={"enabled": False})})
    off: Enricher = await enricher_factory(settings_=disabled)
    assert off.for_pod("shop", "web-7d9f-x1", None) == {"object_kind": "Pod", "object_name": "web-7d9f-x1",
                                                        "enrichment": "none"}
