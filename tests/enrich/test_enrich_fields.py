"""The fields of the shared ``kubernetes`` block as both streams get them: the event path
(``Enricher.for_object``) and the per-container log path (``ContainerMetadataCache``) over the
same caches — owner chain for each workload kind, deletion retention, include/exclude globs and
the per-value size cap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.enrich.enrich_support import Cluster, eventually, make_pod, owner_ref, uid

from kubestream.config.settings import EnrichSettings, Settings
from kubestream.enrich import Enricher
from kubestream.enrich.containers import ContainerMetadataCache
from kubestream.sim.server import SimServer


@dataclass(frozen=True)
class Container:
    """A container address as a log path gives it."""

    namespace: str
    pod: str
    uid: str
    container: str = "app"

    @property
    def container_key(self) -> tuple[str, str]:
        return self.uid, self.container


def log_cache(e: Enricher, node: str = "node-1") -> ContainerMetadataCache[None]:
    return ContainerMetadataCache(e, lambda address, p, ns: None, node_name=node, grace_s=60.0)


def both_blocks(e: Enricher, cache: ContainerMetadataCache[None], p: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The block an event about the pod's ``app`` container gets, and the one its log lines get."""
    meta = p["metadata"]
    event = e.for_object("Pod", meta["namespace"], meta["name"], meta["uid"], field_path="spec.containers{app}")
    logs = cache.get(Container(meta["namespace"], meta["name"], meta["uid"])).meta.kubernetes
    return event, logs


