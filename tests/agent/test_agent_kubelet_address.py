"""Kubelet mode follows its Node: when the kubelet's published address (InternalIP and
``kubeletEndpoint.Port``) changes, the node agent reads from the new one. With the Node watched the
change arrives on that watch (no extra request); without it an unreachable read looks the Node up
again. The simulator moves a kubelet to a new port (``SimServer.move_kubelet``), closing the old."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.enrich.enrich_support import Cluster, make_pod

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
from kubestream.kube.client import KubeClient
from kubestream.kube.kubelet_client import kubelet_url, node_kubelet_url
from kubestream.sim.server import SimServer
from kubestream.sim.testing import kubeconfig_for, running_sim

TOKEN = "agent-token"
NODE = "node-1"


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with running_sim(kubelets=True, kubelet_sync_s=0.05, tokens={TOKEN: "system:serviceaccount:kubestream:logs"},
                     bookmark_interval_s=0.5) as server:
        Cluster(server)
        server.kubelet(NODE)
        yield server


def _settings(server: SimServer, tmp: Path, *, nodes: bool) -> Settings:
    token = tmp / "token"
    token.write_text(TOKEN)
    kube = KubeSettings(kubeconfig=str(kubeconfig_for(server, tmp, token=TOKEN)), backoff_initial_s=0.05,
                        backoff_max_s=0.2)
    kubelet = KubeletSettings(ca_file=server.kubelet_ca_path, token_file=token, refresh_s=3600.0)
    logs = LogsSettings(enabled=True, node_name=NODE, metadata_source="kubelet", kubelet=kubelet)
    return Settings(kube=kube, logs=logs, events=EventsSettings(enabled=False),
                    enrich=EnrichSettings(nodes=nodes), sink=SinkSettings(), state=StateSettings(dir=tmp / "state"))


Start = Callable[[Settings], Awaitable[Enricher]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    tasks: list[asyncio.Task[None]] = []
    clients: list[KubeClient] = []

    async def go(settings: Settings) -> Enricher:
        client = await KubeClient.create(settings.kube)
        clients.append(client)
        enricher = Enricher(client, settings, node_name=NODE)
        tasks.append(asyncio.create_task(enricher.run()))
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


async def _new_pod_found_after_move(sim: SimServer, enricher: Enricher) -> dict[str, Any]:
    assert enricher.kubelet is not None
    old = sim.kubelet(NODE)
    moved = await asyncio.to_thread(sim.move_kubelet, NODE)
    assert moved.port != old.port
    late = (await asyncio.to_thread(make_pod, sim, "late", "shop"))["metadata"]
    # Its log directory names it: the next read (or the one after a failed one) must find it.
    await _until(lambda: enricher.find_pod("shop", "late", late["uid"]) is not None, "the new pod")
    assert enricher.kubelet.address_changes == 1
    assert sim.kubelet_requests.count(node=NODE, path="/pods", code=200) == enricher.kubelet.reads
    return late


async def test_a_moved_kubelet_is_followed_through_the_node_watch_without_extra_requests(
        sim: SimServer, tmp_path: Path, start: Start) -> None:
    sim.requests.reset()
    enricher = await start(_settings(sim, tmp_path, nodes=True))
    # The first address came from the Node watch's list too: no lookup of its own.
    assert sim.requests.count(verb="list", resource="nodes") == 1
    await _new_pod_found_after_move(sim, enricher)
    assert sim.requests.count(verb="list", resource="nodes") == 1
    assert sim.requests.count(resource="pods") == 0
    # Node status updates that keep the address do not make it read: one read at start, one for
    # the move, at most one more for the new pod's UID (when the move's read came before it).
    assert enricher.kubelet is not None and enricher.kubelet.reads in (2, 3)


async def test_without_a_node_watch_an_unreachable_kubelet_makes_it_look_the_node_up_again(
        sim: SimServer, tmp_path: Path, start: Start) -> None:
    sim.requests.reset()
    enricher = await start(_settings(sim, tmp_path, nodes=False))
    assert sim.requests.count(verb="list", resource="nodes") == 1
    assert sim.requests.count(verb="watch", resource="nodes") == 0
    await _new_pod_found_after_move(sim, enricher)
    assert sim.requests.count(verb="list", resource="nodes") == 2
    assert sim.requests.count(resource="pods") == 0


def test_the_url_is_the_internal_ip_and_published_port_ipv6_bracketed() -> None:
    node = {"status": {"addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": "fd00::7"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}}}}
    assert node_kubelet_url(node) == "https://[fd00::7]:10255"
    assert kubelet_url("10.0.0.7", 0) == "https://10.0.0.7:10250"
    assert node_kubelet_url({"status": {"addresses": [{"type": "Hostname", "address": "n"}]}}) is None
