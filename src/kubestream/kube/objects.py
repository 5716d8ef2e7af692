"""Slim cached objects: only what enrichment needs, decoded once from raw JSON dicts.

A full Pod is 4-8 KB of JSON and ~60 KB as the official client's models; the caches hold tens of
thousands of them, so decoders keep a handful of fields in small frozen ``msgspec.Struct``s
(``gc=False``: they hold no cycles, so the garbage collector never walks them) and intern every
string that repeats across objects (namespaces, label keys/values, node names, images, owner
kinds). Label and annotation filters run here, at decode time, so filtered keys never reach memory.

Every decoder takes the item dict of a list or a watch event (built-in list items carry no
``kind``, so the kind comes from the decoder) and returns None for an object it cannot use
(no uid), which the reflector then skips.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import msgspec

from kubestream.config.settings import EnrichSettings

ContainerKind = Literal["regular", "init", "ephemeral"]

_intern = sys.intern
_EMPTY: Mapping[str, str] = {}


class OwnerRef(msgspec.Struct, frozen=True, gc=False):
    """One ``metadata.ownerReferences`` entry."""

    kind: str
    name: str
    uid: str
    controller: bool = False


class ContainerInfo(msgspec.Struct, frozen=True, gc=False):
    """A container of a pod: spec fields joined with its status by name."""

    name: str
    image: str
    kind: ContainerKind = "regular"
    image_id: str | None = None
    container_id: str | None = None


class PodInfo(msgspec.Struct, frozen=True, gc=False):
    uid: str
    name: str
    namespace: str
    labels: Mapping[str, str] = _EMPTY
    annotations: Mapping[str, str] = _EMPTY
    owners: tuple[OwnerRef, ...] = ()
    node_name: str | None = None
    pod_ip: str | None = None
    phase: str | None = None
    containers: tuple[ContainerInfo, ...] = ()
    rv: int = 0

    def container(self, name: str, kind: ContainerKind | None = None) -> ContainerInfo | None:
        """The container called ``name`` (of ``kind`` when given)."""
        for c in self.containers:
            if c.name == name and (kind is None or c.kind == kind):
                return c
        return None


class NodeInfo(msgspec.Struct, frozen=True, gc=False):
    uid: str
    name: str
    labels: Mapping[str, str] = _EMPTY
    addresses: Mapping[str, str] = _EMPTY
    """First address of each type: InternalIP, ExternalIP, Hostname, ..."""
    annotations: Mapping[str, str] = _EMPTY
    rv: int = 0
    kubelet_port: int = 0
    """``status.daemonEndpoints.kubeletEndpoint.Port`` (0 when not published): with the InternalIP,
    where a node agent in kubelet mode finds its kubelet, and notices when it moves."""

    @property
    def namespace(self) -> str:
        return ""


class NamespaceInfo(msgspec.Struct, frozen=True, gc=False):
    uid: str
    name: str
    labels: Mapping[str, str] = _EMPTY
    annotations: Mapping[str, str] = _EMPTY
    rv: int = 0

    @property
    def namespace(self) -> str:
        return ""


class ServiceInfo(msgspec.Struct, frozen=True, gc=False):
    uid: str
    name: str
    namespace: str
    selector: Mapping[str, str] | None = None
    """None (or empty) for a service without selector: it matches no pod."""
    labels: Mapping[str, str] = _EMPTY
    rv: int = 0

    def selects(self, pod_labels: Mapping[str, str]) -> bool:
        """Whether this service's selector matches a pod with these labels."""
        if not self.selector:
            return False
        return all(pod_labels.get(k) == v for k, v in self.selector.items())


class WorkloadInfo(msgspec.Struct, frozen=True, gc=False):
    """A ReplicaSet, Deployment, Job, CronJob, StatefulSet or DaemonSet."""

    uid: str
    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str] = _EMPTY
    annotations: Mapping[str, str] = _EMPTY
    owners: tuple[OwnerRef, ...] = ()
    rv: int = 0


WORKLOAD_KINDS = ("ReplicaSet", "Deployment", "Job", "CronJob", "StatefulSet", "DaemonSet")


class KeyFilter:
    """Include/exclude glob filter over map keys, memoised per key.

    Label keys repeat across objects, so the fnmatch verdict is cached; the cache is cleared
    when it grows past ``max_cached`` to stay bounded against hostile key churn.
    """

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = (), *,
                 max_cached: int = 8192) -> None:
        self._include = tuple(include)
        self._exclude = tuple(exclude)
        self._verdicts: dict[str, bool] = {}
        self._max_cached = max_cached

    @property
    def passes_all(self) -> bool:
        """True when the filter keeps every key (the fast path)."""
        return not self._include and not self._exclude

    def keeps(self, key: str) -> bool:
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._decide(key)
            if len(self._verdicts) >= self._max_cached:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    def _decide(self, key: str) -> bool:
        if self._include and not any(fnmatch.fnmatchcase(key, p) for p in self._include):
            return False
        return not any(fnmatch.fnmatchcase(key, p) for p in self._exclude)

    def apply(self, raw: Any, *, intern_values: bool) -> Mapping[str, str]:
        """The kept entries of a raw string map, keys (and optionally values) interned."""
        if not raw or not isinstance(raw, dict):
            return _EMPTY
        keeps = self.keeps
        if intern_values:
            return {_intern(k): _intern(v) for k, v in raw.items() if isinstance(v, str) and keeps(k)}
        return {_intern(k): v for k, v in raw.items() if isinstance(v, str) and keeps(k)}


