"""Event recorders that write to the simulated API exactly as client-go's recorders do.

Two recorders, per spec §5 of docs/spec/kubernetes-api.md:

* ``LegacyRecorder`` — ``k8s.io/client-go/tools/record`` (core/v1): name
  ``<object>.<hex UnixNano>``; first occurrence POSTed with ``count: 1``; an identical repeat is
  a strategic-merge PATCH of ``count``/``lastTimestamp``/``message`` (``events_cache.go
  eventObserve``); a 404 on that PATCH falls back to a POST of the same event (``event.go
  recordEvent``); at 10 distinct messages for one source/object/type/reason within 600 s a new
  event ``(combined from similar events): <msg>`` is made (``EventAggregator``). The spam filter
  (token bucket, burst 25, one token per 300 s per source+object+type) is optional
  (``spam_filter=SpamFilter(...)``): client-go has it on, but it would silence most of a
  synthetic load, so the workload leaves it off unless asked.
* ``SeriesRecorder`` — ``k8s.io/client-go/tools/events`` (events.k8s.io/v1): the first
  occurrence is POSTed; the second *isomorphic* one (same type, action, reason,
  reportingController, reportingInstance, regarding, related — the note does not count) PATCHes
  ``series: {count: 2, lastObservedTime}``; later ones only bump an in-memory count that
  ``finishSeries`` (series idle for ``finish_after_s``) and ``refreshExistingEventSeries``
  (every ``refresh_every_s``) write, so ``series.count`` jumps. ``flush()`` (not in client-go)
  writes every pending count now, for tests and clean shutdowns.

Every successful write is noted in an ``EventLedger`` from the server's answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from kubestream.sim.storage.cluster import SimApiError
from kubestream.sim.storage.names import Clock, WallNanos, event_name, micro_time, rfc3339
from kubestream.sim.workload.event_ledger import EventLedger

log = logging.getLogger(__name__)

CORE_API = "core/v1"
EVENTS_API = "events.k8s.io/v1"
COMBINED_PREFIX = "(combined from similar events): "
_LRU_SIZE = 4096  # client-go maxLruCacheEntries


class EventApi(Protocol):
    """The part of ``SimCluster`` a recorder needs."""

    def create(
        self, plural: str, obj: dict[str, Any], *, group: str = "", version: str = "v1"
    ) -> dict[str, Any]: ...

    def patch(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        *,
        patch_type: Literal["strategic", "merge"] = "strategic",
        group: str = "",
        version: str = "v1",
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A ``core/v1 ObjectReference`` (``involvedObject`` / ``regarding`` / ``related``)."""

    kind: str
    name: str
    namespace: str = ""
    uid: str = ""
    api_version: str = "v1"
    resource_version: str = ""
    field_path: str = ""

    @classmethod
    def of(cls, obj: dict[str, Any], kind: str, api_version: str = "v1", field_path: str = "") -> ObjectRef:
        """A reference to a stored object (as client-go's ``reference.GetReference`` makes it)."""
        meta = obj.get("metadata", {})
        return cls(
            kind=kind,
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            uid=str(meta.get("uid", "")),
            api_version=api_version,
            resource_version=str(meta.get("resourceVersion", "")),
            field_path=field_path,
        )

    def at(self, field_path: str) -> ObjectRef:
        """The same object, pointing at a part of it, e.g. ``spec.containers{app}``."""
        return replace(self, field_path=field_path)

    def as_dict(self) -> dict[str, Any]:
        """JSON form; empty fields are omitted (``omitempty`` on every ObjectReference field)."""
        out = {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "apiVersion": self.api_version,
            "resourceVersion": self.resource_version,
            "fieldPath": self.field_path,
        }
        return {k: v for k, v in out.items() if v}

    @property
    def event_namespace(self) -> str:
        """Events about cluster-scoped objects live in ``default`` (client-go ``makeEvent``)."""
        return self.namespace or "default"


@dataclass(slots=True)
class RecorderStats:
    """What one recorder did."""

    occurrences: int = 0
    """Calls to ``event()``."""
    posts: int = 0
    patches: int = 0
    dropped: int = 0
    """Occurrences the spam filter swallowed."""
    failures: int = 0
    """Writes the API refused (other than the 404 handled by a POST)."""

    @property
    def writes(self) -> int:
        """POSTs plus PATCHes that succeeded."""
        return self.posts + self.patches


