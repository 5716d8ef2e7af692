"""``logs.metadata_source: kubelet``: a node agent's pods come from its kubelet's ``/pods`` (the
simulator's HTTPS kubelets), never from a pod list/watch on the API server; deletions are kept
for ``enrich.delete_delay_s``; an unknown UID asks for a refresh; kubelet failures are counted,
keep the cache and hold readiness until the first read, and the agent recovers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.enrich.enrich_support import Cluster, make_pod

from kubestream.agent.preflight import preflight
from kubestream.config.settings import (
    EnrichSettings,
    EventsSettings,
    KubeletSettings,
    KubeSettings,
    LogsSettings,
    Settings,
    SinkSettings,
    StateSettings,
)
from kubestream.enrich import Enricher
from kubestream.errors import ConfigError
from kubestream.kube.client import KubeClient
from kubestream.obs.metrics import Metrics
from kubestream.sim.config import DenyRule
from kubestream.sim.nodes.staticpods import mirror_of, static_manifest
from kubestream.sim.server import SimServer
from kubestream.sim.testing import kubeconfig_for, running_sim

TOKEN = "agent-token"
NODE = "node-1"


@pytest.fixture
def sim_server() -> Iterator[SimServer]:
    with running_sim(kubelets=True, kubelet_sync_s=0.05, tokens={TOKEN: "system:serviceaccount:kubestream:logs"},
                     bookmark_interval_s=0.5) as server:
        yield server


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def _settings(server: SimServer, tmp: Path, token_file: Path, **kubelet: Any) -> Settings:
    kube = KubeSettings(kubeconfig=str(kubeconfig_for(server, tmp, token=TOKEN)), backoff_initial_s=0.05,
                        backoff_max_s=0.2)
    delay = kubelet.pop("delay", 600.0)
    options: dict[str, Any] = {"ca_file": server.kubelet_ca_path, "token_file": token_file, "refresh_s": 0.2,
                               **kubelet}
    logs = LogsSettings(enabled=True, node_name=NODE, metadata_source="kubelet", kubelet=KubeletSettings(**options))
    return Settings(kube=kube, logs=logs, events=EventsSettings(enabled=False),
                    enrich=EnrichSettings(delete_delay_s=delay),
                    sink=SinkSettings(), state=StateSettings(dir=tmp / "state"))


def _cluster(server: SimServer) -> Cluster:
    """The shop cluster, once the simulator has published node-1's kubelet in its status."""
    cluster = Cluster(server)
    server.kubelet(NODE)
    return cluster


Start = Callable[..., Awaitable[Enricher]]


@pytest.fixture
async def start(sim_server: SimServer) -> AsyncIterator[Start]:
    tasks: list[asyncio.Task[None]] = []
    clients: list[KubeClient] = []

    async def go(settings: Settings, metrics: Metrics | None = None, *, wait: bool = True) -> Enricher:
        client = await KubeClient.create(settings.kube)
        clients.append(client)
        enricher = Enricher(client, settings, node_name=NODE, metrics=metrics)
        tasks.append(asyncio.create_task(enricher.run()))
        if wait:
            async with asyncio.timeout(10):
                await enricher.synced.wait()
        return enricher

    yield go
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in clients:
        await client.close()


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10.0
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _errors(metrics: Metrics, reason: str) -> float:
    return metrics.registry.get_sample_value("kubestream_kubelet_errors_total", {"reason": reason}) or 0.0


async def test_pods_come_from_the_kubelet_and_never_from_the_api_server(
        sim_server: SimServer, tmp_path: Path, token_file: Path, start: Start) -> None:
    cluster = _cluster(sim_server)
    sim_server.requests.reset()
    enricher = await start(_settings(sim_server, tmp_path, token_file))
    assert enricher.kubelet is not None and not any(r.name == "pods" for r in enricher.reflectors)
    await _until(lambda: sim_server.kubelet_requests.count(node=NODE, path="/pods", code=200) >= 3, "3 polls")
    web = cluster.web["metadata"]
    block = enricher.for_pod("shop", web["name"], web["uid"], container="app")
    assert block["enrichment"] == "ok"
    assert block["labels"] == {"app": "web", "tier": "front"}
    assert (block["owner_kind"], block["owner_name"]) == ("Deployment", "web")
    assert block["namespace_labels"]["team"] == "payments" and block["node_labels"] == {"zone": "eu-1a"}
    assert block["container_image"] == "shop/web:2.1" and block["pod_ip"] == "10.1.2.3"
    assert sim_server.requests.count(resource="pods") == 0
    # The kubelet's address was read from the Node (a list of that one node), nothing else.
    assert sim_server.kubelet_requests.count(node="node-2") == 0


