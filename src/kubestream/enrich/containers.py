"""Per-container enrichment for record streams that are about one container (the logs): the
``kubernetes`` block built and encoded once per (pod uid, container), then reused for every chunk.

The block is the very one ``Enricher.for_pod`` gives an event about the same container: the
cache only decides *when* to build it. It is rebuilt when the cached pod changes (its
resourceVersion) and at least every ``REFRESH_S`` (so namespace/node/service changes reach it);
otherwise kept. Once the pod has left the enricher's cache (after the enricher's own
``delete_delay_s`` retention), the last good block stays in use while the container's files are
open, then for ``grace_s`` more (a late rotated file still finds it).

Lookups go by the uid the record carries (a log path's directory uid), so a StatefulSet
re-creating ``web-0`` under a new uid never borrows the old pod's metadata; static pods are found
through their mirror pod by ``Enricher.find_pod``.

What else a stream derives per container from the same pod (the logs' multi-line pattern and
selection facts) is built alongside by the ``derive`` callback and cached with the block, so the
caller needs one lookup per file, not one per concern.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from kubestream.enrich.block import ContainerMeta
from kubestream.kube.objects import NamespaceInfo, PodInfo
from kubestream.kube.store import ObjectStore

X = TypeVar("X")

REFRESH_S = 60.0
"""Rebuild a block at least this often, so namespace/node/service changes reach it too."""


class ContainerAddress(Protocol):
    """Which container a record stream is about (a log path satisfies it)."""

    @property
    def namespace(self) -> str: ...

    @property
    def pod(self) -> str: ...

    @property
    def uid(self) -> str: ...

    @property
    def container(self) -> str: ...

    @property
    def container_key(self) -> tuple[str, str]: ...


class PodEnricher(Protocol):
    """What the per-container cache needs of ``kubestream.enrich.Enricher``."""

    @property
    def synced(self) -> asyncio.Event: ...

    @property
    def pods(self) -> ObjectStore[PodInfo] | None: ...

    @property
    def namespaces(self) -> ObjectStore[NamespaceInfo] | None: ...

    def find_pod(self, namespace: str | None, name: str, uid: str | None) -> PodInfo | None: ...

    def for_pod(self, namespace: str, name: str, uid: str | None, *, container: str | None = None,
                source: str = "logs") -> dict[str, Any]: ...


Derive = Callable[[ContainerAddress, PodInfo | None, NamespaceInfo | None], X]
"""(container, its cached pod or None, its namespace or None) → the stream's own per-container facts."""


@dataclass(slots=True)
class ContainerMetadata(Generic[X]):
    """What is known about one container of one pod incarnation."""

    meta: ContainerMeta
    """The ``kubernetes`` block and its encoded-once record tail."""
    extra: X
    """What the stream derived from the same pod (see ``Derive``)."""
    pod_rv: int
    built_at: float
    generation: int = 0
    """The enricher's ``metadata_generation`` when built (a node agent's fetched metadata changed
    since: rebuild)."""
    users: int = 0
    """Open files (or other users) of this container; the entry is kept while > 0."""
    released_at: float | None = None


def unenriched_block(address: ContainerAddress) -> dict[str, Any]:
    """The block of a container when no enricher runs: only what the record itself says."""
    return {"namespace": address.namespace, "object_kind": "Pod", "object_name": address.pod,
            "object_uid": address.uid, "container_name": address.container, "pod_name": address.pod,
            "pod_uid": address.uid, "enrichment": "none"}


class ContainerMetadataCache(Generic[X]):
    """``ContainerMetadata`` per (pod uid, container)."""

    def __init__(self, enricher: PodEnricher | None, derive: Derive[X], *, node_name: str, grace_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._enricher = enricher
        self._derive = derive
        self._node_name = node_name
        self._grace_s = grace_s
        self._clock = clock
        self._entries: dict[tuple[str, str], ContainerMetadata[X]] = {}

    def get(self, address: ContainerAddress) -> ContainerMetadata[X]:
        """The container's metadata, rebuilt if its pod changed (cheap when it did not)."""
        key = address.container_key
        entry = self._entries.get(key)
        pod = self._enricher.find_pod(address.namespace, address.pod, address.uid) if self._enricher else None
        rv = pod.rv if pod is not None else -1
        now = self._clock()
        if entry is not None:
            fresh = (entry.pod_rv == rv and now - entry.built_at < REFRESH_S
                     and entry.generation == self._generation())
            # The pod left the caches: the last block that knew it stays right.
            gone = pod is None and entry.pod_rv >= 0
            if fresh or gone:
                return entry
        built = self._build(address, pod, now)
        if entry is not None:
            built.users, built.released_at = entry.users, entry.released_at
        self._entries[key] = built
        return built

    def acquire(self, address: ContainerAddress) -> ContainerMetadata[X]:
        """``get`` and count one more user (an open file) of the container."""
        info = self.get(address)
        info.users += 1
        info.released_at = None
        return info

    def release(self, key: tuple[str, str]) -> None:
        """One user of the container let go."""
        info = self._entries.get(key)
        if info is not None:
            info.users = max(0, info.users - 1)
            if info.users == 0:
                info.released_at = self._clock()

    def expire(self) -> int:
        """Forget containers unused for more than ``grace_s``; returns how many."""
        now = self._clock()
        old = [k for k, v in self._entries.items()
               if v.users == 0 and v.released_at is not None and now - v.released_at >= self._grace_s]
        for key in old:
            del self._entries[key]
        if old:
            self._forgotten(old)
        return len(old)

    def _forgotten(self, keys: list[tuple[str, str]]) -> None:
        """Hook: these containers were just forgotten (a subclass drops what it kept per key)."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def uid_for(self, namespace: str, pod: str) -> str | None:
        """The uid of the pod of that name in the cache (for records that do not carry one)."""
        found = self._enricher.find_pod(namespace, pod, None) if self._enricher is not None else None
        return found.uid if found is not None else None

    def _build(self, address: ContainerAddress, pod: PodInfo | None, now: float) -> ContainerMetadata[X]:
        identity = unenriched_block(address)
        if self._enricher is None:
            block = identity
        else:
            block = self._enricher.for_pod(address.namespace, address.pod, address.uid,
                                           container=address.container)
            # Only with enrichment switched off does the enricher leave any of these out.
            for key, value in identity.items():
                block.setdefault(key, value)
        # A node agent knows where its containers run even when their pod is not cached.
        block.setdefault("node_name", self._node_name)
        namespaces = self._enricher.namespaces if self._enricher is not None else None
        namespace = namespaces.get_by_name(None, address.namespace) if namespaces is not None else None
        extra = self._derive(address, pod, namespace)
        return ContainerMetadata(ContainerMeta.build(block), extra, pod.rv if pod is not None else -1, now,
                                 self._generation())

    def _generation(self) -> int:
        # Only the real Enricher has one (stand-ins in benchmarks need not).
        generation: int = getattr(self._enricher, "metadata_generation", 0)
        return generation
