"""The enrichment stage: the ``kubernetes`` block of a record, served only from watch caches.

One ``Enricher`` runs one reflector per needed kind (pods; ReplicaSets and Jobs for owner
chains; nodes; namespaces; services, as ``settings.enrich`` switches them) and answers lookups
synchronously from their stores: never a GET per record. Deleted objects stay in the stores for
``enrich.delete_delay_s`` so late records are still enriched (and marked ``object_deleted``).

Lookups go by UID first and fall back to namespace/name only when the record carries no UID: a
StatefulSet re-creating ``web-0`` gets a new UID and the two incarnations must never mix. The one
exception is a static pod, whose records carry kubelet's hash uid: it is found through its mirror
pod (same name, ``kubernetes.io/config.mirror: <hash>``) and keeps the hash as its uid.

Events and logs get the same block from here (logs through ``enrich.containers``, which builds it
once per container). Label/annotation values are cut to ``enrich.value_max_bytes`` when a block
is built; the cut ones are listed in ``truncated_values``.

A node agent (``node_name`` set: logs only) watches nothing cluster-wide: its pods (a node-scoped
watch, or with ``logs.metadata_source: kubelet`` its kubelet's ``/pods``, enrich/kubelet_pods.py)
decide what else is asked for (enrich/node_scope.py): the owners and namespaces of those pods are
fetched one by one (enrich/lookups.py) into the same stores, and services are watched only in the
namespaces those pods run in. The events collector (or an agent running both sources) keeps one
cluster-wide reflector per kind.

Misses are counted in ``kubestream_enrichment_misses_total{source,kind}`` here, with the
``source`` the caller passes (defaults: "events" for ``for_object``, "logs" for ``for_pod``), and
only for the looked-up object itself (not for its namespace or node), matching the metric's help
text "records whose object was not in the caches".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubestream.config.settings import Settings
from kubestream.enrich.fieldpath import container_from_field_path
from kubestream.enrich.kubelet_pods import KubeletPods, PodLister
from kubestream.enrich.lookups import FetchedObjects, Key
from kubestream.enrich.node_scope import NodeScope
from kubestream.enrich.owners import NOT_CACHED, NotCached, OwnerChain, walk
from kubestream.enrich.valuecap import ValueCap
from kubestream.kube.client import KubeClient
from kubestream.kube.kubelet_client import KubeletClient, node_info_kubelet_url, resolve_kubelet_url
from kubestream.kube.objects import (
    WORKLOAD_KINDS,
    ContainerKind,
    Decoders,
    NamespaceInfo,
    NodeInfo,
    OwnerRef,
    PodInfo,
    ServiceInfo,
    WorkloadInfo,
)
from kubestream.kube.reflector import Reflector, ResourceRef
from kubestream.kube.store import Cacheable, ObjectStore
from kubestream.obs.metrics import Metrics

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Cacheable)

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
"""On a static pod's mirror pod: the static pod's hash uid (its log directory's and events' uid)."""

SETTLE_S = 3.0
"""The longest a new pod's first log lines wait for its metadata: the /pods read they trigger
(kubelet mode) or the pod watch's ADDED (API server mode), then its owners and namespace."""
HOLD_UNKNOWN_S = 30.0
"""Kubelet mode: how long a new pod's first lines wait while the kubelet's reads fail (it has not
answered since the pod's UID was seen), so selection and routing by labels see its labels."""
NEW_POD_DIR_S = 30.0
"""API server mode: only a pod directory changed this recently is a plausibly new pod whose lines
wait for the pod watch (files of long-gone pods found at start-up never wait)."""
SYNC_LOOKUPS_S = 5.0
"""A node agent's ``synced`` also waits (at most this long) for the first answers of the owner and
namespace lookups and the service lists its pods need."""