async def test_a_static_pod_is_found_under_kubelets_own_uid(
        sim_server: SimServer, tmp_path: Path, token_file: Path, start: Start) -> None:
    _cluster(sim_server)
    node_uid = sim_server.cluster.get("nodes", None, NODE)["metadata"]["uid"]
    static = static_manifest({"metadata": {"name": "etcd", "namespace": "kube-system", "labels": {"tier": "cp"}},
                              "spec": {"containers": [{"name": "etcd", "image": "etcd:3.5"}]}},
                             NODE, "2026-12-03T07:00:00.000000000Z")
    sim_server.cluster.create("pods", mirror_of(static, node_uid))
    enricher = await start(_settings(sim_server, tmp_path, token_file))
    uid = static["metadata"]["uid"]
    block = enricher.for_pod("kube-system", f"etcd-{NODE}", uid, container="etcd")
    assert block["pod_uid"] == uid and block["labels"] == {"tier": "cp"}
    assert block["container_image"] == "etcd:3.5"


async def test_a_pod_gone_from_kubelet_is_kept_for_the_delay_then_dropped(
        sim_server: SimServer, tmp_path: Path, token_file: Path, start: Start) -> None:
    cluster = _cluster(sim_server)
    enricher = await start(_settings(sim_server, tmp_path, token_file, delay=1.0))
    uid = cluster.db0["metadata"]["uid"]
    sim_server.cluster.delete("pods", "shop", "db-0")
    assert enricher.pods is not None
    pods = enricher.pods
    await _until(lambda: pods.is_deleted(uid), "the deletion")
    block = enricher.for_pod("shop", "db-0", uid, container="app")
    assert block["object_deleted"] is True and block["labels"] == {"app": "db"}
    await _until(lambda: uid not in pods, "the end of the delay")
    assert enricher.find_pod("shop", "db-0", uid) is None


async def test_an_unknown_uid_asks_for_a_refresh_at_once(
        sim_server: SimServer, tmp_path: Path, token_file: Path, start: Start) -> None:
    _cluster(sim_server)
    enricher = await start(_settings(sim_server, tmp_path, token_file, refresh_s=3600.0))
    assert enricher.kubelet is not None
    assert enricher.kubelet.reads == 1
    new = make_pod(sim_server, "late", "shop")["metadata"]
    assert enricher.find_pod("shop", "late", new["uid"]) is None  # a log directory named it
    kubelet = enricher.kubelet
    await _until(lambda: kubelet.reads == 2, "the refresh")
    assert enricher.find_pod("shop", "late", new["uid"]) is not None
    # Asking again for a UID already asked about (a pod whose files outlive it) costs nothing.
    enricher.find_pod("shop", "never", "0000-never")
    await _until(lambda: kubelet.reads == 3, "the second refresh")
    enricher.find_pod("shop", "never", "0000-never")
    await asyncio.sleep(1.5)
    assert kubelet.reads == 3
    assert sim_server.kubelet_requests.count(node=NODE, path="/pods") == 3


async def test_401_keeps_readiness_false_counts_and_recovers_when_the_token_is_fixed(
        sim_server: SimServer, tmp_path: Path, token_file: Path, start: Start) -> None:
    _cluster(sim_server)
    await asyncio.to_thread(token_file.write_text, "rotated-away")
    metrics = Metrics()
    enricher = await start(_settings(sim_server, tmp_path, token_file), metrics, wait=False)
    await _until(lambda: _errors(metrics, "unauthorized") >= 2, "two 401s")
    assert not enricher.synced.is_set()
    await asyncio.to_thread(token_file.write_text, TOKEN)  # the 401 made it re-read the file before retrying
    async with asyncio.timeout(10):
        await enricher.synced.wait()
    assert enricher.pods is not None and len(enricher.pods) == 3
    assert sim_server.requests.count(resource="pods") == 0


