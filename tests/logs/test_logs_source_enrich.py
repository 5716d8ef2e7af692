"""The logs source with the real Enricher against the simulated API server: metadata by pod uid
(StatefulSet name reuse, mirror pods), selection by labels/annotations/namespaces/own pod, and the
control-plane cost (one node-scoped pod watch, no GETs, no Events watch)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from logs_source_support import NODE, Rig, assert_exactly_once, make_settings, make_writer, pod, read_archive

from kubestream.config.settings import KubeSettings, Settings
from kubestream.enrich import Enricher
from kubestream.kube.client import KubeClient
from kubestream.sim.server import SimServer
from kubestream.sim.testing import kubeconfig_for, running_sim


@pytest.fixture
def sim_server() -> Iterator[SimServer]:
    with running_sim(bookmark_interval_s=0.5) as server:
        yield server


@pytest.fixture
def settings(sim_server: SimServer, tmp_path: Path) -> Settings:
    base = make_settings(tmp_path)
    kube = KubeSettings(kubeconfig=str(kubeconfig_for(sim_server, tmp_path)), backoff_initial_s=0.05,
                        backoff_max_s=0.2)
    return base.model_copy(update={"kube": kube})


@pytest.fixture
async def enricher(settings: Settings) -> AsyncIterator[Enricher]:
    client = await KubeClient.create(settings.kube)
    e = Enricher(client, settings, node_name=NODE)
    task = asyncio.create_task(e.run())
    await asyncio.wait_for(e.synced.wait(), 10)
    yield e
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await client.close()


def _create(server: SimServer, body: dict[str, Any]) -> dict[str, Any]:
    """Create a pod in the API (the server assigns the uid) and return it."""
    body = {**body, "metadata": {k: v for k, v in body["metadata"].items() if k != "uid"}}
    return server.cluster.create("pods", body)


async def _wait_cached(e: Enricher, uid: str) -> None:
    for _ in range(200):
        if e.pods is not None and e.pods.get(uid) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"pod {uid} never reached the cache")


async def test_selection_and_metadata_from_the_pod_cache(
        tmp_path: Path, sim_server: SimServer, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = sim_server.cluster
    cluster.create("namespaces", {"metadata": {"name": "quiet", "labels": {"kubestream.io/exclude": "true"}}})
    cluster.create("namespaces", {"metadata": {"name": "agents"}})
    web = _create(sim_server, pod("web-0", labels={"app": "web"}))
    hidden = _create(sim_server, pod("web-1", labels={"app": "web", "kubestream.io/exclude": "true"}))
    db = _create(sim_server, pod("db-0", containers=("app", "sidecar"),
                                 annotations={"kubestream.io/exclude-containers": "sidecar"}))
    quiet = _create(sim_server, pod("noisy", namespace="quiet"))
    agent = _create(sim_server, pod("kubestream-x1", namespace="agents"))
    mirror = _create(sim_server, pod("etcd-node-a", namespace="kube-system",
                                     labels={"component": "etcd"},
                                     annotations={"kubernetes.io/config.mirror": "5f0c1e2d3a4b"}))
    static = pod("etcd-node-a", namespace="kube-system", uid="5f0c1e2d3a4b")  # kubelet's dir uid: the hash
    monkeypatch.setenv("POD_NAMESPACE", "agents")
    monkeypatch.setenv("POD_NAME", "kubestream-x1")

    client = await KubeClient.create(settings.kube)
    e = Enricher(client, settings, node_name=NODE)
    enricher_task = asyncio.create_task(e.run())
    writer = make_writer(tmp_path)
    writer.follow([web, hidden, db, quiet, agent, static])
    writer.write_burst(400)
    rig = Rig(tmp_path, settings, enricher=e)
    try:
        await rig.start()
        excluded_uids = {hidden["metadata"]["uid"], quiet["metadata"]["uid"], agent["metadata"]["uid"]}
        written = writer.ledger.keys()
        expected = {k for k in written
                    if k[0] not in excluded_uids and not (k[0] == db["metadata"]["uid"] and k[1] == "sidecar")}
        got = await rig.wait_for(expected)
        await asyncio.sleep(0.3)  # anything excluded would have arrived by now
        got = rig.keys()
    finally:
        await rig.stop()
        writer.stop()
        enricher_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await enricher_task
        await client.close()
    assert_exactly_once(got, expected)
    records = read_archive(tmp_path / "out")
    web_records = [r for r in records if r["kubernetes"]["pod_uid"] == web["metadata"]["uid"]]
    assert web_records
    k8s = web_records[0]["kubernetes"]
    assert k8s["labels"] == {"app": "web"} and k8s["enrichment"] in ("ok", "partial")
    assert k8s["pod_ip"] == "10.1.2.3" and k8s["container_image"] == "nginx:1.27"
    static_records = [r for r in records if r["kubernetes"]["pod_uid"] == "5f0c1e2d3a4b"]
    assert static_records and static_records[0]["kubernetes"]["labels"] == {"component": "etcd"}
    assert mirror["metadata"]["uid"] != "5f0c1e2d3a4b"

    # The control-plane cost of the node agent: list+watch of this node's pods only, no pod
    # GETs (its namespace is one GET), no Events at all.
    requests = sim_server.requests.records()
    pod_requests = [r for r in requests if r.resource == "pods"]
    assert pod_requests and all(r.field_selector == f"spec.nodeName={NODE}" for r in pod_requests)
    assert sum(1 for r in pod_requests if r.verb == "watch") == 1
    assert sim_server.requests.count(verb="get", resource="pods") == 0
    assert {r.resource for r in requests if r.verb == "get"} <= {"namespaces", "replicasets.apps", "jobs.batch"}
    assert not [r for r in requests if r.resource.startswith("events")]


async def test_statefulset_name_reuse_keeps_each_incarnations_metadata(
        tmp_path: Path, sim_server: SimServer, settings: Settings, enricher: Enricher) -> None:
    cluster = sim_server.cluster
    first = _create(sim_server, pod("web-0", labels={"app": "web", "rev": "1"}))
    writer = make_writer(tmp_path)
    writer.follow([first])
    await _wait_cached(enricher, first["metadata"]["uid"])
    rig = Rig(tmp_path, settings, enricher=enricher)
    await rig.start()
    try:
        writer.write_burst(50)
        cluster.delete("pods", "default", "web-0", grace_period_s=0)
        second = _create(sim_server, pod("web-0", labels={"app": "web", "rev": "2"}))
        await _wait_cached(enricher, second["metadata"]["uid"])
        writer.follow([second])  # the first pod's directory stays (unread lines included)
        writer.write_burst(50)
        got = await rig.wait_for(writer.ledger.keys())
    finally:
        await rig.stop()
        writer.stop()
    assert_exactly_once(got, writer.ledger.keys())
    revs = {(r["kubernetes"]["pod_uid"], r["kubernetes"]["labels"]["rev"]) for r in read_archive(tmp_path / "out")}
    assert revs == {(first["metadata"]["uid"], "1"), (second["metadata"]["uid"], "2")}