async def test_owner_chain_reaches_each_workload_kind(cluster: Cluster, sim_server: SimServer,
                                                      enricher_factory: Callable[..., Any]) -> None:
    c = sim_server.cluster
    once = await asyncio.to_thread(c.create, "jobs", {"metadata": {"name": "once", "namespace": "shop"}, "spec": {
        "template": {"metadata": {"labels": {"app": "once"}},
                     "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "shop/web:2.1"}]}}}},
                               group="batch")
    once_pod = await asyncio.to_thread(make_pod, sim_server, "once-z", "shop", owner=owner_ref(once, "Job"))
    e: Enricher = await enricher_factory()
    await eventually(lambda: e.pods is not None and e.pods.get(uid(once_pod)) is not None)
    cache = log_cache(e)
    expected = {
        "web": (cluster.web, [("ReplicaSet", cluster.rs), ("Deployment", cluster.deploy)]),
        "cron": (cluster.batch, [("Job", cluster.job), ("CronJob", cluster.cron)]),
        "sts": (cluster.db0, [("StatefulSet", cluster.sts)]),
        "ds": (cluster.agent, [("DaemonSet", cluster.ds)]),
        "job": (once_pod, [("Job", once)]),
    }
    for case, (p, chain) in expected.items():
        event, logs = both_blocks(e, cache, p)
        if case == "ds":  # agent-n2 runs on node-2: only the node agent's own default differs
            assert logs.pop("node_name") == event.pop("node_name") == "node-2"
        assert event == logs, case
        want = [{"kind": kind, "name": o["metadata"]["name"], "uid": uid(o)} for kind, o in chain]
        assert event["owners"] == want, case
        top_kind, top = chain[-1]
        assert (event["owner_kind"], event["owner_name"], event["owner_uid"]) == (
            top_kind, top["metadata"]["name"], uid(top)), case
        assert event["enrichment"] == "ok", case


async def test_a_deleted_pod_keeps_its_block_for_the_retention(cluster: Cluster, sim_server: SimServer,
                                                               enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory()
    cache = log_cache(e)
    before_event, before_logs = both_blocks(e, cache, cluster.web)
    assert before_event == before_logs and before_event["object_deleted"] is False
    await asyncio.to_thread(sim_server.cluster.delete, "pods", "shop", "web-7d9f-x1", grace_period_s=0)
    await eventually(lambda: e.pods is not None and e.pods.is_deleted(uid(cluster.web)))
    event, logs = both_blocks(e, cache, cluster.web)
    assert event == logs
    assert event["object_deleted"] is True and event["labels"] == {"app": "web", "tier": "front"}
    assert (event["owner_name"], event["node_ip"], event["enrichment"]) == ("web", "192.168.0.10", "ok")


async def test_without_retention_events_lose_the_pod_and_open_log_files_keep_theirs(
        cluster: Cluster, sim_server: SimServer, settings: Settings, enricher_factory: Callable[..., Any]) -> None:
    no_delay = settings.model_copy(update={"enrich": EnrichSettings(delete_delay_s=0)})
    e: Enricher = await enricher_factory(settings_=no_delay)
    cache = log_cache(e)
    address = Container("shop", "db-0", uid(cluster.db0))
    cache.acquire(address)  # a file of the container is open
    await asyncio.to_thread(sim_server.cluster.delete, "pods", "shop", "db-0", grace_period_s=0)
    await eventually(lambda: e.pods is not None and e.pods.get(uid(cluster.db0)) is None)
    event = e.for_object("Pod", "shop", "db-0", uid(cluster.db0), field_path="spec.containers{app}")
    assert "labels" not in event and event["enrichment"] == "partial"  # namespace found, pod not
    kept = cache.get(address).meta.kubernetes
    assert kept["labels"] == {"app": "db"} and kept["owner_kind"] == "StatefulSet"
    cache.release(address.container_key)
    assert len(cache) == 1  # kept for grace_s after its last file closed


async def test_globs_select_keys_and_long_values_are_cut_and_flagged(
        cluster: Cluster, sim_server: SimServer, settings: Settings, enricher_factory: Callable[..., Any]) -> None:
    selective = settings.model_copy(update={"enrich": EnrichSettings(
        labels_include=["app", "tier*", "team"], labels_exclude=["tier"],
        annotations_exclude=["checksum/*"], value_max_bytes=8)})
    body_labels = {"app": "web", "tier": "front", "tier-zone": "a", "release": "r1"}
    annotations = {"checksum/config": "abc", "note": "é" * 10, "euro": "€€€", "short": "ok"}
    created = await asyncio.to_thread(sim_server.cluster.create, "pods", {
        "metadata": {"name": "sel", "namespace": "shop", "labels": body_labels, "annotations": annotations},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "shop/web:2.1"}]}})
    e: Enricher = await enricher_factory(settings_=selective)
    await eventually(lambda: e.pods is not None and e.pods.get(uid(created)) is not None)
    event, logs = both_blocks(e, log_cache(e), created)
    assert event == logs
    assert event["labels"] == {"app": "web", "tier-zone": "a"}
    assert event["namespace_labels"] == {"team": "payments"}
    assert "node_labels" not in event  # zone is not included
    # 8 bytes: four 2-byte é; two 3-byte € (a third would split a character).
    assert event["annotations"] == {"note": "éééé", "euro": "€€", "short": "ok"}
    assert event["truncated_values"] == ["annotations.euro", "annotations.note"]


async def test_no_cap_keeps_values_whole(cluster: Cluster, sim_server: SimServer, settings: Settings,
                                         enricher_factory: Callable[..., Any]) -> None:
    uncapped = settings.model_copy(update={"enrich": EnrichSettings(value_max_bytes=0)})
    long_value = "x" * 10_000
    created = await asyncio.to_thread(sim_server.cluster.create, "pods", {
        "metadata": {"name": "big", "namespace": "shop", "annotations": {"blob": long_value}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "shop/web:2.1"}]}})
    e: Enricher = await enricher_factory(settings_=uncapped)
    await eventually(lambda: e.pods is not None and e.pods.get(uid(created)) is not None)
    event, logs = both_blocks(e, log_cache(e), created)
    assert event == logs and event["annotations"] == {"blob": long_value} and "truncated_values" not in event
    capped: Enricher = await enricher_factory()  # the default cap: 4096 bytes
    block = capped.for_pod("shop", "big", uid(created))
    assert block["annotations"] == {"blob": "x" * 4096} and block["truncated_values"] == ["annotations.blob"]


async def test_node_agent_blocks_cost_no_requests_beyond_its_watches(
        cluster: Cluster, sim_server: SimServer, enricher_factory: Callable[..., Any]) -> None:
    e: Enricher = await enricher_factory(node_name="node-1")
    # Its pods, its node and the services of the one namespace its pods run in.
    await eventually(lambda: sim_server.requests.open_watches() >= 3)
    before = len(sim_server.requests.records())
    cache = log_cache(e)
    for _ in range(100):
        for p in (cluster.web, cluster.batch, cluster.db0):
            both_blocks(e, cache, p)
    assert len(sim_server.requests.records()) == before, "blocks come from the caches only"
    scopes = {(rq.verb, rq.resource, rq.namespace, rq.field_selector) for rq in sim_server.requests.records()}
    # Owners and the namespace are one GET each, services watched in that namespace only.
    assert scopes == {("list", "pods", None, "spec.nodeName=node-1"), ("watch", "pods", None, "spec.nodeName=node-1"),
                      ("list", "nodes", None, "metadata.name=node-1"), ("watch", "nodes", None, "metadata.name=node-1"),
                      ("get", "namespaces", None, None), ("list", "services", "shop", None),
                      ("watch", "services", "shop", None), ("get", "replicasets.apps", "shop", None),
                      ("get", "jobs.batch", "shop", None)}
