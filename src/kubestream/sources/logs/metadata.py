"""Per-container metadata of the logs source: the ``kubernetes`` block, selection facts and the
multiline pattern, kept per (pod uid, container).

The block comes from the Enricher's node-scoped pod cache (by UID: the uid is in the path, so a
StatefulSet re-creating ``web-0`` under a new UID can never borrow the old pod's metadata). It is
rebuilt when the cached pod changes (its resourceVersion) and otherwise kept: once the pod has
left the enricher's cache, the last good block stays in use until the pod's files are drained,
then for ``pod_dir_grace_s`` more (a late rotated file still finds it).

Static pods: kubelet names the directory after the static pod's hash uid; the API shows a mirror
pod with its own uid and the annotation ``kubernetes.io/config.mirror: <hash>``. The mirror pod
is found by name and that annotation; ``pod_uid`` stays the directory's uid (the one kubelet's own
events about the pod carry).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kubestream.config.settings import LogsSettings
from kubestream.kube.objects import NamespaceInfo, PodInfo
from kubestream.kube.store import ObjectStore
from kubestream.obs.metrics import Metrics
from kubestream.sources.logs.chunk import ContainerMeta
from kubestream.sources.logs.multiline import StartPattern, StartPatternError, compile_start_pattern
from kubestream.sources.logs.paths import LogPath
from kubestream.sources.logs.selection import PodFacts

log = logging.getLogger(__name__)

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
REFRESH_S = 60.0
"""Rebuild a block at least this often, so namespace/node/service changes reach it too."""


class PodEnricher(Protocol):
    """What the logs source needs of ``kubestream.enrich.Enricher`` (a sibling layer)."""

    @property
    def synced(self) -> asyncio.Event: ...

    @property
    def pods(self) -> ObjectStore[PodInfo] | None: ...

    @property
    def namespaces(self) -> ObjectStore[NamespaceInfo] | None: ...

    def for_pod(self, namespace: str, name: str, uid: str | None, *, container: str | None = None,
                source: str = "logs") -> dict[str, Any]: ...


@dataclass(slots=True)
class ContainerInfo:
    """What is known about one container of one pod incarnation."""

    meta: ContainerMeta
    facts: PodFacts
    multiline: StartPattern | None
    pod_rv: int
    built_at: float
    users: int = 0
    """Open files of this container; the entry is kept while > 0."""
    released_at: float | None = None


class MetadataCache:
    """``ContainerInfo`` per (pod uid, container)."""

    def __init__(self, settings: LogsSettings, enricher: PodEnricher | None, *, node_name: str,
                 clock: Callable[[], float] = time.monotonic, metrics: Metrics | None = None) -> None:
        self._settings = settings
        self._enricher = enricher
        self._node_name = node_name
        self._clock = clock
        self._metrics = metrics
        self._entries: dict[tuple[str, str], ContainerInfo] = {}
        self._refused: set[tuple[tuple[str, str], str]] = set()
        """(container, pattern) refusals already reported: one warning per container, not per rebuild."""

    def get(self, path: LogPath) -> ContainerInfo:
        """The container's info, rebuilt if its pod changed (cheap when it did not)."""
        key = path.container_key
        entry = self._entries.get(key)
        pod = self._find_pod(path)
        rv = pod.rv if pod is not None else -1
        now = self._clock()
        if entry is not None:
            fresh = entry.pod_rv == rv and now - entry.built_at < REFRESH_S
            # The pod left the caches: the last block that knew it stays right.
            gone = pod is None and entry.pod_rv >= 0
            if fresh or gone:
                return entry
        built = self._build(path, pod, now)
        if entry is not None:
            built.users, built.released_at = entry.users, entry.released_at
        self._entries[key] = built
        return built

    def acquire(self, path: LogPath) -> ContainerInfo:
        """``get`` and count one more open file of the container."""
        info = self.get(path)
        info.users += 1
        info.released_at = None
        return info

    def release(self, key: tuple[str, str]) -> None:
        """One open file of the container was let go."""
        info = self._entries.get(key)
        if info is not None:
            info.users = max(0, info.users - 1)
            if info.users == 0:
                info.released_at = self._clock()

    def expire(self) -> int:
        """Forget containers drained more than ``pod_dir_grace_s`` ago; returns how many."""
        now = self._clock()
        grace = self._settings.pod_dir_grace_s
        old = [k for k, v in self._entries.items()
               if v.users == 0 and v.released_at is not None and now - v.released_at >= grace]
        for key in old:
            del self._entries[key]
        if old:
            self._refused = {r for r in self._refused if r[0] in self._entries}
        return len(old)

    def __len__(self) -> int:
        return len(self._entries)

    def uid_for(self, namespace: str, pod: str) -> str | None:
        """The uid of the pod of that name in the cache (for paths that do not carry one)."""
        store = self._enricher.pods if self._enricher is not None else None
        found = store.get_by_name(namespace, pod) if store is not None else None
        return found.uid if found is not None else None

    # -- building --------------------------------------------------------------------------

    def _find_pod(self, path: LogPath) -> PodInfo | None:
        store = self._enricher.pods if self._enricher is not None else None
        if store is None:
            return None
        pod = store.get(path.uid)
        if pod is not None:
            return pod
        mirror = store.get_by_name(path.namespace, path.pod)
        if mirror is not None and mirror.annotations.get(MIRROR_ANNOTATION) == path.uid:
            return mirror
        return None

    def _build(self, path: LogPath, pod: PodInfo | None, now: float) -> ContainerInfo:
        kubernetes = self._kubernetes_block(path, pod)
        namespace_labels = self._namespace_labels(path.namespace)
        facts = PodFacts(
            labels=pod.labels if pod is not None else None,
            annotations=pod.annotations if pod is not None else None,
            namespace_labels=namespace_labels,
        )
        multiline = self._multiline(path, pod)
        return ContainerInfo(ContainerMeta.build(kubernetes), facts, multiline, pod.rv if pod else -1, now)

    def _kubernetes_block(self, path: LogPath, pod: PodInfo | None) -> dict[str, Any]:
        if self._enricher is not None:
            uid = pod.uid if pod is not None else path.uid
            block = dict(self._enricher.for_pod(path.namespace, path.pod, uid, container=path.container))
        else:
            block = {"namespace": path.namespace, "object_kind": "Pod", "object_name": path.pod,
                     "enrichment": "none"}
        # The path's identity always wins: it is what was on disk (and a mirror pod's API uid is
        # not the directory's).
        block.update(namespace=path.namespace, pod_name=path.pod, pod_uid=path.uid, object_uid=path.uid,
                     container_name=path.container)
        block.setdefault("node_name", self._node_name)
        return block

    def _namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        store = self._enricher.namespaces if self._enricher is not None else None
        if store is None:
            return None
        ns = store.get_by_name(None, namespace)
        return ns.labels if ns is not None else None

    def _multiline(self, path: LogPath, pod: PodInfo | None) -> StartPattern | None:
        pattern = _annotation_pattern(pod.annotations.get(self._settings.multiline_annotation) if pod else None,
                                      path.container)
        origin = "annotation"
        if pattern is None:
            origin = "config"
            for rule in self._settings.multiline:
                if (not rule.namespaces or path.namespace in rule.namespaces) and (
                        not rule.containers or path.container in rule.containers):
                    pattern = rule.start_pattern
                    break
        if pattern is None:
            return None
        try:
            return compile_start_pattern(pattern)
        except StartPatternError as exc:
            self._refuse(path, pattern, origin, exc)
            return None

    def _refuse(self, path: LogPath, pattern: str, origin: str, exc: StartPatternError) -> None:
        """Report a refused start pattern once per container; its lines go out unjoined."""
        key = (path.container_key, pattern)
        if key in self._refused:
            return
        self._refused.add(key)
        log.warning("logs: the multi-line start pattern %.200r (%s) of %s/%s container %s is refused: %s; "
                    "its lines go out unjoined", pattern, origin, path.namespace, path.pod, path.container, exc)
        if self._metrics is not None:
            self._metrics.patterns_rejected.labels(origin=origin).inc()


def _annotation_pattern(value: str | None, container: str) -> str | None:
    """``<pattern>`` for every container, or ``<container>=<pattern>;...``."""
    if not value:
        return None
    entries = [part for part in value.split(";") if part.strip()]
    named = {}
    for entry in entries:
        name, sep, pattern = entry.partition("=")
        if not sep or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name.strip()):
            # Not a container list: the whole value is one pattern (it may contain '=' or ';').
            return value
        named[name.strip()] = pattern
    return named.get(container)
