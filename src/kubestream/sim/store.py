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

    def __init__(self, name: str) -> None:
        self.name = name
        self.objects: dict[str, Obj] = {}
        self._sorted: list[str] | None = None
        self._changes: list[Change] = []
        self._rvs: list[int] = []
        self._start = 0
        self.compacted_rv = 0
        """Watching from this RV or later is possible; older is 'too old' (spec §2)."""

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
        self.compacted_rv = max(self.compacted_rv, self._rvs[self._start - 1])
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
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lock = threading.RLock()
        self.rv = 1
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
                b = self._buckets.setdefault(name, Bucket(name))
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
        drop = 0
        n = b.retained()
        while n - drop > self._history_max_events or (
            n - drop > self._history_min_events and now - b.at(drop).at > self._history_min_s
        ):
            drop += 1
        b.drop_through(drop)

    def compact(self, rv: int | None = None) -> int:
        """Forget history at or below ``rv`` (default: now) in every store; returns the RV."""
        with self.lock:
            target = self.rv if rv is None else min(rv, self.rv)
            for b in self._buckets.values():
                drop = sum(1 for c in b.history() if c.rv <= target)
                b.drop_through(drop)
                b.compacted_rv = max(b.compacted_rv, target)
            return target

    def changes_since(self, bucket_name: str, rv: int) -> tuple[list[Change], int]:
        """Changes after ``rv`` and the revision the caller is now up to date with."""
        with self.lock:
            b = self.bucket(bucket_name)
            if rv < b.compacted_rv:
                raise HistoryExpired(rv, b.compacted_rv)
            return b.changes_after(rv), self.rv

    def snapshot(self, bucket_name: str, rv: int | None) -> tuple[dict[str, Obj], list[str] | None, int]:
        """The objects at revision ``rv`` (None: now), sorted keys if cheaply known, and the RV."""
        with self.lock:
            b = self.bucket(bucket_name)
            if rv is None or rv >= self.rv:
                return dict(b.objects), list(b.sorted_keys()), self.rv
            if rv < b.compacted_rv:
                raise HistoryExpired(rv, b.compacted_rv)
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
