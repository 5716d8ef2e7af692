"""The Events source: one output record per observed occurrence change, exactly once.

How exactly-once holds (see also docs/schema.md, "Counting"):

- An event uid's *occurrences* are ``series.count``, else ``count``, else 1. The source keeps a
  watermark per uid of the occurrences already handed on; a list item or watch event with more
  occurrences yields one record carrying ``count_delta`` = the difference. Relists, replays of
  a resumed watch and TTL deletions therefore never count twice.
- The watermark is persisted only through the record's checkpoint, which the pipeline applies in
  the transaction registering the batch: after a crash the source reloads what was committed
  and re-exports exactly what was not.
- The watch resumes from the last committed watch RV; a 410 falls back to a relist, and the
  per-uid table makes either path export every still-retained occurrence once.
- When the server's resourceVersion goes backwards (RESET from the reflector: an etcd restore),
  the per-uid table still decides (uids are unique across worlds), but RVs of the old history
  are forgotten: the relist that follows is the whole truth, and the saved position moves back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from kubestream.config.durations import parse_since
from kubestream.config.settings import Settings
from kubestream.kube.reflector import EventType, Reflector, ReflectorEvent, ResourceRef
from kubestream.model import Record, RecordSink
from kubestream.obs.metrics import Metrics
from kubestream.sources.event_decode import (
    EVENTS_V1,
    DecodedEvent,
    decode_event,
    epoch_to_rfc3339,
    rfc3339_to_epoch,
)
from kubestream.sources.event_filters import EventFilter
from kubestream.sources.event_metrics import EventCounter
from kubestream.sources.event_state import EventCheckpoint, EventState, Watermark
from kubestream.state.store import StateStore

if TYPE_CHECKING:
    from kubestream.kube.client import KubeClient

log = logging.getLogger(__name__)

SOURCE = "events"
ENRICHER_WAIT_S = 30.0
"""How long the first records wait for the enricher's caches before going out marked."""


class ObjectEnricher(Protocol):
    """What the source needs of ``kubestream.enrich.Enricher`` (a sibling layer it may not import)."""

    @property
    def synced(self) -> asyncio.Event: ...

    def for_object(
        self, kind: str, namespace: str, name: str, uid: str, *, field_path: str | None = None
    ) -> dict[str, Any]: ...