PODS = ResourceRef("", "v1", "pods")
NODES = ResourceRef("", "v1", "nodes")
NAMESPACES = ResourceRef("", "v1", "namespaces")
SERVICES = ResourceRef("", "v1", "services")
CHAIN_KINDS: dict[str, ResourceRef] = {
    "ReplicaSet": ResourceRef("apps", "v1", "replicasets"),
    "Job": ResourceRef("batch", "v1", "jobs"),
}
"""The intermediate owner kinds that are cached (see enrich/owners.py for why only these)."""


@dataclass(slots=True)
class _Tally:
    """Lookups attempted for one record: decides ``enrichment`` ok / partial / none."""

    found: int = 0
    missed: int = 0
    truncated: list[str] = field(default_factory=list)
    """``<field>.<key>`` of each value the size cap cut."""

    def note(self, hit: bool) -> None:
        if hit:
            self.found += 1
        else:
            self.missed += 1

    @property
    def verdict(self) -> str:
        if not self.found:
            return "none"
        return "partial" if self.missed else "ok"


@dataclass(slots=True)
class _Cache(Generic[C]):
    store: ObjectStore[C]
    reflector: Reflector[C]


class Enricher:
    """Metadata for records, from caches that list/watch the cluster."""

    def __init__(self, client: KubeClient, settings: Settings, *, node_name: str | None = None,
                 metrics: Metrics | None = None) -> None:
        self._client = client
        self._settings = settings
        self._enrich = settings.enrich
        self._metrics = metrics
        self.node_name = node_name
        self._decoders = Decoders(settings.enrich)
        self._cap = ValueCap(settings.enrich.value_max_bytes)
        self.synced = asyncio.Event()
        """Set once every cache has completed its first list."""
        self._reflectors: list[Reflector[Any]] = []
        self.pods: ObjectStore[PodInfo] | None = None
        self.nodes: ObjectStore[NodeInfo] | None = None
        self.namespaces: ObjectStore[NamespaceInfo] | None = None
        self.services: ObjectStore[ServiceInfo] | None = None
        self.workloads: dict[str, ObjectStore[WorkloadInfo]] = {}
        self.kubelet: KubeletPods | None = None
        """The pod source in kubelet mode (``logs.metadata_source: kubelet``): no pod reflector then."""
        self.node_scope: NodeScope | None = None
        """A node agent's lookups and per-namespace service watches (None when cluster-wide)."""
        self.metadata_generation = 0
        """Incremented whenever a node agent's fetched owners, namespaces or services change, so
        per-container blocks built before an answer arrived are rebuilt."""
        self._pod_waiters: dict[str, asyncio.Future[None]] = {}
        self._seen_at: dict[str, float] = {}
        """Node agent: pod UID → when it was first looked up in vain or first stored; a new pod's
        lines wait at most until then + ``SETTLE_S`` (pods arriving together share the bound)."""
        self._settled: set[str] = set()
        if self._enrich.enabled:
            self._build_caches()

    # -- wiring --------------------------------------------------------------------------------

    def _build_caches(self) -> None:
        e = self._enrich
        d = self._decoders
        # A node agent only ever enriches its own node's pods (and its own node).
        own_node = f"spec.nodeName={self.node_name}" if self.node_name else None
        if self.node_name and self._settings.logs.metadata_source == "kubelet":
            self.pods = self._kubelet_pods()
        else:
            self.pods = self._cache("Pod", PODS, d.pod, field_selector=own_node)
        if e.nodes:
            self.nodes = self._cache("Node", NODES, d.node,
                                     field_selector=f"metadata.name={self.node_name}" if self.node_name else None)
            if self.kubelet is not None and self._settings.logs.kubelet.url is None:
                self.nodes.subscribe(self._node_stored)
        if self.node_name:
            self._build_node_scope()
            return
        if e.owners:
            for kind, ref in CHAIN_KINDS.items():
                self.workloads[kind] = self._cache(kind, ref, d.workload(kind))
        if e.namespaces:
            self.namespaces = self._cache("Namespace", NAMESPACES, d.namespace)
        if e.services:
            self.services = self._cache("Service", SERVICES, d.service)
            self.services.add_index("namespace", lambda s: (s.namespace,))

    def _build_node_scope(self) -> None:
        """Stores without cluster-wide reflectors, fed by what the node's pods need."""
        e = self._enrich
        d = self._decoders
        assert self.pods is not None
        delay = e.delete_delay_s
        decoders: dict[str, Callable[[dict[str, Any]], Any]] = {}
        refs: dict[str, ResourceRef] = {}
        if e.owners:
            for kind, ref in CHAIN_KINDS.items():
                self.workloads[kind] = ObjectStore(kind, delete_delay_s=delay, metrics=self._metrics)
                decoders[kind], refs[kind] = d.workload(kind), ref
        if e.namespaces:
            self.namespaces = ObjectStore("Namespace", delete_delay_s=delay, metrics=self._metrics)
            decoders["Namespace"], refs["Namespace"] = d.namespace, NAMESPACES
        lookups = None
        if decoders:
            lookups = FetchedObjects(self._client, self._settings.kube, refs=refs, decoders=decoders,
                                     workloads=self.workloads, namespaces=self.namespaces,
                                     on_change=self._node_metadata_changed)
        if e.services:
            self.services = ObjectStore("Service", delete_delay_s=delay, metrics=self._metrics)
            self.services.add_index("namespace", lambda s: (s.namespace,))
            self.services.subscribe(lambda _: self._bump())
        self.pods.subscribe(self._pod_stored)
        self.node_scope = NodeScope(self._client, self._settings, self.pods, lookups=lookups,
                                    services=self.services, services_ref=SERVICES, decode_service=d.service,
                                    chain_kinds=frozenset(CHAIN_KINDS), metrics=self._metrics)

    def _bump(self) -> None:
        self.metadata_generation += 1

    def _node_metadata_changed(self) -> None:
        self._bump()
        if self.node_scope is not None:
            self.node_scope.on_fetched()

    def _note_seen(self, uid: str) -> None:
        if uid in self._seen_at:
            return
        now = time.monotonic()
        if len(self._seen_at) > 4096:
            self._seen_at = {u: t for u, t in self._seen_at.items() if now - t < 2 * SETTLE_S}
        self._seen_at[uid] = now

    def _pod_stored(self, pod: PodInfo) -> None:
        self._note_seen(pod.uid)
        waiter = self._pod_waiters.pop(pod.uid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _cache(self, kind: str, ref: ResourceRef, decode: Callable[[dict[str, Any]], C | None], *,
               field_selector: str | None = None) -> ObjectStore[C]:
        store: ObjectStore[C] = ObjectStore(kind, delete_delay_s=self._enrich.delete_delay_s, metrics=self._metrics)
        self._reflectors.append(Reflector(
            self._client, ref, decode, store.handle, settings=self._settings.kube,
            field_selector=field_selector, name=ref.plural, metrics=self._metrics))
        return store

    def _kubelet_pods(self) -> ObjectStore[PodInfo]:
        """The pod store fed from the kubelet's /pods; only a node agent (with a node name) gets here.

        The kubelet's address: ``logs.kubelet.url`` if set, else the Node's. With the Node watched
        (``enrich.nodes``) the address comes from that watch, first and on every change, at no extra
        request; without it, from one list of the node (again after unreachable reads)."""
        store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=self._enrich.delete_delay_s,
                                                  metrics=self._metrics)
        kubelet = self._settings.logs.kubelet
        node = self.node_name
        assert node is not None
        watched = kubelet.url is None and self._enrich.nodes

        async def resolve() -> str:
            return await resolve_kubelet_url(self._client, node)

        async def connect() -> PodLister:
            url = kubelet.url
            if url is None and watched:
                url = await self._watched_kubelet_url(node)
            return KubeletClient(kubelet, url or await resolve())

        self.kubelet = KubeletPods(connect, store, self._decoders.pod, kubelet, self._settings.kube,
                                   metrics=self._metrics, relocate=resolve if kubelet.url is None and not watched
                                   else None)
        return store

    async def _watched_kubelet_url(self, node: str) -> str | None:
        """The kubelet URL of the watched Node once its watch has listed (None: not there or no
        InternalIP yet, the list decides); later changes reach ``KubeletPods.address_changed``."""
        reflector = next(r for r in self._reflectors if r.name == NODES.plural)
        await reflector.synced.wait()
        assert self.nodes is not None
        found = self.nodes.get_by_name(None, node)
        return node_info_kubelet_url(found) if found is not None else None

    def _node_stored(self, node: NodeInfo) -> None:
        """Every update of the watched Node: tell the kubelet poller where its kubelet is now."""
        if self.kubelet is None or node.name != self.node_name:
            return
        url = node_info_kubelet_url(node)
        if url is not None:
            self.kubelet.address_changed(url)

    @property
    def reflectors(self) -> list[Reflector[Any]]:
        """The running reflectors (one per cached kind)."""
        return list(self._reflectors)

    async def run(self) -> None:
        """Run every cache's reflector until cancelled; ``synced`` is set when all have listed."""
        if not self._reflectors and self.kubelet is None:
            self.synced.set()
            await asyncio.Event().wait()  # nothing to watch: just live until cancelled
        async with asyncio.TaskGroup() as group:
            for reflector in self._reflectors:
                group.create_task(reflector.run(), name=f"reflector-{reflector.name}")
            if self.kubelet is not None:
                group.create_task(self.kubelet.run(), name="kubelet-pods")
            if self.node_scope is not None:
                group.create_task(self.node_scope.run(), name="enrich-node-scope")
            group.create_task(self._mark_synced())

    async def _mark_synced(self) -> None:
        waits = [r.synced.wait() for r in self._reflectors]
        if self.kubelet is not None:
            waits.append(self.kubelet.synced.wait())
        await asyncio.gather(*waits)
        if self.node_scope is not None and self.pods is not None:
            # The pods are known: give their owners, namespaces and services a moment to arrive.
            await asyncio.sleep(0)
            pods = list(self.pods.items())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SYNC_LOOKUPS_S):
                    for pod in pods:
                        await self._await_pod_metadata(pod)
        names = [r.name for r in self._reflectors] + (["pods (kubelet)"] if self.kubelet is not None else [])
        log.info("enrichment caches synced: %s", ", ".join(names))
        self.synced.set()

    # -- lookups -------------------------------------------------------------------------------

    def for_pod(self, namespace: str, name: str, uid: str | None, *, container: str | None = None,
                source: str = "logs") -> dict[str, Any]:
        """The ``kubernetes`` block for a log record of ``container`` in this pod."""
        target = (container, None) if container else None
        return self._enrich_object("Pod", namespace, name, uid, target, source)

    def for_object(self, kind: str, namespace: str | None, name: str, uid: str | None, *,
                   field_path: str | None = None, source: str = "events") -> dict[str, Any]:
        """The ``kubernetes`` block for a record about any object (an event's involvedObject)."""
        return self._enrich_object(kind, namespace, name, uid, container_from_field_path(field_path), source)

    def _enrich_object(self, kind: str, namespace: str | None, name: str, uid: str | None,
                       container: tuple[str, ContainerKind | None] | None, source: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        tally = _Tally()
        if not self._enrich.enabled:
            _put_identity(out, kind, namespace, name, uid, container)
            out["enrichment"] = "none"
            return out
        if kind == "Namespace":
            namespace = name
        if namespace:
            out["namespace"] = namespace
            self._add_namespace(out, namespace, tally)
        _put_identity(out, kind, namespace, name, uid, container)
        if kind == "Pod":
            self._add_pod(out, namespace, name, uid, container, tally, source)
        elif kind in self.workloads:
            self._add_workload(out, self.workloads[kind], namespace, name, uid, tally, source)
        elif kind == "Node":
            self._add_node_object(out, name, uid, tally, source)
        elif kind == "Service" and self.services is not None:
            svc = self._lookup(self.services, namespace, name, uid, tally, source)
            if svc is not None:
                self._put_map(out, "labels", svc.labels, tally)
        elif kind in WORKLOAD_KINDS and uid:
            # A top-level workload we do not cache (Deployment, CronJob, ...): it is its own top.
            _put_owner(out, OwnerRef(kind, name, uid))
        if tally.truncated:
            out["truncated_values"] = sorted(tally.truncated)
        out["enrichment"] = tally.verdict
        return out

    def _add_namespace(self, out: dict[str, Any], namespace: str, tally: _Tally) -> None:
        if self.namespaces is None:
            return
        ns = self.namespaces.get_by_name(None, namespace)
        tally.note(ns is not None)
        lookups = self.node_scope.lookups if self.node_scope is not None else None
        if ns is not None and lookups is not None:
            lookups.touch(Key("Namespace", "", namespace))
        if ns is not None:
            self._put_map(out, "namespace_labels", ns.labels, tally)
            self._put_map(out, "namespace_annotations", ns.annotations, tally)

    def _add_pod(self, out: dict[str, Any], namespace: str | None, name: str, uid: str | None,
                 container: tuple[str, ContainerKind | None] | None, tally: _Tally, source: str) -> None:
        out["pod_name"] = name
        if uid:
            out["pod_uid"] = uid
        if self.pods is None:
            return
        pod = self._find_pod(self.pods, namespace, name, uid, tally, source)
        if pod is None:
            return
        # A static pod keeps the record's uid (kubelet's hash uid, in its events and log paths),
        # not its mirror pod's API uid.
        out["object_uid"] = out["pod_uid"] = uid or pod.uid
        out["object_deleted"] = self.pods.is_deleted(pod.uid)
        self._put_map(out, "labels", pod.labels, tally)
        self._put_map(out, "annotations", pod.annotations, tally)
        if pod.pod_ip:
            out["pod_ip"] = pod.pod_ip
        if container is not None:
            c = pod.container(container[0], container[1])
            if c is not None:
                out["container_image"] = c.image
                if c.container_id:
                    out["container_id"] = c.container_id
        self._add_owners(out, pod.owners, tally)
        if pod.node_name:
            out["node_name"] = pod.node_name
            self._add_node(out, pod.node_name, tally)
        self._add_services(out, pod)

    def _add_workload(self, out: dict[str, Any], store: ObjectStore[WorkloadInfo], namespace: str | None,
                      name: str, uid: str | None, tally: _Tally, source: str) -> None:
        wl = self._lookup(store, namespace, name, uid, tally, source)
        if wl is None:
            return
        out["object_uid"] = wl.uid
        out["object_deleted"] = store.is_deleted(wl.uid)
        self._put_map(out, "labels", wl.labels, tally)
        self._put_map(out, "annotations", wl.annotations, tally)
        if wl.owners:
            self._add_owners(out, wl.owners, tally)
        else:
            _put_owner(out, OwnerRef(wl.kind, wl.name, wl.uid))

    def _add_node_object(self, out: dict[str, Any], name: str, uid: str | None, tally: _Tally, source: str) -> None:
        out["node_name"] = name
        if self.nodes is None:
            return
        # The kubelet's node events name the node with UID = node name (its nodeRef), not the
        # Node object's UID: look those up by name.
        node = self._lookup(self.nodes, None, name, None if uid == name else uid, tally, source)
        if node is not None:
            out["object_uid"] = node.uid
            out["object_deleted"] = self.nodes.is_deleted(node.uid)
            self._put_map(out, "labels", node.labels, tally)
            self._put_map(out, "annotations", node.annotations, tally)
            self._put_node(out, node, tally)

    def _add_owners(self, out: dict[str, Any], owners: tuple[OwnerRef, ...], tally: _Tally) -> None:
        chain = walk(owners, self._workload_lookup)
        if not chain.links:
            return
        if self.workloads and any(link.kind in self.workloads for link in chain.links):
            tally.note(chain.complete)
        _put_chain(out, chain)

    def _workload_lookup(self, kind: str, uid: str) -> WorkloadInfo | NotCached | None:
        store = self.workloads.get(kind)
        if store is None:
            return NOT_CACHED
        found = store.get(uid)
        lookups = self.node_scope.lookups if self.node_scope is not None else None
        if found is not None and lookups is not None:
            lookups.touch(Key(kind, found.namespace, found.name, uid))
        return found

    def _add_node(self, out: dict[str, Any], node_name: str, tally: _Tally) -> None:
        if self.nodes is None:
            return
        node = self.nodes.get_by_name(None, node_name)
        tally.note(node is not None)
        if node is not None:
            self._put_node(out, node, tally)

    def _add_services(self, out: dict[str, Any], pod: PodInfo) -> None:
        if self.services is None:
            return
        names = sorted(s.name for s in self.services.by_index("namespace", pod.namespace) if s.selects(pod.labels))
        out["services"] = names

    async def settle_pod(self, uid: str, path: os.PathLike[str] | str | None = None) -> None:
        """A node agent's first lines of a new pod wait (at most ``SETTLE_S``) for its metadata.

        Kubelet mode: for the refresh an unknown UID triggers. API server mode: for the pod watch's
        ADDED (event-driven, no polling), but only when the pod is plausibly new — its directory
        (found from ``path``, a file under it) changed in the last ``NEW_POD_DIR_S`` — so the files
        of long-gone pods found at start-up never wait; and UIDs first missed together share one
        deadline. Either way, then for the first answers of the pod's owner and namespace lookups
        and its namespace's service list. Each UID waits at most once. No-op for a cluster-wide
        enricher (its caches hold everything already)."""
        if not uid or self.pods is None or self.node_scope is None or uid in self._settled:
            return
        if len(self._settled) > 4096:
            self._settled = {u for u in self._settled if u in self.pods}
        self._settled.add(uid)
        now = time.monotonic()
        deadline = self._seen_at.get(uid, now) + SETTLE_S
        if uid not in self.pods:
            if self.kubelet is not None:
                await self._settle_kubelet(self.kubelet, uid, now)
            elif _recently_changed(path, uid, NEW_POD_DIR_S):
                await self._wait_for_pod(uid, deadline - now)
        pod = self.pods.get(uid)
        remaining = deadline - time.monotonic()
        if pod is not None and remaining > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._await_pod_metadata(pod)

    async def _settle_kubelet(self, kubelet: KubeletPods, uid: str, now: float) -> None:
        """Wait for a read started after the UID was asked about; while the reads fail (the
        kubelet is unreachable or refuses, at start before its first answer too) keep waiting, up
        to ``HOLD_UNKNOWN_S`` from when the UID was first seen: a line whose pod's labels are not
        known yet must not be selected or routed as if the pod had none."""
        seen = self._seen_at.get(uid, now)
        await kubelet.settle(uid, max(0.0, seen + SETTLE_S - now))
        hold_until = seen + HOLD_UNKNOWN_S
        while uid not in kubelet.store and not kubelet.answered_since(uid):
            remaining = hold_until - time.monotonic()
            if remaining <= 0:
                log.warning("logs: the kubelet has not answered for %.0fs; lines of pod uid %s go on "
                            "without its metadata (labels unknown)", HOLD_UNKNOWN_S, uid)
                return
            kubelet.want(uid)
            await kubelet.settle(uid, min(remaining, SETTLE_S))
            await asyncio.sleep(min(0.05, max(0.0, hold_until - time.monotonic())))

    async def _wait_for_pod(self, uid: str, timeout: float) -> None:  # noqa: ASYNC109 - a bound
        if timeout <= 0 or self.pods is None or uid in self.pods:
            return
        waiter = self._pod_waiters.get(uid)
        if waiter is None or waiter.done():
            waiter = asyncio.get_running_loop().create_future()
            self._pod_waiters[uid] = waiter
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            if self._pod_waiters.get(uid) is waiter:
                del self._pod_waiters[uid]

    async def _await_pod_metadata(self, pod: PodInfo) -> None:
        """Until the first answers for the pod's owner chain, namespace and services are in."""
        scope = self.node_scope
        if scope is None:
            return
        if scope.lookups is not None:
            for _ in range(8):  # one round per chain link
                futures = [f for key in scope.keys_of(pod) if (f := scope.lookups.pending(key)) is not None]
                if not futures:
                    break
                await asyncio.gather(*futures)
        if self.services is not None:
            await scope.wait_services(pod.namespace)

    def find_pod(self, namespace: str | None, name: str, uid: str | None) -> PodInfo | None:
        """The cached pod by uid (or by name when there is none), or the mirror pod of the static
        pod whose (hash) uid that is; None when not cached."""
        if self.pods is None:
            return None
        if not uid:
            return self.pods.get_by_name(namespace, name)
        pod = self.pods.get(uid)
        if pod is None and self.node_scope is not None:
            self._note_seen(uid)
        if pod is None and self.kubelet is not None:
            # Kubelet mode: a new pod's log directory can appear before the next poll.
            self.kubelet.want(uid)
        elif pod is None:
            mirror = self.pods.get_by_name(namespace, name)
            if mirror is not None and mirror.annotations.get(MIRROR_ANNOTATION) == uid:
                return mirror
        return pod

    def _find_pod(self, store: ObjectStore[PodInfo], namespace: str | None, name: str, uid: str | None,
                  tally: _Tally, source: str) -> PodInfo | None:
        pod = self.find_pod(namespace, name, uid)
        tally.note(pod is not None)
        if pod is None and self._metrics is not None:
            self._metrics.enrichment_misses.labels(source=source, kind=store.kind).inc()
        return pod

    def _put_map(self, out: dict[str, Any], key: str, values: Mapping[str, str], tally: _Tally) -> None:
        if values:
            out[key] = self._cap.apply(key, values, tally.truncated)

    def _put_node(self, out: dict[str, Any], node: NodeInfo, tally: _Tally) -> None:
        ip = node.addresses.get("InternalIP")
        if ip:
            out["node_ip"] = ip
        self._put_map(out, "node_labels", node.labels, tally)
        self._put_map(out, "node_annotations", node.annotations, tally)

    def _lookup(self, store: ObjectStore[C], namespace: str | None, name: str, uid: str | None,
                tally: _Tally, source: str) -> C | None:
        # By UID when the record has one; never fall back to the name then, which may now
        # belong to another incarnation of the object.
        obj = store.get(uid) if uid else store.get_by_name(namespace, name)
        tally.note(obj is not None)
        if obj is None and self._metrics is not None:
            self._metrics.enrichment_misses.labels(source=source, kind=store.kind).inc()
        return obj


def _put_identity(out: dict[str, Any], kind: str, namespace: str | None, name: str, uid: str | None,
                  container: tuple[str, ContainerKind | None] | None) -> None:
    out["object_kind"] = kind
    out["object_name"] = name
    if uid:
        out["object_uid"] = uid
    if container is not None:
        out["container_name"] = container[0]


def _put_owner(out: dict[str, Any], top: OwnerRef) -> None:
    out["owner_kind"] = top.kind
    out["owner_name"] = top.name
    if top.uid:
        out["owner_uid"] = top.uid


def _put_chain(out: dict[str, Any], chain: OwnerChain) -> None:
    out["owners"] = [{"kind": o.kind, "name": o.name, "uid": o.uid} for o in chain.links]
    if chain.top is not None:
        _put_owner(out, chain.top)


def _recently_changed(path: os.PathLike[str] | str | None, uid: str, within_s: float) -> bool:
    """Whether the pod directory (the ancestor of ``path`` named ``..._<uid>``) changed in the last
    ``within_s`` seconds: a new pod's directory is created (and its container directories added)
    when it starts, a long-gone pod's was last touched long ago."""
    if path is None:
        return True
    current = os.fspath(path)
    while True:
        parent = os.path.dirname(current)
        if parent == current:
            return False
        if os.path.basename(current).endswith(uid):
            break
        current = parent
    try:
        changed = os.stat(current).st_mtime  # one stat per new UID, local file system
    except OSError:
        return False
    return time.time() - changed < within_s
