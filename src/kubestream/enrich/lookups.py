"""A node agent's owners and namespaces, fetched one by one with a GET instead of watched.

A cluster-wide ReplicaSet, Job or Namespace watch makes every node agent receive every rollout of
the cluster and hold every ReplicaSet. A node agent needs only the owners and namespaces of the
pods on its node, so it asks for exactly those, when a pod that names them first appears:

* one ``GET`` per object (a ReplicaSet by namespace/name, checked against the owner reference's
  uid; a Namespace by name), the result put into the same ``ObjectStore`` a watch would feed, so
  lookups and delayed deletion work unchanged;
* single-flight per key (a rollout of 10 pods of one ReplicaSet costs one GET), at most
  ``CONCURRENCY`` requests in flight;
* every fetched object is kept ``TTL_S`` (±20 % jitter, so a DaemonSet's agents do not refresh in
  step) and then refreshed lazily: only when a record is enriched with it after the TTL, in the
  background, while the cached copy keeps being served. Objects no pod of the node needs any more
  are dropped at the next sweep after their TTL;
* 404 (or an object of that name with another uid: the owner was replaced) is a negative answer:
  an object known before is marked deleted and kept ``enrich.delete_delay_s`` (delayed deletion,
  as after a watch's DELETED); an object never seen is remembered as missing for ``TTL_S``;
* any other failure (5xx, 429, connection) backs off with full jitter (``kube.backoff_*``),
  shared by all keys: during an API outage this agent sends one request per backoff interval,
  not one per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubestream.config.settings import KubeSettings
from kubestream.errors import ApiStatusError, KubeError, TooManyRequestsError
from kubestream.kube.client import KubeClient
from kubestream.kube.objects import NamespaceInfo, WorkloadInfo
from kubestream.kube.reflector import ResourceRef
from kubestream.kube.store import ObjectStore
from kubestream.util.backoff import Backoff

log = logging.getLogger(__name__)

TTL_S = 600.0
"""How long a fetched owner or namespace is used before it is refreshed (on its next use)."""
JITTER = 0.2
CONCURRENCY = 4
"""GETs in flight at most."""
MAX_MISSING = 4096
"""Negative answers remembered at most (hostile ownerReferences must not grow this unbounded)."""


@dataclass(frozen=True, slots=True)
class Key:
    """One object to fetch: ``kind`` is a cached owner kind or "Namespace"."""

    kind: str
    namespace: str
    name: str
    uid: str = ""
    """The owner reference's uid ("" for a namespace, which is looked up by name)."""

    @property
    def ident(self) -> str:
        return self.uid or self.name


@dataclass(slots=True)
class _Entry:
    fresh_until: float
    needed: bool = True


