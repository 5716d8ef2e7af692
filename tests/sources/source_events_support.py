"""Helpers of the Events source tests: a real StateStore, and a RecordSink that commits
checkpoints the way the pipeline does (in one state transaction per batch)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubestream.config.settings import EventsSettings, KubeSettings, Settings
from kubestream.kube.client import KubeClient
from kubestream.kube.reflector import EventType, ReflectorEvent
from kubestream.model import Record
from kubestream.obs.metrics import Metrics
from kubestream.sim.server import SimServer
from kubestream.sim.workload.generator import Workload
from kubestream.sim.workload.scenario import WorkloadConfig
from kubestream.sources.event_decode import DecodedEvent, decode_event
from kubestream.sources.events import EventsSource, ObjectEnricher
from kubestream.state.store import StateStore

NOW = 1_700_000_000.0
"""The tests' wall clock (2023-11-14T22:13:20Z)."""


class CommittingSink:
    """Collects records; ``commit()`` registers the pending ones as one batch, applying their
    checkpoints in a single state transaction, like the pipeline's spool registration."""

    def __init__(self, state: StateStore) -> None:
        self.state = state
        self.pending: list[Record] = []
        self.committed: list[Record] = []

    async def put(self, record: Record) -> None:
        self.pending.append(record)

    def commit(self) -> None:
        with self.state.transaction() as conn:
            for record in self.pending:
                if record.checkpoint is not None:
                    record.checkpoint.apply(conn)
        self.committed += self.pending
        self.pending = []

    def all(self) -> list[Record]:
        return self.committed + self.pending

    def deltas(self) -> list[tuple[str, int]]:
        return [(r.data["event"]["uid"], r.data["event"]["count_delta"]) for r in self.all()]