class Decoders:
    """The decoders of one agent, sharing its label/annotation filters.

    Label values repeat a lot (app names, pod-template-hash of a ReplicaSet's pods) and are
    interned; annotation values are mostly unique (checksums, JSON) and are not.
    """

    def __init__(self, settings: EnrichSettings | None = None) -> None:
        s = settings or EnrichSettings()
        self.labels = KeyFilter(s.labels_include, s.labels_exclude)
        self.annotations = KeyFilter(s.annotations_include, s.annotations_exclude)

    def pod(self, raw: dict[str, Any]) -> PodInfo | None:
        meta = raw.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return None
        spec = raw.get("spec") or {}
        status = raw.get("status") or {}
        node = spec.get("nodeName")
        phase = status.get("phase")
        return PodInfo(
            uid=uid,
            name=meta.get("name", ""),
            namespace=_intern(meta.get("namespace") or ""),
            labels=self.labels.apply(meta.get("labels"), intern_values=True),
            annotations=self.annotations.apply(meta.get("annotations"), intern_values=False),
            owners=_owners(meta),
            node_name=_intern(node) if node else None,
            pod_ip=status.get("podIP") or None,
            phase=_intern(phase) if phase else None,
            containers=_containers(spec, status),
            rv=_rv(meta),
        )

    def node(self, raw: dict[str, Any]) -> NodeInfo | None:
        meta = raw.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return None
        addresses: dict[str, str] = {}
        status = raw.get("status") or {}
        for a in status.get("addresses") or ():
            kind, address = a.get("type"), a.get("address")
            if kind and address and kind not in addresses:
                addresses[_intern(kind)] = address
        return NodeInfo(uid=uid, name=_intern(meta.get("name", "")),
                        labels=self.labels.apply(meta.get("labels"), intern_values=True),
                        annotations=self.annotations.apply(meta.get("annotations"), intern_values=False),
                        addresses=addresses, rv=_rv(meta), kubelet_port=_kubelet_port(status))

    def namespace(self, raw: dict[str, Any]) -> NamespaceInfo | None:
        meta = raw.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return None
        return NamespaceInfo(uid=uid, name=_intern(meta.get("name", "")),
                             labels=self.labels.apply(meta.get("labels"), intern_values=True),
                             annotations=self.annotations.apply(meta.get("annotations"), intern_values=False),
                             rv=_rv(meta))

    def service(self, raw: dict[str, Any]) -> ServiceInfo | None:
        meta = raw.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return None
        raw_selector = (raw.get("spec") or {}).get("selector")
        # The selector is matched, never filtered: dropping a key would widen the match.
        selector = ({_intern(k): _intern(v) for k, v in raw_selector.items()}
                    if isinstance(raw_selector, dict) and raw_selector else None)
        return ServiceInfo(uid=uid, name=_intern(meta.get("name", "")),
                           namespace=_intern(meta.get("namespace") or ""), selector=selector,
                           labels=self.labels.apply(meta.get("labels"), intern_values=True), rv=_rv(meta))

    def workload(self, kind: str) -> Callable[[dict[str, Any]], WorkloadInfo | None]:
        """A decoder for one workload kind (list items do not say their kind)."""
        kind = _intern(kind)

        def decode(raw: dict[str, Any]) -> WorkloadInfo | None:
            meta = raw.get("metadata") or {}
            uid = meta.get("uid")
            if not uid:
                return None
            return WorkloadInfo(
                uid=uid, kind=kind, name=_intern(meta.get("name", "")),
                namespace=_intern(meta.get("namespace") or ""),
                labels=self.labels.apply(meta.get("labels"), intern_values=True),
                annotations=self.annotations.apply(meta.get("annotations"), intern_values=False),
                owners=_owners(meta), rv=_rv(meta))

        return decode


def _rv(meta: Mapping[str, Any]) -> int:
    try:
        return int(meta.get("resourceVersion") or 0)
    except ValueError:
        return 0


def _owners(meta: Mapping[str, Any]) -> tuple[OwnerRef, ...]:
    refs = meta.get("ownerReferences")
    if not refs:
        return ()
    owners = [
        OwnerRef(kind=_intern(r.get("kind", "")), name=_intern(r.get("name", "")), uid=r.get("uid", ""),
                 controller=bool(r.get("controller")))
        for r in refs
    ]
    # The controller is the chain's next link; keep it first so walkers need not search.
    owners.sort(key=lambda o: not o.controller)
    return tuple(owners)


_CONTAINER_FIELDS: tuple[tuple[str, str, ContainerKind], ...] = (
    ("containers", "containerStatuses", "regular"),
    ("initContainers", "initContainerStatuses", "init"),
    ("ephemeralContainers", "ephemeralContainerStatuses", "ephemeral"),
)


def _containers(spec: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[ContainerInfo, ...]:
    out: list[ContainerInfo] = []
    for spec_key, status_key, kind in _CONTAINER_FIELDS:
        specs = spec.get(spec_key)
        if not specs:
            continue
        statuses = {s.get("name"): s for s in status.get(status_key) or ()}
        for c in specs:
            name = c.get("name", "")
            st = statuses.get(name) or {}
            image_id = st.get("imageID")
            out.append(ContainerInfo(
                name=_intern(name), image=_intern(c.get("image", "")), kind=kind,
                image_id=_intern(image_id) if image_id else None,
                container_id=st.get("containerID") or None))
    return tuple(out)


def _kubelet_port(status: dict[str, Any]) -> int:
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    port = endpoint.get("Port") if isinstance(endpoint, dict) else None
    return port if isinstance(port, int) and 0 < port < 65536 else 0