class EventsSource:
    """Watches Events and hands one record per occurrence change to ``out``.

    ``handle`` is the reflector's handler; ``run`` wires a reflector to it and runs until
    cancelled. ``synced`` is set once the initial list (or the resumed watch) is processed.
    """

    def __init__(
        self,
        client: KubeClient,
        settings: Settings,
        state: StateStore,
        out: RecordSink,
        enricher: ObjectEnricher | None,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        enricher_wait_s: float = ENRICHER_WAIT_S,
    ) -> None:
        self._client = client
        self._settings = settings
        self._state = EventState(state)
        self._out = out
        self._enricher = enricher
        self._metrics = metrics
        self._clock = clock
        self._enricher_wait_s = enricher_wait_s
        self._api = settings.events.api
        self._filter = EventFilter(settings.events)
        self._occurrences = EventCounter(settings.events.metrics, metrics)
        self._since = parse_since(settings.events.since)
        self.synced = asyncio.Event()

        loaded = self._state.load()
        self._watermarks: dict[str, Watermark] = loaded.watermarks
        self._initialized = loaded.initialized
        self._saved_watch_rv = loaded.watch_rv
        self._handed_seq = loaded.committed_seq
        self._listed: set[str] = set()
        self._listing_rv: int | None = None
        self._baselines: dict[str, Watermark] = {}
        self._pending_deletions: dict[str, int] = {}
        self._pending_reset: int | None = None
        self._enricher_ready = enricher is None

    @property
    def resume_rv(self) -> int | None:
        """The committed watch RV this source resumes from (None: list first)."""
        return self._saved_watch_rv

    def resource(self) -> ResourceRef:
        """The events collection URL, namespaced when exactly one namespace is included."""
        namespace = self._filter.server_side().namespace
        if self._api == EVENTS_V1:
            return ResourceRef("events.k8s.io", "v1", "events", namespace=namespace)
        return ResourceRef("", "v1", "events", namespace=namespace)

    def decode(self, raw: dict[str, Any]) -> DecodedEvent:
        """The reflector's decoder for the configured API."""
        return decode_event(raw, self._api)

    async def run(self) -> None:
        """List/watch Events until cancelled."""
        reflector: Reflector[DecodedEvent] = Reflector(
            self._client,
            self.resource(),
            self.decode,
            self.handle,
            settings=self._settings.kube,
            field_selector=self._filter.server_side().field_selector,
            start_rv=self._saved_watch_rv,
            name="events",
            metrics=self._metrics,
        )
        # A resumed watch has no initial list, so the reflector's own flag says when we're live.
        mirror = asyncio.create_task(self._mirror_synced(reflector.synced))
        try:
            await reflector.run()
        finally:
            mirror.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mirror

    async def _mirror_synced(self, synced: asyncio.Event) -> None:
        await synced.wait()
        self.synced.set()

    async def handle(self, event: ReflectorEvent[DecodedEvent]) -> None:
        """Process one reflector event (in stream order; may wait on backpressure)."""
        kind = event.type
        if kind is EventType.LISTED and event.obj is not None:
            if event.rv != self._listing_rv:
                # A new list RV means a new list: one that broke off mid-way must not count.
                self._listing_rv, self._listed = event.rv, set()
            self._listed.add(event.obj.uid)
            await self._observe(event.obj, watch_rv=None)
        elif kind in (EventType.ADDED, EventType.MODIFIED) and event.obj is not None:
            await self._observe(event.obj, watch_rv=event.rv)
        elif kind is EventType.DELETED and event.obj is not None:
            self._on_deleted(event.obj.uid, event.rv)
        elif kind is EventType.SYNCED:
            self._on_synced(event.rv)
        elif kind is EventType.BOOKMARK:
            self._persist_if_idle(event.rv)
        elif kind is EventType.RESET:
            self._on_reset(event.rv)

    def _on_reset(self, rv: int) -> None:
        # Old RVs are meaningless now: with them at 0 the relist that follows prunes every uid it
        # lacks (see _on_synced) and refreshes the RV of every uid it has. Occurrence counts stay:
        # they are what keeps a restored event from being exported twice.
        for mark in self._watermarks.values():
            mark.rv = 0
        self._pending_deletions = {uid: min(deleted, rv) for uid, deleted in self._pending_deletions.items()}
        self._pending_reset = rv
        self._listed, self._listing_rv = set(), None

    async def _observe(self, ev: DecodedEvent, *, watch_rv: int | None) -> None:
        self._count("records_in")
        if not self._filter.matches(ev):
            self._count("records_filtered")
            return
        mark = self._watermarks.get(ev.uid)
        occurrences = ev.occurrences
        if mark is None and not self._initialized and not self._exports_on_first_start(ev):
            # Start policy: occurrences from before the first start are a baseline, not output.
            baseline = Watermark(occurrences, ev.resource_version)
            self._watermarks[ev.uid] = baseline
            self._baselines[ev.uid] = baseline
            return
        previous = mark.occurrences if mark is not None else 0
        if occurrences <= previous:
            # A relist, a replay after a resumed watch, or a change that is not an occurrence.
            self._count("records_deduplicated")
            if mark is not None:
                mark.rv = max(mark.rv, ev.resource_version)
            return
        await self._emit(ev, occurrences - previous, watch_rv)
        self._occurrences.count(ev, occurrences - previous)
        self._watermarks[ev.uid] = Watermark(occurrences, max(ev.resource_version, mark.rv if mark else 0))

    def _exports_on_first_start(self, ev: DecodedEvent) -> bool:
        if self._since == "retained":
            return True
        if self._since == "now":
            return False
        occurred_at = ev.occurred_at
        return occurred_at is not None and rfc3339_to_epoch(occurred_at) >= self._clock() - self._since

    async def _emit(self, ev: DecodedEvent, delta: int, watch_rv: int | None) -> None:
        if not self._enricher_ready:
            await self._wait_for_enricher()
        self._handed_seq += 1
        checkpoint = EventCheckpoint(
            uid=ev.uid,
            occurrences=ev.occurrences,
            rv=ev.resource_version,
            seq=self._handed_seq,
            watch_rv=watch_rv,
            deletions=tuple(self._pending_deletions.items()),
            reset_rv=self._pending_reset,
        )
        self._pending_deletions.clear()
        self._pending_reset = None
        data = self._record_data(ev, delta)
        await self._out.put(
            Record(
                data=data,
                sort_key=data["timestamp"],
                position=ev.resource_version,
                checkpoint=checkpoint,
                size_hint=600 + len(ev.message),
            )
        )

    async def _wait_for_enricher(self) -> None:
        assert self._enricher is not None
        try:
            await asyncio.wait_for(self._enricher.synced.wait(), self._enricher_wait_s)
        except TimeoutError:
            log.warning("enricher not synced after %.0fs; exporting events with partial metadata",
                        self._enricher_wait_s)
        self._enricher_ready = True

    def _on_deleted(self, uid: str, rv: int) -> None:
        # TTL expiry (or a delete): never an occurrence. Forget the uid; its row is pruned once
        # the committed watch position reaches this RV.
        if self._watermarks.pop(uid, None) is not None:
            self._pending_deletions[uid] = rv
            # Events watches get no bookmarks (Events are not watch-cached), so when the stream
            # goes quiet no record would carry these out: without this the rows of expired
            # events stayed in the table as live ones, and came back as watermarks at restart.
            self._persist_if_idle(rv)
        self._listed.discard(uid)

    def _on_synced(self, list_rv: int) -> None:
        # Known uids the (re)list did not contain are gone: their DELETED was missed. Unless we
        # saw the uid at a newer RV than the list's: a list served from a lagging cache
        # (resourceVersion=0) says nothing about it, and pruning it would re-export it later.
        gone = [uid for uid, mark in self._watermarks.items() if uid not in self._listed and mark.rv <= list_rv]
        for uid in gone:
            del self._watermarks[uid]
            self._pending_deletions[uid] = list_rv
        self._listed, self._listing_rv = set(), None
        first_sync = not self._initialized
        self._initialized = True
        if first_sync or self._baselines:
            self._state.write(baselines=self._baselines, initialized=True)
            self._baselines = {}
        self._persist_if_idle(list_rv)
        self.synced.set()

    def _persist_if_idle(self, rv: int) -> None:
        """Commit the stream position ``rv`` directly when every handed record is committed.

        Otherwise the position would run ahead of records still in the pipeline; the next
        record's checkpoint carries the pending deletions instead.
        """
        if self._state.committed_seq() != self._handed_seq:
            return
        self._state.write(deletions=self._pending_deletions, watch_rv=rv, reset_rv=self._pending_reset)
        self._pending_deletions = {}
        self._pending_reset = None

    def _record_data(self, ev: DecodedEvent, delta: int) -> dict[str, Any]:
        timestamp = ev.occurred_at or epoch_to_rfc3339(self._clock())
        data: dict[str, Any] = {
            "kind": "event",
            "timestamp": timestamp,
            "event": {
                "uid": ev.uid,
                "name": ev.name,
                "namespace": ev.namespace,
                "resource_version": ev.resource_version,
                "reason": ev.reason,
                "message": ev.message,
                "type": ev.type,
                "action": ev.action,
                "count": ev.occurrences,
                "count_delta": delta,
                "first_timestamp": ev.first_timestamp,
                "last_timestamp": ev.last_timestamp,
                "event_time": ev.event_time,
                "series_count": ev.series_count,
                "reporting_controller": ev.reporting_controller,
                "reporting_instance": ev.reporting_instance,
                "source_component": ev.source_component,
                "source_host": ev.source_host,
                "api": ev.api,
            },
            "involved": ev.involved.as_dict(),
        }
        if ev.related is not None:
            data["related"] = ev.related.as_dict()
        data["kubernetes"] = self._kubernetes_block(ev)
        return data

    def _kubernetes_block(self, ev: DecodedEvent) -> dict[str, Any]:
        involved = ev.involved
        namespace = involved.namespace or ev.namespace
        if self._enricher is None:
            # What the event itself tells, in the enricher's (sparse) key names.
            block = {"namespace": namespace, "object_kind": involved.kind, "object_name": involved.name,
                     "object_uid": involved.uid}
            return {"enrichment": "none", **{key: value for key, value in block.items() if value}}
        # The enricher counts its own misses (kubestream_enrichment_misses_total).
        return self._enricher.for_object(
            involved.kind, namespace, involved.name, involved.uid, field_path=involved.field_path or None
        )

    def _count(self, name: str) -> None:
        if self._metrics is not None:
            getattr(self._metrics, name).labels(source=SOURCE).inc()