async def test_403_keeps_enriching_from_the_cache_and_recovers(
        sim_server: SimServer, tmp_path: Path, token_file: Path, start: Start, caplog: pytest.LogCaptureFixture) -> None:
    cluster = _cluster(sim_server)
    metrics = Metrics()
    enricher = await start(_settings(sim_server, tmp_path, token_file), metrics)
    kubelet = enricher.kubelet
    assert kubelet is not None
    sim_server.config.deny = [DenyRule(resource="nodes/pods"), DenyRule(resource="nodes/proxy")]
    await _until(lambda: _errors(metrics, "forbidden") >= 3, "three 403s")
    web = cluster.web["metadata"]
    assert enricher.for_pod("shop", web["name"], web["uid"])["enrichment"] == "ok"
    warnings = [r for r in caplog.records if r.name == "kubestream.enrich.kubelet_pods"]
    assert len(warnings) == 1 and "HTTP 403" in warnings[0].getMessage()  # one line, not one per retry
    reads = kubelet.reads
    sim_server.config.deny = []
    await _until(lambda: kubelet.reads > reads, "a read after the grant came back")
    assert sim_server.requests.count(resource="pods") == 0


async def test_an_unreachable_kubelet_counts_connection_errors_without_crashing(
        sim_server: SimServer, tmp_path: Path, token_file: Path, start: Start) -> None:
    _cluster(sim_server)
    metrics = Metrics()
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    enricher = await start(_settings(sim_server, tmp_path, token_file, url=f"https://127.0.0.1:{port}"), metrics,
                           wait=False)
    await _until(lambda: _errors(metrics, "connection") >= 2, "two connection errors")
    assert not enricher.synced.is_set()
    assert enricher.find_pod("shop", "web-7d9f-x1", None) is None
    assert sim_server.requests.count(resource="pods") == 0


async def test_insecure_skip_tls_verify_reads_and_warns_once_at_start(
        sim_server: SimServer, tmp_path: Path, token_file: Path, start: Start) -> None:
    _cluster(sim_server)
    settings = _settings(sim_server, tmp_path, token_file, insecure_skip_tls_verify=True,
                         ca_file=tmp_path / "missing-ca.crt")
    warnings = await preflight(settings, environ={})
    assert [w for w in warnings if "kubelet" in w] == [
        "logs: TLS verification of the kubelet is off (logs.kubelet.insecure_skip_tls_verify): anyone on the "
        "network path can impersonate it and read the bearer token; set logs.kubelet.ca_file instead"]
    enricher = await start(settings)
    assert enricher.pods is not None and len(enricher.pods) == 3


async def test_a_missing_ca_file_is_a_one_line_config_error(
        sim_server: SimServer, tmp_path: Path, token_file: Path) -> None:
    settings = _settings(sim_server, tmp_path, token_file, ca_file=tmp_path / "nope.crt")
    with pytest.raises(ConfigError, match=r"kubelet CA file .*nope\.crt does not exist") as info:
        await preflight(settings, environ={})
    assert info.value.key == "logs.kubelet.ca_file"


async def test_settle_waits_for_the_read_a_new_uid_triggers_and_no_longer(
        sim_server: SimServer, tmp_path: Path, token_file: Path, start: Start) -> None:
    _cluster(sim_server)
    enricher = await start(_settings(sim_server, tmp_path, token_file, refresh_s=3600.0))
    kubelet = enricher.kubelet
    assert kubelet is not None
    new = make_pod(sim_server, "fresh", "shop")["metadata"]
    await enricher.settle_pod(new["uid"])
    assert kubelet.reads == 2 and enricher.find_pod("shop", "fresh", new["uid"]) is not None
    # A UID the kubelet does not know is answered by one read; asking again does not wait or read.
    await enricher.settle_pod("0000-unknown")
    assert kubelet.reads == 3
    await enricher.settle_pod("0000-unknown")
    assert kubelet.reads == 3
