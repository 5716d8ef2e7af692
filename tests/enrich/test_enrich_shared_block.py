"""One enrichment stage for both streams: an Event about a container and that container's log
lines, each through its real source against the simulated API server, carry the identical
``kubernetes`` block — the events collector's cluster-wide caches and the node agent's
node-scoped ones giving the same fields."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.enrich.enrich_support import eventually, owner_ref
from tests.logs.logs_source_support import NODE, Rig, make_settings, make_writer, pod, read_archive
from tests.sources.source_events_support import CommittingSink

from kubestream.config.settings import EventsSettings, Settings
from kubestream.enrich import Enricher
from kubestream.kube.client import KubeClient
from kubestream.sim.server import SimServer
from kubestream.sources.events import EventsSource
from kubestream.state.store import StateStore


def _shop(server: SimServer) -> dict[str, Any]:
    """Namespace, node, Deployment → ReplicaSet → pod on NODE, and a service selecting it."""
    c = server.cluster
    c.create("namespaces", {"metadata": {"name": "shop", "labels": {"team": "payments"},
                                         "annotations": {"owner": "payments@example.com"}}})
    c.create("nodes", {"metadata": {"name": NODE, "labels": {"zone": "eu-1a"},
                                    "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                       "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.10"}]}})
    deploy = c.create("deployments", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}, group="apps")
    rs = c.create("replicasets", {"metadata": {"name": "web-7d9f", "namespace": "shop", "labels": {"app": "web"},
                                               "ownerReferences": [owner_ref(deploy, "Deployment")]},
                                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                                           "template": {"metadata": {"labels": {"app": "web"}},
                                                        "spec": {"containers": [{"name": "app",
                                                                                 "image": "nginx:1.27"}]}}}},
                  group="apps")
    body = pod("web-7d9f-x1", namespace="shop", labels={"app": "web"}, annotations={"checksum/config": "abc"})
    body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "uid"}
    body["metadata"]["ownerReferences"] = [owner_ref(rs, "ReplicaSet")]
    created = c.create("pods", body)
    c.create("services", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"selector": {"app": "web"}}})
    return created


def _event_about(p: dict[str, Any]) -> dict[str, Any]:
    meta = p["metadata"]
    return {"metadata": {"name": f"{meta['name']}.1", "namespace": meta["namespace"]}, "reason": "Pulled",
            "message": "image pulled", "type": "Normal", "count": 1,
            "involvedObject": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                               "uid": meta["uid"], "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
            "source": {"component": "kubelet", "host": NODE}}


@contextlib.asynccontextmanager
async def _running(settings: Settings, node_name: str | None) -> AsyncIterator[Enricher]:
    client = await KubeClient.create(settings.kube)
    e = Enricher(client, settings, node_name=node_name)
    task = asyncio.create_task(e.run())
    try:
        await asyncio.wait_for(e.synced.wait(), 10)
        yield e
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def _event_block(settings: Settings, tmp_path: Path, enricher: Enricher) -> dict[str, Any]:
    """The block of the first record the real Events source exports."""
    state = StateStore(tmp_path / "events.db")
    sink = CommittingSink(state)
    client = await KubeClient.create(settings.kube)
    source = EventsSource(client, settings.model_copy(update={"events": EventsSettings(since="retained")}),
                          state, sink, enricher)
    task = asyncio.create_task(source.run())
    try:
        await eventually(lambda: bool(sink.all()), within=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
        state.close()
    block: dict[str, Any] = sink.all()[0].data["kubernetes"]
    return block


async def _log_block(settings: Settings, tmp_path: Path, enricher: Enricher, p: dict[str, Any]) -> dict[str, Any]:
    """The block of the log lines the real logs source archives for the pod."""
    writer = make_writer(tmp_path)
    writer.follow([p])
    writer.write_burst(20)
    rig = Rig(tmp_path, settings, enricher=enricher)
    await rig.start()
    try:
        await rig.wait_for(writer.ledger.keys())
    finally:
        await rig.stop()
        writer.stop()
    blocks = {repr(sorted(r["kubernetes"].items())): r["kubernetes"] for r in read_archive(tmp_path / "out")}
    assert len(blocks) == 1, "every line of one container carries the same block"
    return next(iter(blocks.values()))


async def test_an_event_and_the_log_lines_of_one_container_carry_the_identical_block(
        sim_server: SimServer, settings: Settings, tmp_path: Path) -> None:
    web = await asyncio.to_thread(_shop, sim_server)
    await asyncio.to_thread(sim_server.cluster.create, "events", _event_about(web))
    logs_settings = make_settings(tmp_path).model_copy(update={"kube": settings.kube})
    async with _running(settings, None) as collector, _running(logs_settings, NODE) as node_agent:
        event_block = await _event_block(settings, tmp_path, collector)
        log_block = await _log_block(logs_settings, tmp_path, node_agent, web)
    assert event_block == log_block
    uid = web["metadata"]["uid"]
    assert event_block == {
        "namespace": "shop",
        "namespace_labels": {"team": "payments", "kubernetes.io/metadata.name": "shop"},
        "namespace_annotations": {"owner": "payments@example.com"},
        "object_kind": "Pod", "object_name": "web-7d9f-x1", "object_uid": uid,
        "container_name": "app", "container_image": "nginx:1.27",
        "container_id": log_block["container_id"],
        "pod_name": "web-7d9f-x1", "pod_uid": uid, "pod_ip": "10.1.2.3", "object_deleted": False,
        "labels": {"app": "web"}, "annotations": {"checksum/config": "abc"},
        "owners": event_block["owners"], "owner_kind": "Deployment", "owner_name": "web",
        "owner_uid": event_block["owner_uid"],
        "node_name": NODE, "node_ip": "192.168.0.10", "node_labels": {"zone": "eu-1a"},
        "node_annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        "services": ["web"], "enrichment": "ok",
    }
    assert [o["kind"] for o in event_block["owners"]] == ["ReplicaSet", "Deployment"]
    assert event_block["container_id"].startswith("containerd://")
