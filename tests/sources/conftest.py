"""Fixtures of the Events source tests (helpers live in source_events_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from source_events_support import NOW, Harness

from kubestream.config.settings import EventsSettings


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path / "state.db", EventsSettings(since="retained"))
    yield h
    h.close()


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(clock: float = NOW, **events: Any) -> Harness:
        h = Harness(tmp_path / f"state{len(made)}.db", EventsSettings(**events), clock=clock)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()
