"""Fixtures for the enrichment tests: the simulated API server with a small cluster in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kubestream.config.settings import KubeSettings, Settings
from kubestream.kube.client import KubeClient
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

