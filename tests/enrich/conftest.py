"""Fixtures for the enrichment tests: the simulated API server with a small cluster in it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.enrich.enrich_support import Cluster

from kubestream.config.settings import KubeSettings, Settings
from kubestream.enrich import Enricher
from kubestream.kube.client import KubeClient
from kubestream.obs.metrics import Metrics
from kubestream.sim.server import SimServer
from kubestream.sim.testing import kubeconfig_for, running_sim


@pytest.fixture
def sim_server() -> Iterator[SimServer]:
    """A fresh simulated API server on a free port."""
    with running_sim(bookmark_interval_s=0.5) as server:
        yield server


@pytest.fixture
def settings(sim_server: SimServer, tmp_path: Path) -> Settings:
    kube = KubeSettings(kubeconfig=str(kubeconfig_for(sim_server, tmp_path)), backoff_initial_s=0.05,
                        backoff_max_s=0.2)
    return Settings(kube=kube)


@pytest.fixture
async def kube_client(settings: Settings) -> AsyncIterator[KubeClient]:
    client = await KubeClient.create(settings.kube)
    yield client
    await client.close()


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