class FetchedObjects:
    """Owners and namespaces of a node's pods, fetched on demand into their stores."""

    def __init__(self, client: KubeClient, kube: KubeSettings, *, refs: dict[str, ResourceRef],
                 decoders: dict[str, Callable[[dict[str, Any]], Any]],
                 workloads: dict[str, ObjectStore[WorkloadInfo]], namespaces: ObjectStore[NamespaceInfo] | None,
                 on_change: Callable[[], None] | None = None, ttl_s: float | None = None,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._refs = refs
        self._decoders = decoders
        self.workloads = workloads
        self.namespaces = namespaces
        self._on_change = on_change
        self._ttl_s = TTL_S if ttl_s is None else ttl_s
        self._rng = rng or random.Random()
        self._clock = clock
        self._backoff = Backoff(kube.backoff_initial_s, kube.backoff_max_s, kube.backoff_reset_after_s,
                                clock=clock, rng=self._rng)
        self._entries: dict[Key, _Entry] = {}
        self._missing: dict[Key, float] = {}
        """Negative answers: key → until when it is not asked for again."""
        self._due: dict[Key, float] = {}
        """Keys waiting for a request, with the earliest time it may be sent."""
        self._inflight: dict[Key, asyncio.Future[None]] = {}
        self._waiting: dict[Key, asyncio.Future[None]] = {}
        self._paused_until = 0.0
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._failing: str | None = None
        self.requests = 0
        """GETs sent (for tests and diagnostics)."""

    # -- what the enricher asks ----------------------------------------------------------------

    def store_for(self, kind: str) -> ObjectStore[Any] | None:
        return self.namespaces if kind == "Namespace" else self.workloads.get(kind)

    def want(self, key: Key) -> None:
        """A pod needs this object: fetch it unless it is cached (or known missing) or on its way."""
        store = self.store_for(key.kind)
        if store is None:
            return
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None:
            entry.needed = True
            cached = store.get(key.uid) if key.uid else store.get_by_name(None, key.name)
            if cached is not None:
                return
        missing_until = self._missing.get(key)
        if missing_until is not None and now < missing_until:
            return
        self._schedule(key, now)

    def touch(self, key: Key) -> None:
        """A record was just enriched with this object: refresh it in the background if stale."""
        entry = self._entries.get(key)
        if entry is not None and self._clock() >= entry.fresh_until and key not in self._due \
                and key not in self._inflight:
            self._schedule(key, self._clock())

    def pending(self, key: Key) -> asyncio.Future[None] | None:
        """A future done when the first answer for ``key`` arrived (None when nothing is awaited)."""
        if key in self._entries or (key in self._missing and key not in self._due):
            return None
        if key not in self._due and key not in self._inflight:
            return None
        future = self._waiting.get(key)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._waiting[key] = future
        return future

    def sweep(self, needed: set[Key]) -> int:
        """Forget fetched objects whose TTL passed and that no pod of the node needs; returns how
        many. Entries still needed are kept (and refreshed on their next use)."""
        now = self._clock()
        dropped = 0
        for key, entry in list(self._entries.items()):
            entry.needed = key in needed
            if entry.needed or now < entry.fresh_until:
                continue
            del self._entries[key]
            store = self.store_for(key.kind)
            if store is not None:
                obj = store.get(key.uid) if key.uid else store.get_by_name(None, key.name)
                if obj is not None:
                    store.forget(obj.uid)
            dropped += 1
        self._missing = {k: t for k, t in self._missing.items() if t > now}
        return dropped

    @property
    def cached(self) -> int:
        return len(self._entries)

    # -- the worker ----------------------------------------------------------------------------

    def _schedule(self, key: Key, at: float) -> None:
        if key in self._inflight:
            return
        due = max(at, self._paused_until)
        if key not in self._due or self._due[key] > due:
            self._due[key] = due
        self._wake.set()

    async def run(self) -> None:
        """Send the scheduled GETs until cancelled; never raises on API errors."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._wake.clear()
                now = self._clock()
                start = max(now, self._paused_until)
                ready = [k for k, t in self._due.items() if t <= start] if start <= now else []
                for key in ready:
                    await self._slots.acquire()
                    if self._clock() < self._paused_until:  # a failure came in meanwhile
                        self._slots.release()
                        break
                    del self._due[key]
                    self._inflight[key] = asyncio.get_running_loop().create_future()
                    task = asyncio.create_task(self._fetch(key), name=f"fetch-{key.kind}")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    # One request at a time while recovering from failures: a probe, not a burst.
                    if self._backoff.attempt:
                        await self._inflight[key]
                        if self._clock() < self._paused_until:
                            break
                if self._due and not self._wake.is_set():
                    wait = max(0.0, min(self._due.values()) - self._clock(), self._paused_until - self._clock())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), max(wait, 0.001))
                elif not self._due:
                    await self._wake.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _fetch(self, key: Key) -> None:
        try:
            outcome = await self._get(key)
        finally:
            self._slots.release()
            done = self._inflight.pop(key)
            done.set_result(None)
        if outcome is not None:
            waiter = self._waiting.pop(key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self._on_change is not None:
                self._on_change()

    async def _get(self, key: Key) -> bool | None:
        """One GET; True (found), False (gone), None (failed: rescheduled after the backoff)."""
        ref = self._refs[key.kind]
        path = (f"{ResourceRef(ref.group, ref.version, ref.plural, key.namespace).path}/{key.name}"
                if key.namespace else f"{ref.path}/{key.name}")
        store = self.store_for(key.kind)
        assert store is not None
        self.requests += 1
        try:
            raw = await self._client.request_json("GET", path)
        except ApiStatusError as e:
            if e.code == 404:
                self._gone(key, store)
                return False
            self._failed(key, e, e.retry_after if isinstance(e, TooManyRequestsError) else None)
            return None
        except KubeError as e:
            self._failed(key, e, None)
            return None
        self._healthy()
        obj = self._decoders[key.kind](raw) if isinstance(raw, dict) else None
        if obj is None or (key.uid and obj.uid != key.uid):
            # The name now belongs to another object: the one the pod names is gone.
            self._gone(key, store)
            return False
        store.upsert(obj)
        self._missing.pop(key, None)
        self._entries[key] = _Entry(self._clock() + self._ttl_s * self._rng.uniform(1 - JITTER, 1 + JITTER))
        return True

    def _gone(self, key: Key, store: ObjectStore[Any]) -> None:
        self._healthy()
        self._entries.pop(key, None)
        known = store.get(key.uid) if key.uid else store.get_by_name(None, key.name)
        if known is not None and not store.is_deleted(known.uid):
            store.mark_deleted(known.uid)  # kept delete_delay_s, like a watch's DELETED
        if len(self._missing) >= MAX_MISSING:
            self._missing.clear()
        self._missing[key] = self._clock() + self._ttl_s * self._rng.uniform(1 - JITTER, 1 + JITTER)

    def _failed(self, key: Key, error: KubeError, retry_after: float | None) -> None:
        delay = max(retry_after or 0.0, self._backoff.next_delay())
        now = self._clock()
        self._paused_until = max(self._paused_until, now + delay)
        for other in self._due:
            self._due[other] = max(self._due[other], self._paused_until)
        self._due[key] = self._paused_until
        reason = type(error).__name__
        if reason != self._failing:
            log.warning("enrichment lookups: GET %s %s/%s failed (%s); retrying with backoff, keeping what is "
                        "cached", key.kind, key.namespace, key.name, error)
            self._failing = reason
        self._wake.set()

    def _healthy(self) -> None:
        if self._failing is not None:
            log.info("enrichment lookups: the API server answers again")
            self._failing = None
        self._backoff.reset()
        self._paused_until = 0.0
