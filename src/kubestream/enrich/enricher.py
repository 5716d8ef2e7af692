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

A logs-only node agent with ``logs.metadata_source: kubelet`` has no pod reflector: its pod store
is fed from its kubelet's ``/pods`` (enrich/kubelet_pods.py), and a lookup of an unknown UID asks
for a refresh; every other cache stays on the API server.

Misses are counted in ``kubestream_enrichment_misses_total{source,kind}`` here, with the
``source`` the caller passes (defaults: "events" for ``for_object``, "logs" for ``for_pod``), and
only for the looked-up object itself (not for its namespace or node), matching the metric's help
text "records whose object was not in the caches".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubestream.config.settings import Settings
from kubestream.enrich.fieldpath import container_from_field_path
from kubestream.enrich.kubelet_pods import KubeletPods, PodLister
from kubestream.enrich.owners import NOT_CACHED, NotCached, OwnerChain, walk
from kubestream.enrich.valuecap import ValueCap
from kubestream.kube.client import KubeClient
from kubestream.kube.kubelet_client import KubeletClient, resolve_kubelet_url
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
"""Kubelet mode: the longest a new pod's first log lines wait for the /pods read they trigger."""

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
        if e.owners:
            for kind, ref in CHAIN_KINDS.items():
                self.workloads[kind] = self._cache(kind, ref, d.workload(kind))
        if e.nodes:
            self.nodes = self._cache("Node", NODES, d.node,
                                     field_selector=f"metadata.name={self.node_name}" if self.node_name else None)
        if e.namespaces:
            self.namespaces = self._cache("Namespace", NAMESPACES, d.namespace)
        if e.services:
            self.services = self._cache("Service", SERVICES, d.service)
            self.services.add_index("namespace", lambda s: (s.namespace,))

    def _cache(self, kind: str, ref: ResourceRef, decode: Callable[[dict[str, Any]], C | None], *,
               field_selector: str | None = None) -> ObjectStore[C]:
        store: ObjectStore[C] = ObjectStore(kind, delete_delay_s=self._enrich.delete_delay_s, metrics=self._metrics)
        self._reflectors.append(Reflector(
            self._client, ref, decode, store.handle, settings=self._settings.kube,
            field_selector=field_selector, name=ref.plural, metrics=self._metrics))
        return store

    def _kubelet_pods(self) -> ObjectStore[PodInfo]:
        """The pod store fed from the kubelet's /pods; only a node agent (with a node name) gets here."""
        store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=self._enrich.delete_delay_s,
                                                  metrics=self._metrics)
        kubelet = self._settings.logs.kubelet
        node = self.node_name
        assert node is not None

        async def connect() -> PodLister:
            url = kubelet.url or await resolve_kubelet_url(self._client, node)
            return KubeletClient(kubelet, url)

        self.kubelet = KubeletPods(connect, store, self._decoders.pod, kubelet, self._settings.kube,
                                   metrics=self._metrics)
        return store

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
            group.create_task(self._mark_synced())

    async def _mark_synced(self) -> None:
        waits = [r.synced.wait() for r in self._reflectors]
        if self.kubelet is not None:
            waits.append(self.kubelet.synced.wait())
        await asyncio.gather(*waits)
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
        return NOT_CACHED if store is None else store.get(uid)

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

    async def settle_pod(self, uid: str) -> None:
        """Kubelet mode: a log directory of an unknown pod UID waits (at most ``SETTLE_S``) for the
        refresh it triggers, so its first lines carry the pod's metadata. No-op otherwise."""
        if self.kubelet is not None and uid:
            await self.kubelet.settle(uid, SETTLE_S)

    def find_pod(self, namespace: str | None, name: str, uid: str | None) -> PodInfo | None:
        """The cached pod by uid (or by name when there is none), or the mirror pod of the static
        pod whose (hash) uid that is; None when not cached."""
        if self.pods is None:
            return None
        if not uid:
            return self.pods.get_by_name(namespace, name)
        pod = self.pods.get(uid)
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
