"""The sources behind one protocol, so the agent starts and stops them without knowing which.

A ``Source`` reads records and commits them through its pipeline (the batcher of its stream):
``start`` launches its reader and its pipeline's max-age timer, ``synced`` is set once it is
caught up with what it reads, ``stop`` ends the reading (no new records), ``flush`` then closes
the open batch into the spool with its positions. The events and logs sources are wrapped by
``StreamSource``; their internals are unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, Protocol

from kubestream.pipeline.batcher import Pipeline

__all__ = ["Source", "StreamSource"]


class _Runs(Protocol):
    synced: asyncio.Event

    def run(self) -> Coroutine[Any, Any, Any]: ...


class Source(Protocol):
    """A stream's reader and the pipeline it commits through."""

    @property
    def stream(self) -> str:
        """The stream it feeds (``events``, ``logs``)."""
        ...

    @property
    def synced(self) -> asyncio.Event:
        """Set once it has caught up (caches listed, files found)."""
        ...

    @property
    def pipeline(self) -> Pipeline:
        """What it commits: its records' batches and positions go through this pipeline."""
        ...

    def start(self) -> list[asyncio.Task[Any]]:
        """Launch its tasks (reader, batch timer); the agent watches them for failure."""
        ...

    async def stop(self) -> None:
        """Stop reading: no new record reaches the pipeline after this returns."""
        ...

    # The agreed contract takes a timeout (shutdown passes its remaining bound).
    async def flush(self, timeout: float) -> None:  # noqa: ASYNC109
        """Close the open batch into the spool (positions commit with it) within ``timeout``."""
        ...


class StreamSource:
    """``Source`` over an events or logs source object and its pipeline."""

    def __init__(self, name: str, inner: _Runs, pipeline: Pipeline) -> None:
        self.name = name
        self.inner = inner
        self._pipeline = pipeline
        self._reader: asyncio.Task[Any] | None = None
        self._timer: asyncio.Task[Any] | None = None

    @property
    def stream(self) -> str:
        return self._pipeline.stream

    @property
    def synced(self) -> asyncio.Event:
        return self.inner.synced

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    def start(self) -> list[asyncio.Task[Any]]:
        self._timer = asyncio.create_task(self._pipeline.run(), name=f"pipeline-{self.stream}")
        self._reader = asyncio.create_task(self.inner.run(), name=f"source-{self.stream}")
        return [self._timer, self._reader]

    async def stop(self) -> None:
        await cancel(self._reader)

    async def flush(self, timeout: float) -> None:  # noqa: ASYNC109
        await cancel(self._timer)
        await asyncio.wait_for(self._pipeline.flush(), timeout=timeout)


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait for it to end (its exception, if any, is not raised)."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
