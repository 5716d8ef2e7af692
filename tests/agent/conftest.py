"""Fixtures for end-to-end tests (helpers in harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubestream.sim.server import SimConfig, SimServer


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = SimServer(SimConfig())
    server.start()
    try:
        yield server
    finally:
        server.stop()

