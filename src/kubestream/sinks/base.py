"""The seam between the delivery worker and a destination (file system, S3, ...).

A sink performs exactly one attempt per call; retry policy (backoff with jitter, Retry-After)
belongs to the delivery worker, which classifies failures by exception class only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class Sink(Protocol):
    """A destination for encoded batches, addressed by deterministic keys.

    ``put`` must be idempotent: writing the same key twice leaves one object with that content
    (a replay after a crash overwrites, never duplicates). It returns only once the data is
    durable at the destination. Failures raise ``SinkRetryableError`` or ``SinkFatalError``.
    """

    name: str

    async def check(self) -> None:
        """Verify the destination is reachable and writable; raise ``SinkFatalError`` if not."""
        ...

    async def put(self, key: str, source: Path, size: int) -> None:
        """Durably store the bytes of ``source`` (a spool file) under ``key``."""
        ...

    async def close(self) -> None:
        """Release connections and handles."""
        ...


@runtime_checkable
class SinkReader(Protocol):
    """Reading the archive back (a takeover rebuilds the export state from it, see docs/design-ha.md)."""

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys of the objects under ``prefix`` (a "folder" ending in "/"), in no particular order."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes of one object."""
        ...
