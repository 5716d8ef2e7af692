"""Fixtures of the live output tests: a receiver on 127.0.0.1 (helpers in outputs_support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.outputs.outputs_support import MutualTls, Receiver, mutual_tls_files


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def mutual_tls(tmp_path: Path) -> MutualTls:
    return mutual_tls_files(tmp_path)
