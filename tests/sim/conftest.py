"""Fixtures for simulator tests; the reusable parts live in kubestream.sim.testing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from kubestream.sim.server import SimServer
from kubestream.sim.testing import kubeconfig_for, running_sim


@pytest.fixture
def sim_server() -> Iterator[SimServer]:
    """A fresh simulated API server on a free port (test-friendly defaults)."""
    with running_sim() as server:
        yield server


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    """Start servers with custom SimConfig fields: ``sim_factory(tls=True, tokens=["t"])``."""
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(running_sim(**overrides))


@pytest.fixture
def sim_kubeconfig(sim_server: SimServer, tmp_path: Path) -> Path:
    """A kubeconfig file pointing at ``sim_server``."""
    return kubeconfig_for(sim_server, tmp_path)
