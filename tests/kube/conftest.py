"""Fixtures for the kube tests: the simulated API server (copied from tests/sim/conftest.py's use
of kubestream.sim.testing) and fast-backoff client settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from kubestream.config.settings import KubeSettings
from kubestream.kube.client import KubeClient
from kubestream.sim.server import SimServer
from kubestream.sim.testing import kubeconfig_for, running_sim

FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "backoff_reset_after_s": 60.0,
        "inactivity_timeout_s": 10.0, "watch_timeout_s": (60.0, 60.0), "list_page_size": 500}


@pytest.fixture
def sim_server() -> Iterator[SimServer]:
    """A fresh simulated API server on a free port."""
    with running_sim(bookmark_interval_s=0.5) as server:
        yield server


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    """Start servers with custom SimConfig fields: ``sim_factory(tls=True, tokens=["t"])``."""
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(running_sim(**overrides))


@pytest.fixture
def kube_settings(sim_server: SimServer, tmp_path: Path) -> KubeSettings:
    return KubeSettings(kubeconfig=str(kubeconfig_for(sim_server, tmp_path)), **FAST)


@pytest.fixture
async def kube_client(kube_settings: KubeSettings) -> AsyncIterator[KubeClient]:
    client = await KubeClient.create(kube_settings)
    yield client
    await client.close()
