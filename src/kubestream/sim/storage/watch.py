"""The WATCH stream (spec §2): synthetic ADDED for RV unset/0, changes after RV=N, streaming lists
with the initial-events-end bookmark, periodic and pre-deadline BOOKMARKs, in-stream ERROR 410,
and selector transitions turned into ADDED/DELETED like the cacher does."""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kubestream.sim.storage import status as st
from kubestream.sim.storage.cluster import SimCluster
from kubestream.sim.storage.keyspace import (
    ADDED,
    DELETED,
    MODIFIED,
    Change,
    HistoryExpired,
    Obj,
    Store,
    restamp,
)
from kubestream.sim.storage.kinds import empty_object
from kubestream.sim.storage.resources import ResourceType
from kubestream.sim.storage.selectors import Filter
from kubestream.sim.versions import KubeVersion

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
LIST_BLUEPRINT = "kubernetes.io/initial-events-list-blueprint"
_BATCH = 1000  # initial ADDED events per chunk: few syscalls, still incremental


class WatchHub:
    """Wakes watchers on the server loop when any thread commits to the store.

    Commits happen on the server loop (HTTP writes) and on other threads (workload, timers); one
    ``call_soon_threadsafe`` per burst of commits is enough, so wake-ups are coalesced.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, store: Store) -> None:
        self._loop = loop
        self._store = store
        self._changed = asyncio.Event()
        self._pending = False
        store.add_listener(self._on_commit)

    def close(self) -> None:
        """Stop listening to the store."""
        self._store.remove_listener(self._on_commit)

    @property
    def changed(self) -> asyncio.Event:
        """Set at the next commit after this property was read (grab it before reading data)."""
        return self._changed

    def _on_commit(self) -> None:
        if self._pending:
            return
        self._pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # loop closed during shutdown
            self._pending = False

    def _wake(self) -> None:
        self._pending = False
        fired, self._changed = self._changed, asyncio.Event()
        fired.set()


@dataclass(slots=True)
class WatchParams:
    """A validated watch request."""

    rtype: ResourceType
    flt: Filter
    rv: int | None
    """None when resourceVersion is unset; 0 for "0"."""
    send_initial_events: bool = False
    allow_bookmarks: bool = False
    timeout_s: float | None = None
    force_expired: bool = False
    """Fault injection: answer with an in-stream ERROR 410 at once."""
    error: dict[str, Any] | None = None
    """A Status to send as the only, in-stream ERROR event (e.g. a streaming list's 504)."""


TableFn = Callable[[list[Obj], bool], dict[str, Any]]


def default_timeout(min_request_timeout_s: float) -> float:
    """spec §2: random in [minRequestTimeout, 2 x minRequestTimeout] (handlers/get.go)."""
    return min_request_timeout_s * (1 + random.random())


def expired_status(rtype: ResourceType, requested: int, oldest: int) -> dict[str, Any]:
    """The 410 of a watch from a too-old RV: the watch cache's text, or etcd's for uncached
    resources (spec §2: watch_cache_history.go vs etcd3/errors.go interpretWatchError)."""
    if rtype.watch_cached:
        return st.expired(f"too old resource version: {requested} ({oldest})").status
    return st.expired(st.WATCH_EXPIRED).status


def list_blueprint(rtype: ResourceType) -> str:
    """The 1.32 blueprint annotation: base64 of the empty list JSON plus newline (spec §2)."""
    raw = orjson.dumps({"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": {}, "items": None})
    return base64.b64encode(raw + b"\n").decode()


class WatchSession:
    """One watch: call ``start()`` (synchronous, cannot fail after the HTTP 200), then iterate
    ``chunks()``; each chunk holds whole NDJSON lines."""

    def __init__(self, cluster: SimCluster, hub: WatchHub, params: WatchParams, *,
                 bookmark_interval_s: float, table: TableFn | None = None,
                 version: KubeVersion | None = None) -> None:
        self._cluster = cluster
        self._hub = hub
        self._p = params
        self._bookmark_interval = bookmark_interval_s
        self._version = version or cluster.config.version
        self._watcher: int | None = None
        self._table = table
        self._first_table = True
        self._initial: list[Obj] = []
        self._cursor = 0
        self._error: dict[str, Any] | None = None
        self.closed = asyncio.Event()
        """Set to stop the stream early (fault injection)."""

    def start(self) -> None:
        """Take the initial snapshot or check the start RV, atomically with the cursor."""
        p = self._p
        store = self._cluster.store
        if p.error is not None:
            self._error = p.error
            return
        if p.force_expired:
            self._error = expired_status(p.rtype, p.rv or store.rv, store.rv)
            return
        with store.lock:  # the snapshot or RV check and the watcher registration are one step
            if p.rv is None or p.rv == 0 or p.send_initial_events:
                # RV unset/"0": synthetic ADDED for the current state, then changes after it (spec §2).
                objects, keys, rv = store.snapshot(p.rtype.store_name, None)
                order = keys if keys is not None else sorted(objects)
                self._initial = [o for o in (objects[k] for k in order) if p.flt.matches(o)]
                self._cursor = rv
            else:
                try:
                    store.changes_since(p.rtype.store_name, p.rv)
                except HistoryExpired as exc:
                    # spec §2: accepted watch, expired RV → 200 + ERROR 410 (cacher.go newErrWatcher).
                    self._error = expired_status(p.rtype, exc.requested, exc.oldest)
                    return
                # A too-new RV is no error on a plain watch: it waits for the store to get there.
                self._cursor = p.rv
            self._watcher = store.open_watcher(p.rtype.store_name, self._cursor)

    def release(self) -> None:
        """Unregister from the store (idempotent); compaction may then drop what it needed."""
        if self._watcher is not None:
            self._cluster.store.close_watcher(self._watcher)
            self._watcher = None

    def _line(self, type_: str, obj: Obj) -> bytes:
        if self._table is not None:
            obj = self._table([obj], self._first_table)
            self._first_table = False
        return orjson.dumps({"type": type_, "object": obj}) + b"\n"

    def _encode_change(self, type_: str, change: Change, obj: Obj) -> bytes:
        if self._table is not None or obj is not change.obj:
            return self._line(type_, self._cluster.view(self._p.rtype, obj))
        key = (self._p.rtype.group, type_)
        cached = change.encoded.get(key)
        if cached is None:
            cached = change.encoded[key] = self._line(type_, self._cluster.view(self._p.rtype, obj))
        return cached

    def _convert(self, change: Change) -> bytes | None:
        flt = self._p.flt
        if change.type == DELETED:
            return self._encode_change(DELETED, change, change.obj) if flt.matches(change.obj) else None
        now_ok = flt.matches(change.obj)
        was_ok = change.type == MODIFIED and change.prev is not None and flt.matches(change.prev)
        if now_ok:
            return self._encode_change(MODIFIED if was_ok else ADDED, change, change.obj)
        if was_ok and change.prev is not None:
            # Leaving the selector: DELETED with the old object at the new RV (cache_watcher.go).
            return self._encode_change(DELETED, change, restamp(change.prev, change.rv))
        return None

    def _bookmark(self, rv: int, annotations: dict[str, str] | None = None) -> bytes:
        obj = empty_object(self._p.rtype, rv, annotations, zero_time_as_null=self._version.zero_time_as_null)
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    def _end_bookmark(self) -> bytes:
        annotations = {INITIAL_EVENTS_END: "true"}
        if self._version.list_blueprint:  # spec §2: 1.32 only
            annotations[LIST_BLUEPRINT] = list_blueprint(self._p.rtype)
        return self._bookmark(self._cursor, annotations)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The stream body, chunk by chunk; ends at the deadline or when closed."""
        try:
            async for chunk in self._chunks():
                yield chunk
        finally:
            self.release()

    async def _chunks(self) -> AsyncIterator[bytes]:
        p = self._p
        if self._error is not None:
            yield orjson.dumps({"type": "ERROR", "object": self._error}) + b"\n"
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (p.timeout_s if p.timeout_s else default_timeout(
            self._cluster.config.min_request_timeout_s))
        for i in range(0, len(self._initial), _BATCH):
            yield b"".join(self._line(ADDED, self._cluster.view(p.rtype, o)) for o in self._initial[i:i + _BATCH])
        self._initial = []
        if p.send_initial_events and p.allow_bookmarks:
            # spec §2: the end bookmark only when bookmarks are allowed (setInitialEventsEndBookmarkIfRequested).
            yield self._end_bookmark()
        next_bookmark = self._next_bookmark(loop.time(), deadline)
        while not self.closed.is_set():
            changed = self._hub.changed
            try:
                changes, upto = self._cluster.store.changes_since(p.rtype.store_name, self._cursor,
                                                                   watcher=self._watcher)
            except HistoryExpired:
                return  # fell out of the window: the cacher drops such a watcher; the client re-watches
            lines = [line for line in map(self._convert, changes) if line is not None]
            self._cursor = max(self._cursor, upto)  # a watch from a too-new RV stays there
            if lines:
                yield b"".join(lines)
            now = loop.time()
            if now >= deadline:
                return
            if next_bookmark is not None and now >= next_bookmark:
                if self._cursor <= upto:  # never a bookmark past what the store has reached
                    yield self._bookmark(self._cursor)
                next_bookmark = self._next_bookmark(now, deadline)
            wake_at = min(deadline, next_bookmark) if next_bookmark is not None else deadline
            await _wait_any(changed, self.closed, wake_at - loop.time())

    def _next_bookmark(self, now: float, deadline: float) -> float | None:
        if not self._p.allow_bookmarks or not self._p.rtype.watch_cached:
            # Bookmarks come from the watch cache; etcd watches of uncached resources (Events)
            # ask etcd for no progress notifications, so they get none (spec §2).
            return None
        # spec §2: about every bookmark interval, and ~2 s before the deadline (nextBookmarkTime).
        when = now + self._bookmark_interval
        pre_deadline = deadline - 2.0
        if pre_deadline < when:
            when = pre_deadline
        return when if when > now else None


async def _wait_any(a: asyncio.Event, b: asyncio.Event, wait_s: float) -> None:
    if a.is_set() or b.is_set() or wait_s <= 0:
        return
    waiters = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
