"""Enricher against the simulated API server: owner chains, nodes, namespaces, services,
deleted objects, unknown objects, UID-before-name, control-plane cost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubestream.config.settings import Settings
from kubestream.enrich import Enricher
from kubestream.kube.client import KubeClient
from kubestream.obs.metrics import Metrics
from kubestream.sim.server import SimServer


def owner_ref(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    api = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    return {"apiVersion": api, "kind": kind, "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def pod_body(name: str, ns: str, *, owner: dict[str, Any] | None = None, node: str = "node-1",
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {}}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {"metadata": meta, "spec": {"nodeName": node,
                                       "initContainers": [{"name": "setup", "image": "busybox:1.36"}],
                                       "containers": [{"name": "app", "image": "shop/web:2.1"}]}}


def make_pod(server: SimServer, name: str, ns: str, **kw: Any) -> dict[str, Any]:
    created = server.cluster.create("pods", pod_body(name, ns, **kw))
    return server.cluster.patch("pods", ns, name, {"status": {
        "phase": "Running", "podIP": "10.1.2.3",
        "containerStatuses": [{"name": "app", "imageID": "shop/web@sha256:aa", "containerID": f"containerd://{name}"}],
        "initContainerStatuses": [{"name": "setup", "imageID": "busybox@sha256:bb", "containerID": "containerd://i"}],
    }}) or created


def template(app: str) -> dict[str, Any]:
    """A pod template the stricter simulator accepts (selector matching its labels, a container)."""
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "app", "image": "shop/web:2.1"}]}}


def controller_spec(app: str) -> dict[str, Any]:
    return {"selector": {"matchLabels": {"app": app}}, "template": template(app)}


def job_spec(app: str) -> dict[str, Any]:
    job_template = template(app)
    job_template["spec"]["restartPolicy"] = "Never"
    return {"template": job_template}


class Cluster:
    """A small shop: namespace, node, Deployment/ReplicaSet, CronJob/Job, StatefulSet, DaemonSet."""

    def __init__(self, server: SimServer) -> None:
        c = server.cluster
        self.server = server
        c.create("namespaces", {"metadata": {"name": "shop", "labels": {"team": "payments"}}})
        self.node = c.create("nodes", {"metadata": {"name": "node-1", "labels": {"zone": "eu-1a"}}, "status": {
            "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.0.10"}]}})
        c.create("nodes", {"metadata": {"name": "node-2"}})
        self.deploy = c.create("deployments", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "shop/web:2.1"}]}}}}, group="apps")
        self.rs = c.create("replicasets", {"metadata": {"name": "web-7d9f", "namespace": "shop", "labels": {"app": "web"},
                                                        "ownerReferences": [owner_ref(self.deploy, "Deployment")]},
                                         "spec": controller_spec("web")},
                           group="apps")
        self.web = make_pod(server, "web-7d9f-x1", "shop", owner=owner_ref(self.rs, "ReplicaSet"),
                            labels={"app": "web", "tier": "front"})
        self.cron = c.create("cronjobs", {"metadata": {"name": "nightly", "namespace": "shop"}, "spec": {
            "schedule": "0 2 * * *", "jobTemplate": {"spec": job_spec("nightly")}}}, group="batch")
        self.job = c.create("jobs", {"metadata": {"name": "nightly-2900", "namespace": "shop",
                                                  "ownerReferences": [owner_ref(self.cron, "CronJob")]},
                                     "spec": job_spec("nightly")}, group="batch")
        self.batch = make_pod(server, "nightly-2900-q", "shop", owner=owner_ref(self.job, "Job"))
        self.sts = c.create("statefulsets", {"metadata": {"name": "db", "namespace": "shop"},
                                             "spec": {**controller_spec("db"), "serviceName": "db"}}, group="apps")
        self.db0 = make_pod(server, "db-0", "shop", owner=owner_ref(self.sts, "StatefulSet"), labels={"app": "db"})
        self.ds = c.create("daemonsets", {"metadata": {"name": "agent", "namespace": "shop"},
                                          "spec": controller_spec("agent")}, group="apps")
        self.agent = make_pod(server, "agent-n2", "shop", owner=owner_ref(self.ds, "DaemonSet"), node="node-2")
        c.create("services", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"selector": {"app": "web"}}})
        c.create("services", {"metadata": {"name": "front", "namespace": "shop"},
                              "spec": {"selector": {"tier": "front"}}})
        c.create("services", {"metadata": {"name": "db", "namespace": "shop"}, "spec": {"selector": {"app": "db"}}})
        c.create("services", {"metadata": {"name": "external", "namespace": "shop"}, "spec": {}})


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Poll until the caches (fed by the simulator's thread) reflect a change."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def uid(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["uid"])


@pytest.fixture
def cluster(sim_server: SimServer) -> Cluster:
    return Cluster(sim_server)


@pytest.fixture
async def enricher_factory(kube_client: KubeClient, settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    tasks: list[asyncio.Task[None]] = []

    async def start(node_name: str | None = None, metrics: Metrics | None = None,
                    settings_: Settings | None = None) -> Enricher:
        e = Enricher(kube_client, settings_ or settings, node_name=node_name, metrics=metrics)
        tasks.append(asyncio.create_task(e.run()))
        async with asyncio.timeout(10):
            await e.synced.wait()
        return e

    yield start
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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
