"""The storage layer: one etcd-like revision counter for every kind (spec §3), objects per store
kept in etcd key order, and a bounded change history per store that serves watches, exact
lists and continue tokens the way kube-apiserver's watch cache and etcd do (spec §1-§2)."""

from __future__ import annotations

import base64
import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"

Obj = dict[str, Any]


class HistoryExpired(Exception):
    """The requested revision is older than the retained history (etcd compaction / cache window)."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(slots=True)
class Change:
    """One committed write: the watch event a store emits."""

    rv: int
    type: str
    key: str
    obj: Obj
    """The object after the write; for DELETED the last object re-stamped with the deletion RV."""
    prev: Obj | None
    at: float
    encoded: dict[Any, bytes] = field(default_factory=dict)
    """Per-view cache of the serialised watch line, shared by all watchers of this change."""


def object_key(obj: Obj) -> str:
    """The etcd key after the resource prefix: ``<namespace>/<name>`` or ``<name>``."""
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else str(meta["name"])


def restamp(obj: Obj, rv: int) -> Obj:
    """A copy of ``obj`` carrying ``rv`` (spec §3: DELETED carries the old object, new revision)."""
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}


class Bucket:
    """The objects and change history of one store (e.g. ``pods``; both Event APIs share one)."""

    def __init__(self, name: str, start_rv: int = 0, *, cached: bool = True) -> None:
        self.name = name
        self.cached = cached
        """False for stores without a watch cache (Events): history is kept until compaction,
        not for a time window."""
        self.objects: dict[str, Obj] = {}
        self._sorted: list[str] | None = None
        self._changes: list[Change] = []
        self._rvs: list[int] = []
        self._start = 0
        self.compacted_rv = start_rv
        """New watches and exact reads from an older RV are 'too old' (compaction, or a watch
        cache that started later; spec §2)."""
        self.trimmed_rv = start_rv
        """Changes at or below this RV are physically gone; even an open watch cannot read them."""

    @property
    def floor_rv(self) -> int:
        """The oldest RV a new watch or exact read may start from."""
        return max(self.compacted_rv, self.trimmed_rv)

    def sorted_keys(self) -> list[str]:
        """Live keys in etcd (byte) order, cached until an add or delete."""
        if self._sorted is None:
            self._sorted = sorted(self.objects)
        return self._sorted

    def history(self) -> list[Change]:
        """The retained changes, oldest first."""
        return self._changes[self._start:]

    def append(self, change: Change) -> None:
        self._changes.append(change)
        self._rvs.append(change.rv)

    def changes_after(self, rv: int) -> list[Change]:
        """Retained changes with revision > rv."""
        i = bisect.bisect_right(self._rvs, rv, lo=self._start)
        return self._changes[i:]

    def drop_through(self, count: int) -> None:
        """Forget the ``count`` oldest retained changes."""
        if count <= 0:
            return
        self._start += count
        self.trimmed_rv = max(self.trimmed_rv, self._rvs[self._start - 1])
        # Physically shrink only now and then so dropping stays O(1) amortised.
        if self._start > 4096 and self._start * 2 > len(self._changes):
            del self._changes[: self._start]
            del self._rvs[: self._start]
            self._start = 0

    def retained(self) -> int:
        """How many changes are retained."""
        return len(self._changes) - self._start

    def at(self, index: int) -> Change:
        """The ``index``-th retained change, oldest first."""
        return self._changes[self._start + index]

    def oldest(self) -> Change | None:
        """The oldest retained change."""
        return self._changes[self._start] if self.retained() else None


Listener = Callable[[], None]


class Store:
    """Thread-safe object store with a single global revision.

    Callers hold ``lock`` around read-modify-write sequences and call ``commit`` inside it;
    listeners are told after the lock is released so watchers never run under it.
    """

    def __init__(self, *, history_min_s: float, history_min_events: int, history_max_events: int,
                 clock: Callable[[], float] = time.monotonic, start_rv: int = 1,
                 uncached: frozenset[str] = frozenset()) -> None:
        self.lock = threading.RLock()
        self.rv = start_rv
        # A server on an empty etcd has every revision; one started at a later revision has a
        # watch cache that begins there (spec §2).
        self._start_rv = start_rv if start_rv > 1 else 0
        self._uncached = uncached
        self._compacted = {True: 0, False: 0}
        """The last compaction RV of cached and uncached stores, for buckets created later."""
        self._watchers: dict[int, tuple[str, int]] = {}
        """Open watches: handle → (bucket, RV read up to). Compaction keeps what they still need."""
        self._next_watcher = 0
        self._buckets: dict[str, Bucket] = {}
        self._listeners: list[Listener] = []
        self._history_min_s = history_min_s
        self._history_min_events = history_min_events
        self._history_max_events = history_max_events
        self._clock = clock

    def bucket(self, name: str) -> Bucket:
        """The bucket of a store name, created on first use."""
        b = self._buckets.get(name)
        if b is None:
            with self.lock:
                cached = name not in self._uncached
                b = self._buckets.setdefault(name, Bucket(name, self._start_rv, cached=cached))
                b.compacted_rv = max(b.compacted_rv, self._compacted[cached])
        return b

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener()`` (from the writing thread) after every commit."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop notifying ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def commit(self, bucket_name: str, type_: str, key: str, obj: Obj | None) -> Change:
        """Write one object (``obj`` is owned by the store from now on and stamped with the new
        revision) or delete ``key`` (``obj`` None). Must be called with ``lock`` held."""
        b = self.bucket(bucket_name)
        self.rv += 1
        rv = self.rv
        prev = b.objects.get(key)
        if type_ == DELETED:
            if prev is None:
                raise KeyError(key)
            stored = restamp(prev, rv)
            del b.objects[key]
            b._sorted = None
        else:
            assert obj is not None
            obj["metadata"]["resourceVersion"] = str(rv)
            stored = obj
            if prev is None:
                b._sorted = None
            b.objects[key] = obj
        change = Change(rv, type_, key, stored, prev, self._clock())
        b.append(change)
        self._trim(b, change.at)
        return change

    def notify(self) -> None:
        """Tell listeners that something was committed (call after releasing ``lock``)."""
        for listener in list(self._listeners):
            listener()

    def _trim(self, b: Bucket, now: float) -> None:
        # spec §2: keep >= history_min_s of events, bounded by [min, max] events, like the cacher.
        # etcd (uncached stores) keeps everything until compaction: only the memory cap applies.
        drop = 0
        n = b.retained()
        while n - drop > self._history_max_events or (
            b.cached and n - drop > self._history_min_events and now - b.at(drop).at > self._history_min_s
        ):
            drop += 1
        b.drop_through(drop)

    def compact(self, rv: int | None = None, *, uncached_only: bool = False) -> int:
        """Compact at ``rv`` (default: now) in every store (or only in stores without a watch
        cache); returns the RV. New watches and exact reads from older RVs get 410; watches
        already open go on, as etcd's synced watchers and the watch cache's do."""
        with self.lock:
            target = self.rv if rv is None else min(rv, self.rv)
            for cached in (False,) if uncached_only else (False, True):
                self._compacted[cached] = max(self._compacted[cached], target)
            for b in self._buckets.values():
                if uncached_only and b.cached:
                    continue
                b.compacted_rv = max(b.compacted_rv, target)
                keep_from = min([target, *(at for name, at in self._watchers.values() if name == b.name)])
                b.drop_through(sum(1 for c in b.history() if c.rv <= keep_from))
            return target

    def open_watcher(self, bucket_name: str, rv: int) -> int:
        """Register an open watch that has seen everything up to ``rv``; returns its handle."""
        with self.lock:
            self._next_watcher += 1
            self._watchers[self._next_watcher] = (bucket_name, rv)
            return self._next_watcher

    def close_watcher(self, handle: int) -> None:
        """Forget an open watch."""
        with self.lock:
            self._watchers.pop(handle, None)

    def changes_since(self, bucket_name: str, rv: int, *, watcher: int | None = None) -> tuple[list[Change], int]:
        """Changes after ``rv`` and the revision the caller is now up to date with. ``watcher``: the
        handle of an open watch reading on; compaction does not end it (etcd's synced watchers and
        the watch cache's go on), only history trimmed under it does."""
        with self.lock:
            b = self.bucket(bucket_name)
            floor = b.trimmed_rv if watcher is not None else b.floor_rv
            if rv < floor:
                raise HistoryExpired(rv, floor)
            if watcher is not None:
                self._watchers[watcher] = (bucket_name, max(rv, self.rv))
            return b.changes_after(rv), self.rv

    def snapshot(self, bucket_name: str, rv: int | None) -> tuple[dict[str, Obj], list[str] | None, int]:
        """The objects at revision ``rv`` (None: now), sorted keys if cheaply known, and the RV."""
        with self.lock:
            b = self.bucket(bucket_name)
            if rv is None or rv >= self.rv:
                return dict(b.objects), list(b.sorted_keys()), self.rv
            if rv < b.floor_rv:
                raise HistoryExpired(rv, b.floor_rv)
            later = b.changes_after(rv)
            if not later:
                return dict(b.objects), list(b.sorted_keys()), rv
            objects = dict(b.objects)
            for change in reversed(later):  # roll newer writes back (etcd MVCC read at rv)
                if change.prev is None:
                    objects.pop(change.key, None)
                else:
                    objects[change.key] = change.prev
            return objects, None, rv


# ---------------------------------------------------------------------------------------------
# Continue tokens (spec §1; apiserver pkg/storage/continue.go)
# ---------------------------------------------------------------------------------------------

TOKEN_VERSION = "meta.k8s.io/v1"


class InvalidToken(ValueError):
    """A continue token that cannot be decoded; the message follows continue.go."""


def encode_continue(start_after_key: str, rv: int) -> str:
    """RawURL base64 of ``{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\\u0000"}``."""
    raw = orjson.dumps({"v": TOKEN_VERSION, "rv": rv, "start": start_after_key + "\x00"})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[str, int]:
    """The start key (inclusive) and RV of a token; InvalidToken on any defect."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise InvalidToken(f"continue key is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidToken("continue key is not valid: not an object")
    if data.get("v") != TOKEN_VERSION:
        raise InvalidToken(f'continue key is not valid: server does not recognize this encoded version "{data.get("v")}"')
    rv = data.get("rv")
    if not isinstance(rv, int) or rv == 0:
        raise InvalidToken(f"continue key is not valid: incorrect encoded start resourceVersion (version {TOKEN_VERSION})")
    start = data.get("start")
    if not isinstance(start, str) or not start:
        raise InvalidToken("continue key is not valid: encoded start key empty")
    if start.startswith(("/", "../")) or "/../" in start:
        raise InvalidToken("continue key is not valid: path traversal attempt detected")
    return start, rv
