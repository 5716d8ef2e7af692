"""What a node agent asks the API server for, derived from the pods on its node.

The node agent's pod store (a node-scoped watch, or its kubelet's ``/pods``) decides everything
else it needs:

* each pod's owner chain through the intermediate kinds (ReplicaSet, Job) and its namespace are
  fetched one by one (enrich/lookups.py) when a pod naming them is first stored;
* the services of a namespace are watched (one namespace-scoped list+watch) while the node has
  pods in that namespace, and ``enrich.delete_delay_s`` after its last pod left (the retained
  pods' late lines still get their services); the watch is then stopped and its services dropped.

So requests and cached objects grow with the pods on the node, not with the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from kubestream.config.settings import Settings
from kubestream.enrich.lookups import FetchedObjects, Key
from kubestream.kube.client import KubeClient
from kubestream.kube.objects import PodInfo, ServiceInfo
from kubestream.kube.reflector import Reflector, ResourceRef
from kubestream.kube.store import ObjectStore, ScopedFeed
from kubestream.obs.metrics import Metrics

log = logging.getLogger(__name__)

SWEEP_S = 10.0
"""How often namespaces without pods and owners no pod needs are looked for (in memory only)."""


class _ServiceWatch:
    def __init__(self, feed: ScopedFeed[ServiceInfo], reflector: Reflector[ServiceInfo],
                 task: asyncio.Task[None]) -> None:
        self.feed = feed
        self.reflector = reflector
        self.task = task
        self.empty_since: float | None = None


class NodeScope:
    """Keeps the owner/namespace lookups and the per-namespace service watches in step with the
    pods of ``pods``."""

    def __init__(self, client: KubeClient, settings: Settings, pods: ObjectStore[PodInfo], *,
                 lookups: FetchedObjects | None, services: ObjectStore[ServiceInfo] | None,
                 services_ref: ResourceRef, decode_service: Callable[[dict[str, Any]], ServiceInfo | None],
                 chain_kinds: frozenset[str], metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._settings = settings
        self._pods = pods
        self.lookups = lookups
        self.services = services
        self._services_ref = services_ref
        self._decode_service = decode_service
        self._chain_kinds = chain_kinds
        self._metrics = metrics
        self._clock = clock
        self._delay = settings.enrich.delete_delay_s
        self._watches: dict[str, _ServiceWatch] = {}
        self._group: asyncio.TaskGroup | None = None
        self._started = asyncio.Event()
        self._backlog: set[str] = set()
        pods.add_index("namespace", lambda p: (p.namespace,))
        pods.subscribe(self._on_pod)

    @property
    def service_namespaces(self) -> list[str]:
        """Namespaces whose services are watched now."""
        return sorted(self._watches)

    def services_synced(self, namespace: str) -> bool:
        watch = self._watches.get(namespace)
        return watch is not None and watch.reflector.synced.is_set()

    async def wait_services(self, namespace: str) -> None:
        watch = self._watches.get(namespace)
        if watch is not None:
            await watch.reflector.synced.wait()

    # -- pods in, requests out -----------------------------------------------------------------

    def _on_pod(self, pod: PodInfo) -> None:
        if self.lookups is not None:
            for key in self.keys_of(pod):
                self.lookups.want(key)
        if self.services is not None:
            self._watch_services(pod.namespace)

    def keys_of(self, pod: PodInfo) -> list[Key]:
        """The objects a pod's block needs fetched: its namespace and its owner chain's
        intermediate links (as far as they are known now)."""
        keys: list[Key] = []
        lookups = self.lookups
        if lookups is None:
            return keys
        if lookups.namespaces is not None and pod.namespace:
            keys.append(Key("Namespace", "", pod.namespace))
        owners = pod.owners
        seen: set[str] = set()
        while owners and len(seen) < 8:
            ref = owners[0]
            if ref.kind not in self._chain_kinds or ref.uid in seen:
                break
            seen.add(ref.uid)
            keys.append(Key(ref.kind, pod.namespace, ref.name, ref.uid))
            store = lookups.workloads.get(ref.kind)
            found = store.get(ref.uid) if store is not None else None
            if found is None:
                break
            owners = found.owners
        return keys

    def on_fetched(self) -> None:
        """A lookup answered: the next link of the chains it belongs to may need fetching."""
        if self.lookups is None:
            return
        for pod in self._pods.items():
            for key in self.keys_of(pod):
                self.lookups.want(key)

    def _watch_services(self, namespace: str) -> None:
        watch = self._watches.get(namespace)
        if watch is not None:
            watch.empty_since = None
            return
        if self._group is None:
            self._backlog.add(namespace)
            return
        assert self.services is not None
        ref = ResourceRef(self._services_ref.group, self._services_ref.version, self._services_ref.plural, namespace)
        feed = self.services.scoped_feed(_in_namespace(namespace))
        reflector: Reflector[ServiceInfo] = Reflector(
            self._client, ref, self._decode_service, feed.handle, settings=self._settings.kube,
            name=f"services/{namespace}", metrics=self._metrics)
        task = self._group.create_task(reflector.run(), name=f"reflector-services-{namespace}")
        self._watches[namespace] = _ServiceWatch(feed, reflector, task)

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the lookups and the service watches until cancelled."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            if self.lookups is not None:
                group.create_task(self.lookups.run(), name="enrich-lookups")
            for namespace in sorted(self._backlog):
                self._watch_services(namespace)
            self._backlog.clear()
            for pod in self._pods.items():
                self._on_pod(pod)
            self._started.set()
            group.create_task(self._sweep_loop(), name="enrich-node-scope-sweep")

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(min(SWEEP_S, max(0.05, self._delay / 4)))
            self.sweep()

    def sweep(self) -> None:
        """Stop the service watches of namespaces without pods for ``delete_delay_s``; drop
        fetched objects no pod needs any more (once their TTL passed)."""
        now = self._clock()
        self._pods.expire()
        for namespace, watch in list(self._watches.items()):
            if self._pods.by_index("namespace", namespace):
                watch.empty_since = None
                continue
            if watch.empty_since is None:
                watch.empty_since = now
            if now - watch.empty_since >= self._delay:
                watch.task.cancel()
                watch.feed.retire()
                del self._watches[namespace]
                log.debug("services of namespace %s: no pods on this node any more; watch stopped", namespace)
        if self.lookups is not None:
            needed: set[Key] = set()
            for pod in self._pods.all_items():  # retained pods' late lines need them too
                needed.update(self.keys_of(pod))
            self.lookups.sweep(needed)


def _in_namespace(namespace: str) -> Callable[[ServiceInfo], bool]:
    def in_scope(service: ServiceInfo) -> bool:
        return service.namespace == namespace
    return in_scope
