"""A UID-keyed object cache fed by a reflector, keeping deleted objects for a while.

Like Vector's delayed-deletion store (``src/kubernetes/reflector.rs``): a record about a pod that
arrives after the pod was deleted (the last log lines, the ``Killing`` event) must still be
enriched, so DELETED only marks the object and schedules its removal ``delete_delay_s`` later.

Keyed by UID, never by name: a StatefulSet re-creating ``web-0`` gets a new UID, and the old and
new incarnations are two entries. ``get_by_name`` prefers the live one.

Expiry is lazy: deletions are kept in time order (one constant delay), so every mutation and
lookup pops the expired head in O(expired). There are no per-object timers.

A store need not be fed by one reflector over the whole collection: ``scoped_feed`` gives a
handler for a reflector over one part of it (the services of one namespace), whose lists only
retire objects of that part; ``upsert``/``mark_deleted``/``forget`` serve objects fetched one by
one (a node agent's owners and namespaces). ``subscribe`` calls back on every upsert (the node
agent learns from it which owners, namespaces and services its pods need).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from kubestream.kube.reflector import EventType, ReflectorEvent
from kubestream.obs.metrics import Metrics


class Cacheable(Protocol):
    """What the store needs of an object."""

    @property
    def uid(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str: ...


C = TypeVar("C", bound=Cacheable)

Indexer = Callable[[C], Iterable[Hashable]]
"""Maps an object to the index keys it is found under (e.g. its namespace)."""


class ObjectStore(Generic[C]):
    """Live objects by UID plus recently deleted ones, with optional secondary indexes.

    ``handle`` is a reflector handler: LISTED/ADDED/MODIFIED upsert; DELETED retains the object
    for ``delete_delay_s``; SYNCED retains (the same way) live objects the list did not contain,
    i.e. deletions that happened while the watch was down. Secondary indexes cover live objects.
    """

    def __init__(
        self,
        kind: str,
        *,
        delete_delay_s: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.delete_delay_s = delete_delay_s
        # One gauge child, resolved once: labels() per event would cost more than the update.
        self._gauge = metrics.cached_objects.labels(kind=kind) if metrics is not None else None
        self._clock = clock
        self._live: dict[str, C] = {}
        self._live_by_name: dict[tuple[str, str], str] = {}
        # uid -> (object, expiry); insertion order is expiry order (one constant delay).
        self._deleted: dict[str, tuple[C, float]] = {}
        self._deleted_by_name: dict[tuple[str, str], str] = {}
        self._indexers: dict[str, Indexer[C]] = {}
        self._indexes: dict[str, dict[Hashable, dict[str, C]]] = {}
        # The list being received: its RV and the UIDs seen so far (see _on_listed).
        self._listing_rv: int | None = None
        self._listed: set[str] = set()
        self._subscribers: list[Callable[[C], None]] = []

    # -- reflector handler -------------------------------------------------------------------

    async def handle(self, event: ReflectorEvent[C]) -> None:
        """Apply one reflector event (awaitable so it can be passed as a Handler)."""
        self.apply(event)

    def apply(self, event: ReflectorEvent[C]) -> None:
        """Synchronous form of ``handle``."""
        self.expire()
        kind, obj = event.type, event.obj
        if kind is EventType.LISTED and obj is not None:
            self._on_listed(obj, event.rv)
        elif kind in (EventType.ADDED, EventType.MODIFIED) and obj is not None:
            self.upsert(obj)
        elif kind is EventType.DELETED and obj is not None:
            self.upsert(obj)  # keep its final state
            self.mark_deleted(obj.uid)
        elif kind is EventType.SYNCED:
            self._on_synced()
        self._report()

    def _on_listed(self, obj: C, rv: int) -> None:
        # Every page of one list carries the same RV; another RV means an earlier list broke
        # off mid-way and a new one started, so UIDs seen by the broken one no longer count.
        if rv != self._listing_rv:
            self._listing_rv = rv
            self._listed = set()
        self._listed.add(obj.uid)
        self.upsert(obj)

    def _on_synced(self) -> None:
        gone = [uid for uid in self._live if uid not in self._listed]
        for uid in gone:
            self.mark_deleted(uid)
        self._listing_rv = None
        self._listed = set()

    # -- mutations ---------------------------------------------------------------------------

    def upsert(self, obj: C) -> None:
        uid = obj.uid
        key = (obj.namespace, obj.name)
        if uid in self._deleted:
            # Seen again (a relist raced a deletion): it is live after all.
            self._forget_deleted(uid)
        old = self._live.get(uid)
        if old is not None:
            self._unindex(old)
        self._live[uid] = obj
        self._live_by_name[key] = uid
        self._index(obj)
        for subscriber in self._subscribers:
            subscriber(obj)

    def subscribe(self, callback: Callable[[C], None]) -> None:
        """Call ``callback(obj)`` after every upsert (list items and watch events included)."""
        self._subscribers.append(callback)

    def forget(self, uid: str) -> None:
        """Drop an object at once, live or retained (its cache stopped caring about it)."""
        self.mark_deleted(uid)
        if uid in self._deleted:
            self._forget_deleted(uid)
        self._report()

    def scoped_feed(self, in_scope: Callable[[C], bool]) -> ScopedFeed[C]:
        """A reflector handler for the part of the collection ``in_scope`` selects: its SYNCED
        retires only live objects of that part (see ``ScopedFeed``)."""
        return ScopedFeed(self, in_scope)

    def mark_deleted(self, uid: str) -> None:
        """Move a live object to the deleted set; it expires ``delete_delay_s`` from now."""
        obj = self._live.pop(uid, None)
        if obj is None:
            return
        key = (obj.namespace, obj.name)
        if self._live_by_name.get(key) == uid:
            del self._live_by_name[key]
        self._unindex(obj)
        if self.delete_delay_s <= 0:
            return
        self._deleted[uid] = (obj, self._clock() + self.delete_delay_s)
        self._deleted_by_name[key] = uid

    def expire(self) -> int:
        """Drop deleted objects whose delay has passed; returns how many were dropped."""
        if not self._deleted:
            return 0
        now = self._clock()
        dropped = 0
        while self._deleted:
            uid, (_, expiry) = next(iter(self._deleted.items()))
            if expiry > now:
                break
            self._forget_deleted(uid)
            dropped += 1
        if dropped:
            self._report()
        return dropped

    def _forget_deleted(self, uid: str) -> None:
        obj, _ = self._deleted.pop(uid)
        key = (obj.namespace, obj.name)
        if self._deleted_by_name.get(key) == uid:
            del self._deleted_by_name[key]

    # -- lookups -----------------------------------------------------------------------------

    def get(self, uid: str) -> C | None:
        """The object with this UID, live or retained after deletion."""
        self.expire()
        obj = self._live.get(uid)
        if obj is not None:
            return obj
        entry = self._deleted.get(uid)
        return entry[0] if entry is not None else None

    def get_by_name(self, namespace: str | None, name: str) -> C | None:
        """The live object of that name, else the most recently deleted one."""
        self.expire()
        key = (namespace or "", name)
        uid = self._live_by_name.get(key)
        if uid is not None:
            return self._live[uid]
        uid = self._deleted_by_name.get(key)
        return self._deleted[uid][0] if uid is not None else None

    def is_deleted(self, uid: str) -> bool:
        """True when the UID is only known as a retained deletion."""
        self.expire()
        return uid in self._deleted

    def items(self) -> Iterator[C]:
        """Live objects."""
        return iter(list(self._live.values()))

    def all_items(self) -> Iterator[C]:
        """Live objects, then retained deletions."""
        return iter([*self._live.values(), *(obj for obj, _ in self._deleted.values())])

    def __len__(self) -> int:
        """Number of live objects (retained deletions are not counted; see ``retained``)."""
        return len(self._live)

    def __contains__(self, uid: object) -> bool:
        return uid in self._live or uid in self._deleted

    @property
    def retained(self) -> int:
        """Number of deleted objects still kept."""
        return len(self._deleted)

    # -- secondary indexes -------------------------------------------------------------------

    def add_index(self, name: str, indexer: Indexer[C]) -> None:
        """Maintain ``by_index(name, key)`` for live objects from now on (and index current ones)."""
        self._indexers[name] = indexer
        self._indexes[name] = {}
        for obj in self._live.values():
            self._index_one(name, indexer, obj)

    def by_index(self, name: str, key: Hashable) -> list[C]:
        """Live objects the named indexer put under ``key``."""
        bucket = self._indexes[name].get(key)
        return list(bucket.values()) if bucket else []

    def _index(self, obj: C) -> None:
        for name, indexer in self._indexers.items():
            self._index_one(name, indexer, obj)

    def _index_one(self, name: str, indexer: Indexer[C], obj: C) -> None:
        index = self._indexes[name]
        for key in indexer(obj):
            index.setdefault(key, {})[obj.uid] = obj

    def _unindex(self, obj: C) -> None:
        for name, indexer in self._indexers.items():
            index = self._indexes[name]
            for key in indexer(obj):
                bucket = index.get(key)
                if bucket is not None:
                    bucket.pop(obj.uid, None)
                    if not bucket:
                        del index[key]

    def _report(self) -> None:
        if self._gauge is not None:
            self._gauge.set(len(self._live) + len(self._deleted))


class ScopedFeed(Generic[C]):
    """Feeds one store from a reflector over part of a collection (e.g. one namespace's services).

    Several such feeds can share a store: each keeps its own list state, so a SYNCED marks
    deleted only the live objects of its own part that its list did not contain.
    """

    def __init__(self, store: ObjectStore[C], in_scope: Callable[[C], bool]) -> None:
        self._store = store
        self._in_scope = in_scope
        self._listing_rv: int | None = None
        self._listed: set[str] = set()

    async def handle(self, event: ReflectorEvent[C]) -> None:
        """A reflector handler."""
        store = self._store
        store.expire()
        kind, obj = event.type, event.obj
        if kind is EventType.LISTED and obj is not None:
            if event.rv != self._listing_rv:
                self._listing_rv = event.rv
                self._listed = set()
            self._listed.add(obj.uid)
            store.upsert(obj)
        elif kind is EventType.SYNCED:
            for live in [o for o in store.items() if self._in_scope(o) and o.uid not in self._listed]:
                store.mark_deleted(live.uid)
            self._listing_rv = None
            self._listed = set()
        else:
            store.apply(event)
            return
        store._report()

    def retire(self) -> None:
        """The feed stops: drop the live objects of its part at once."""
        for live in [o for o in self._store.items() if self._in_scope(o)]:
            self._store.forget(live.uid)