class Recorder(Protocol):
    """What the workload calls; both recorders fit."""

    api: str
    stats: RecorderStats

    def event(
        self,
        regarding: ObjectRef,
        type_: str,
        reason: str,
        message: str,
        *,
        action: str = "",
        related: ObjectRef | None = None,
    ) -> dict[str, Any] | None: ...

    def tick(self) -> int: ...

    def flush(self) -> int: ...


def _is_not_found(exc: SimApiError) -> bool:
    return exc.code == 404


class SpamFilter:
    """client-go ``EventSourceObjectSpamFilter``: a token bucket per source+object+type."""

    def __init__(self, burst: int = 25, refill_every_s: float = 300.0, clock: Clock = time.time) -> None:
        self._burst = burst
        self._refill_every_s = refill_every_s
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, ...], tuple[float, float]] = OrderedDict()

    def allow(self, key: tuple[str, ...]) -> bool:
        """Take a token for ``key`` if one is left."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - last) / self._refill_every_s)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > _LRU_SIZE:
            self._buckets.popitem(last=False)
        return allowed


@dataclass(slots=True)
class _Observation:
    count: int
    first_timestamp: str
    name: str


@dataclass(slots=True)
class _Similar:
    messages: OrderedDict[str, None] = field(default_factory=OrderedDict)
    last_seen: float = 0.0


def _lru_put(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _LRU_SIZE:
        cache.popitem(last=False)


class LegacyRecorder:
    """core/v1 events as ``tools/record`` writes them (see the module docstring)."""

    api = CORE_API

    def __init__(
        self,
        cluster: EventApi,
        *,
        component: str,
        host: str = "",
        ledger: EventLedger | None = None,
        clock: Clock = time.time,
        nanos: Callable[[], int] | None = None,
        reporting_fields: bool = True,
        spam_filter: SpamFilter | None = None,
        max_similar: int = 10,
        similar_window_s: float = 600.0,
    ) -> None:
        self._cluster = cluster
        self.component = component
        self.host = host
        self._ledger = ledger
        self._clock = clock
        self._nanos = nanos or WallNanos(clock)
        # Newer client-go fills reportingComponent/Instance from the source; older ones left
        # them "" (the fields have no omitempty, so "" is what a reader then sees).
        self._reporting = (component, host) if reporting_fields else ("", "")
        self._spam = spam_filter
        self._max_similar = max_similar
        self._similar_window_s = similar_window_s
        self._similar: OrderedDict[tuple[str, ...], _Similar] = OrderedDict()
        self._observed: OrderedDict[tuple[str, ...], _Observation] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = RecorderStats()

    def _object_key(self, ref: ObjectRef, type_: str, reason: str) -> tuple[str, ...]:
        return (self.component, self.host, ref.kind, ref.namespace, ref.name, ref.uid, ref.api_version,
                type_, reason, *self._reporting)

    def _aggregate(self, ref: ObjectRef, type_: str, reason: str, message: str) -> tuple[ObjectRef, str, tuple[str, ...]]:
        """``EventAggregate``: the (ref, message, cache key) to observe for this occurrence."""
        now = self._clock()
        agg_key = self._object_key(ref, type_, reason)
        record = self._similar.get(agg_key)
        if record is None or now - record.last_seen > self._similar_window_s:
            record = _Similar()
        record.messages[message] = None
        record.last_seen = now
        _lru_put(self._similar, agg_key, record)
        event_key = (*agg_key, ref.field_path, message)
        if len(record.messages) < self._max_similar:
            return ref, message, event_key
        # Keep the set at max-1 so every further distinct message is combined too. client-go pops
        # an arbitrary member; the oldest keeps this deterministic.
        record.messages.popitem(last=False)
        # EventAggregate copies the triggering event's involvedObject (fieldPath included).
        return ref, COMBINED_PREFIX + message, agg_key

    def event(
        self,
        regarding: ObjectRef,
        type_: str,
        reason: str,
        message: str,
        *,
        action: str = "",
        related: ObjectRef | None = None,
    ) -> dict[str, Any] | None:
        """Record one occurrence; returns the object the API holds now (None if not written)."""
        with self._lock:
            self.stats.occurrences += 1
            ref, message, key = self._aggregate(regarding, type_, reason, message)
            now = rfc3339(self._clock())
            seen = self._observed.get(key)
            if seen is None:
                seen = _Observation(1, now, event_name(ref.name, self._nanos()))
            else:
                seen = _Observation(seen.count + 1, seen.first_timestamp, seen.name)
            # eventObserve records the observation before the write, even if the spam filter
            # then drops it: a later repeat's count then jumps, as in client-go.
            _lru_put(self._observed, key, seen)
            if self._spam is not None and not self._spam.allow(
                (self.component, self.host, ref.kind, ref.namespace, ref.name, ref.uid, ref.api_version, type_)
            ):
                self.stats.dropped += 1
                return None
            body = self._body(ref, type_, reason, message, seen, now)
            return self._write(body, patch=seen.count > 1)

    def _body(self, ref: ObjectRef, type_: str, reason: str, message: str, seen: _Observation,
              now: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": seen.name, "namespace": ref.event_namespace},
            "involvedObject": ref.as_dict(),
            "reason": reason,
            "message": message,
            "source": {"component": self.component, "host": self.host} if self.host
            else {"component": self.component},
            "firstTimestamp": seen.first_timestamp,
            "lastTimestamp": now,
            "count": seen.count,
            "type": type_,
            "eventTime": None,
            "reportingComponent": self._reporting[0],
            "reportingInstance": self._reporting[1],
        }

    def _write(self, body: dict[str, Any], *, patch: bool) -> dict[str, Any] | None:
        meta = body["metadata"]
        try:
            if patch:
                try:
                    written = self._cluster.patch(
                        "events", meta["namespace"], meta["name"],
                        {"count": body["count"], "lastTimestamp": body["lastTimestamp"],
                         "message": body["message"]},
                        patch_type="strategic",
                    )
                    self.stats.patches += 1
                    return self._note(written)
                except SimApiError as exc:
                    if not _is_not_found(exc):
                        raise
                    # The event expired (TTL) or was deleted: create it again, same name and count.
            written = self._cluster.create("events", body)
            self.stats.posts += 1
            return self._note(written)
        except SimApiError as exc:
            self.stats.failures += 1
            log.warning("event %s/%s not written: %s", meta["namespace"], meta["name"], exc)
            return None

    def _note(self, written: dict[str, Any]) -> dict[str, Any]:
        if self._ledger is not None:
            self._ledger.record(written, CORE_API)
        return written

    def tick(self) -> int:
        """Nothing periodic in the legacy recorder."""
        return 0

    def flush(self) -> int:
        """Nothing pending in the legacy recorder: every occurrence is written at once."""
        return 0


@dataclass(slots=True)
class _Series:
    body: dict[str, Any]
    """The event as last written (events.k8s.io field names)."""
    count: int
    """Occurrences observed: 1 until the series starts, then ``series.count``."""
    written: int
    """``series.count`` (or 1) the API holds."""
    last_observed: float


class SeriesRecorder:
    """events.k8s.io/v1 events as ``tools/events`` writes them (see the module docstring)."""

    api = EVENTS_API

    def __init__(
        self,
        cluster: EventApi,
        *,
        controller: str,
        instance: str | None = None,
        host: str = "",
        ledger: EventLedger | None = None,
        clock: Clock = time.time,
        nanos: Callable[[], int] | None = None,
        finish_after_s: float = 360.0,
        refresh_every_s: float = 1800.0,
    ) -> None:
        self._cluster = cluster
        self.controller = controller
        # tools/events NewEventRecorder: reportingInstance = <controller>-<hostname>.
        self.instance = instance if instance is not None else f"{controller}-{host}" if host else controller
        self._ledger = ledger
        self._clock = clock
        self._nanos = nanos or WallNanos(clock)
        self._finish_after_s = finish_after_s
        self._refresh_every_s = refresh_every_s
        start = clock()
        self._next_finish = start + finish_after_s
        self._next_refresh = start + refresh_every_s
        self._cache: dict[tuple[str, ...], _Series] = {}
        self._lock = threading.Lock()
        self.stats = RecorderStats()

    def _key(self, regarding: ObjectRef, related: ObjectRef | None, type_: str, reason: str,
             action: str) -> tuple[str, ...]:
        """``getKey``: everything but the note (so one series spans notes that differ)."""
        rel = related.as_dict() if related else {}
        return (type_, action, reason, self.controller, self.instance,
                *(str(v) for v in sorted(regarding.as_dict().items())), *(str(v) for v in sorted(rel.items())))

    def event(
        self,
        regarding: ObjectRef,
        type_: str,
        reason: str,
        message: str,
        *,
        action: str = "",
        related: ObjectRef | None = None,
    ) -> dict[str, Any] | None:
        """Record one occurrence; returns what the API holds now, or None if only counted."""
        action = action or reason
        now = self._clock()
        with self._lock:
            self.stats.occurrences += 1
            key = self._key(regarding, related, type_, reason, action)
            cached = self._cache.get(key)
            if cached is None:
                body = self._body(regarding, related, type_, reason, action, message, now)
                self._cache[key] = _Series(body, 1, 0, now)
                return self._write(self._cache[key])
            cached.count += 1
            cached.last_observed = now
            if cached.count == 2:
                return self._write(cached)
            return None

    def _body(self, regarding: ObjectRef, related: ObjectRef | None, type_: str, reason: str,
              action: str, note: str, now: float) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": event_name(regarding.name, self._nanos()),
                         "namespace": regarding.event_namespace},
            "eventTime": micro_time(now),
            "reportingController": self.controller,
            "reportingInstance": self.instance,
            "action": action,
            "reason": reason,
            "regarding": regarding.as_dict(),
            "note": note[:1024],
            "type": type_,
        }
        if related is not None:
            body["related"] = related.as_dict()
        return body

    def _write(self, series: _Series) -> dict[str, Any] | None:
        """``recordEvent``: PATCH the series if there is one (404 → POST), else POST."""
        body = series.body
        meta = body["metadata"]
        count = series.count
        try:
            if count > 1:
                body["series"] = {"count": count, "lastObservedTime": micro_time(series.last_observed)}
                try:
                    written = self._cluster.patch(
                        "events", meta["namespace"], meta["name"], {"series": body["series"]},
                        patch_type="strategic", group="events.k8s.io",
                    )
                    self.stats.patches += 1
                    return self._note(series, written, count)
                except SimApiError as exc:
                    if not _is_not_found(exc):
                        raise
            written = self._cluster.create("events", body, group="events.k8s.io")
            self.stats.posts += 1
            return self._note(series, written, count)
        except SimApiError as exc:
            self.stats.failures += 1
            log.warning("event %s/%s not written: %s", meta["namespace"], meta["name"], exc)
            return None

    def _note(self, series: _Series, written: dict[str, Any], count: int) -> dict[str, Any]:
        series.written = max(series.written, count)
        if self._ledger is not None:
            self._ledger.record(written, EVENTS_API)
        return written

    def tick(self) -> int:
        """Run ``finishSeries``/``refreshExistingEventSeries`` if their period has come."""
        writes = 0
        now = self._clock()
        with self._lock:
            if now >= self._next_finish:
                self._next_finish = now + self._finish_after_s
                writes += self._finish_series(now)
            if now >= self._next_refresh:
                self._next_refresh = now + self._refresh_every_s
                for series in self._cache.values():
                    if series.count > 1 and self._write(series) is not None:
                        writes += 1
        return writes

    def _finish_series(self, now: float) -> int:
        writes = 0
        for key, series in list(self._cache.items()):
            if series.count > 1:
                if series.last_observed < now - self._finish_after_s:
                    # The final count is written and the series ends: the next occurrence starts
                    # a new event object.
                    if self._write(series) is not None:
                        writes += 1
                    del self._cache[key]
            elif series.last_observed < now - self._finish_after_s:
                del self._cache[key]
        return writes

    def flush(self) -> int:
        """Write every series whose in-memory count is ahead of the API. Returns writes."""
        writes = 0
        with self._lock:
            for series in self._cache.values():
                if series.count > 1 and series.count > series.written and self._write(series) is not None:
                    writes += 1
        return writes

    def pending(self) -> int:
        """Occurrences counted in memory but not yet written."""
        with self._lock:
            return sum(max(0, s.count - s.written) for s in self._cache.values())