class Harness:
    """One incarnation of the source over a database file; ``restart()`` simulates a crash:
    uncommitted records are lost, a new source loads what was committed."""

    def __init__(self, db: Path, events: EventsSettings, clock: float = NOW,
                 enricher: ObjectEnricher | None = None, enricher_wait_s: float = 30.0) -> None:
        self.db = db
        self.enricher = enricher
        self.enricher_wait_s = enricher_wait_s
        self.events = events
        self.clock = clock
        self.metrics = Metrics()
        self.state = StateStore(db)
        self.sink = CommittingSink(self.state)
        self.source = self._new_source()

    def _new_source(self) -> EventsSource:
        settings = Settings(events=self.events)
        # The client is only used by run(); these tests drive handle() directly.
        return EventsSource(None, settings, self.state, self.sink, self.enricher,  # type: ignore[arg-type]
                            metrics=self.metrics, clock=lambda: self.clock, enricher_wait_s=self.enricher_wait_s)

    def restart(self, events: EventsSettings | None = None) -> list[Record]:
        """Crash: drop uncommitted records, reopen the database, build a new source."""
        lost = self.sink.pending
        self.state.close()
        self.events = events or self.events
        self.state = StateStore(self.db)
        self.sink = CommittingSink(self.state)
        self.source = self._new_source()
        return lost

    async def feed(self, kind: EventType, obj: dict[str, Any] | None = None, rv: int | None = None) -> None:
        decoded: DecodedEvent | None = decode_event(obj, self.events.api) if obj is not None else None
        if rv is None:
            assert decoded is not None
            rv = decoded.resource_version
        await self.source.handle(ReflectorEvent(kind, decoded, rv))

    async def listing(self, objs: list[dict[str, Any]], list_rv: int) -> None:
        for obj in objs:
            await self.feed(EventType.LISTED, obj, list_rv)
        await self.feed(EventType.SYNCED, None, list_rv)

    def metric(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value(f"kubestream_{name}_total", {"source": "events"})
        return value or 0.0

    def rows(self) -> dict[str, tuple[int, int | None]]:
        return {
            uid: (occ, deleted)
            for uid, occ, deleted in self.state.conn.execute(
                "SELECT uid, occurrences, deleted_rv FROM events_exported")
        }

    def close(self) -> None:
        self.state.close()


class CacheEnricher:
    """A stand-in for kubestream.enrich.Enricher: answers from a dict of known objects."""

    def __init__(self, known: dict[str, dict[str, Any]]) -> None:
        self.synced = asyncio.Event()
        self.known = known
        self.calls: list[tuple[str, str, str, str, str | None]] = []

    def for_object(self, kind: str, namespace: str, name: str, uid: str, *,
                   field_path: str | None = None) -> dict[str, Any]:
        self.calls.append((kind, namespace, name, uid, field_path))
        if uid in self.known:
            return {"enrichment": "ok", "object_uid": uid, **self.known[uid]}
        return {"enrichment": "none", "object_uid": uid, "namespace": namespace}


_names = itertools.count(1)


def core_event(
    uid: str,
    rv: int,
    count: int | None = 1,
    *,
    namespace: str = "default",
    reason: str = "BackOff",
    type_: str = "Normal",
    kind: str = "Pod",
    last: str = "2023-11-14T22:00:00Z",
    series: dict[str, Any] | None = None,
    obj_name: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event as the API server serves it (legacy recorder shape)."""
    obj: dict[str, Any] = {
        "metadata": {"name": f"{uid}.{next(_names):x}", "namespace": namespace, "uid": uid,
                     "resourceVersion": str(rv), "creationTimestamp": "2023-11-14T21:00:00Z"},
        "involvedObject": {"kind": kind, "namespace": namespace, "name": obj_name or f"obj-{uid}", "uid": f"u-{uid}",
                           "apiVersion": "v1", "resourceVersion": "10", "fieldPath": "spec.containers{app}"},
        "reason": reason,
        "message": f"message of {uid}",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2023-11-14T21:00:00Z",
        "lastTimestamp": last,
        "count": count,
        "type": type_,
        "eventTime": None,
        "reportingComponent": "",
        "reportingInstance": "",
    }
    if series is not None:
        obj["series"] = series
    return obj




class LiveSource:
    """The Events source against a running simulator, with a committer that registers the
    pending records every few milliseconds (the pipeline's role). ``crash()`` cancels
    everything without committing: pending records are lost, as in a kill -9."""

    running: list[LiveSource] = []
    """Started and not yet crashed/stopped (a fixture stops them when a test fails midway)."""

    def __init__(self, server: SimServer, tmp_path: Path, events: EventsSettings, *,
                 kube: KubeSettings | None = None, commit_every_s: float = 0.05) -> None:
        self.server = server
        self.db = tmp_path / "live-state.db"
        self.kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        self.settings = Settings(events=events, kube=kube or fast_kube_settings(self.kubeconfig))
        self.commit_every_s = commit_every_s
        self.exported: list[Record] = []
        """Committed records of every incarnation."""
        self.lost = 0
        self.metrics = Metrics()
        self._tasks: list[asyncio.Task[None]] = []
        self.source: EventsSource | None = None

    async def start(self) -> EventsSource:
        self.state = StateStore(self.db)
        self.sink = CommittingSink(self.state)
        self.client = await KubeClient.create(self.settings.kube, metrics=self.metrics)
        self.source = EventsSource(self.client, self.settings, self.state, self.sink, None, metrics=self.metrics)
        self._tasks = [asyncio.create_task(self.source.run()), asyncio.create_task(self._committer())]
        LiveSource.running.append(self)
        return self.source

    async def _committer(self) -> None:
        while True:
            await asyncio.sleep(self.commit_every_s)
            self._commit()

    def _commit(self) -> None:
        pending = self.sink.pending
        self.sink.commit()
        self.exported += pending

    async def crash(self) -> None:
        LiveSource.running.remove(self)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        self.lost += len(self.sink.pending)
        await self.client.close()
        self.state.close()

    async def stop(self) -> None:
        self._commit()
        await self.crash()

    def per_uid(self) -> dict[str, int]:
        sums: dict[str, int] = {}
        for record in self.exported:
            event = record.data["event"]
            sums[event["uid"]] = sums.get(event["uid"], 0) + event["count_delta"]
        return sums

    async def caught_up(self, expected: Callable[[], dict[str, int]], within_s: float = 15.0) -> dict[str, int]:
        """Wait until the committed sums equal ``expected()``; return the last sums either way."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            self._commit()
            sums = self.per_uid()
            if sums == expected():
                return sums
            await asyncio.sleep(0.1)
        return self.per_uid()


def fast_kube_settings(kubeconfig: Path, **overrides: Any) -> KubeSettings:
    """Short backoffs and watch timeouts so fault recovery fits a unit test."""
    values: dict[str, Any] = {"kubeconfig": str(kubeconfig), "backoff_initial_s": 0.05, "backoff_max_s": 0.5,
                              "watch_timeout_s": (2.0, 4.0), "inactivity_timeout_s": 5.0, "list_page_size": 50,
                              "request_timeout_s": 5.0}
    return KubeSettings(**{**values, **overrides})


def small_workload(server: SimServer, events_api: str, *, seed: int = 7, **overrides: Any) -> Workload:
    """A small, event-heavy workload writing straight into the simulator's cluster."""
    values: dict[str, Any] = {
        "seed": seed, "nodes": 2, "namespaces": 2, "deployments": 3, "statefulsets": 1, "cronjobs": 0,
        "services": 1, "events_per_s": 400.0, "tick_s": 0.05, "crashloop_fraction": 0.3,
        "crashloop_period_s": 1.0, "series_finish_s": 0.5, "series_refresh_s": 2.0, "events_api": events_api,
    }
    config = WorkloadConfig(**{**values, **overrides})
    return Workload(server.cluster, config)
