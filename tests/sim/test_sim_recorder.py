"""The simulator's event recorders against the real in-process SimCluster: the writes and watch
changes client-go's tools/record and tools/events produce (spec §5), and the ledger's truth."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from kubestream.sim.config import SimConfig
from kubestream.sim.server import SimServer
from kubestream.sim.storage.cluster import SimCluster
from kubestream.sim.testing import WatchReader
from kubestream.sim.workload.event_ledger import EventLedger, occurrences
from kubestream.sim.workload.recorders import (
    COMBINED_PREFIX,
    LegacyRecorder,
    ObjectRef,
    SeriesRecorder,
    SpamFilter,
)

T0 = 1_800_000_000.0


class ManualClock:
    """A clock the test moves by hand (injected, the recorders take any callable)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cluster() -> Iterator[SimCluster]:
    c = SimCluster(SimConfig())
    yield c
    c.close()


@pytest.fixture
def pod_ref(cluster: SimCluster) -> ObjectRef:
    pod = cluster.create("pods", {"metadata": {"name": "web-0", "namespace": "default"},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
    return ObjectRef.of(pod, "Pod").at("spec.containers{app}")


def _changes(cluster: SimCluster, since: int) -> list[tuple[str, dict[str, Any]]]:
    """The watch changes of the event store after ``since`` (what a watcher would receive)."""
    changes, _ = cluster.store.changes_since("events", since)
    return [(c.type, c.obj) for c in changes]


def _store_truth(cluster: SimCluster) -> dict[str, int]:
    return {e["metadata"]["uid"]: occurrences(e) for e in cluster.list("events")}


def test_legacy_three_repeats_are_one_added_and_two_modified(cluster: SimCluster, pod_ref: ObjectRef) -> None:
    clock, ledger = ManualClock(), EventLedger()
    rec = LegacyRecorder(cluster, component="kubelet", host="node-1", ledger=ledger, clock=clock)
    rv0 = cluster.resource_version
    for _ in range(3):
        rec.event(pod_ref, "Warning", "BackOff", "Back-off restarting failed container app")
        clock.now += 5
    changes = _changes(cluster, rv0)
    assert [t for t, _ in changes] == ["ADDED", "MODIFIED", "MODIFIED"]
    assert [o["count"] for _, o in changes] == [1, 2, 3]
    first = changes[0][1]
    assert re.fullmatch(r"web-0\.[0-9a-f]+", first["metadata"]["name"])
    assert first["firstTimestamp"] == first["lastTimestamp"]
    assert first["source"] == {"component": "kubelet", "host": "node-1"}
    assert first["involvedObject"]["fieldPath"] == "spec.containers{app}"
    last = changes[-1][1]
    assert last["metadata"]["uid"] == first["metadata"]["uid"]
    assert last["firstTimestamp"] == first["firstTimestamp"] != last["lastTimestamp"]
    stored = cluster.get("events", "default", first["metadata"]["name"])
    assert stored["count"] == 3 and stored["eventTime"] is None
    assert stored["reportingComponent"] == "kubelet" and stored["reportingInstance"] == "node-1"
    assert (rec.stats.posts, rec.stats.patches) == (1, 2)
    assert ledger.per_uid() == _store_truth(cluster) == {first["metadata"]["uid"]: 3}


def test_legacy_repeats_over_an_http_watch(sim_server: SimServer) -> None:
    cluster = sim_server.cluster
    pod = cluster.create("pods", {"metadata": {"name": "web-0", "namespace": "default"},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
    reader = WatchReader(sim_server, f"/api/v1/namespaces/default/events?watch=true"
                                     f"&resourceVersion={cluster.resource_version}&timeoutSeconds=5")
    try:
        rec = LegacyRecorder(cluster, component="kubelet", host="node-1", clock=ManualClock())
        for _ in range(3):
            rec.event(ObjectRef.of(pod, "Pod"), "Warning", "BackOff", "back-off")
        events = reader.events(3)
    finally:
        reader.close()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED"]
    assert [e["object"]["count"] for e in events] == [1, 2, 3]
    assert len({e["object"]["metadata"]["uid"] for e in events}) == 1


def test_legacy_reporting_fields_may_be_empty(cluster: SimCluster, pod_ref: ObjectRef) -> None:
    rec = LegacyRecorder(cluster, component="kubelet", host="node-1", reporting_fields=False)
    written = rec.event(pod_ref, "Normal", "Pulled", "Container image already present on machine")
    assert written is not None
    assert written["reportingComponent"] == "" and written["reportingInstance"] == ""


def test_legacy_patch_of_a_vanished_event_posts_it_again(cluster: SimCluster, pod_ref: ObjectRef) -> None:
    ledger = EventLedger()
    rec = LegacyRecorder(cluster, component="kubelet", host="node-1", ledger=ledger, clock=ManualClock())
    first = rec.event(pod_ref, "Normal", "Pulled", "pulled")
    assert first is not None
    name = first["metadata"]["name"]
    cluster.delete("events", "default", name)  # as the TTL would
    again = rec.event(pod_ref, "Normal", "Pulled", "pulled")
    assert again is not None
    # client-go recordEvent: 404 on PATCH → POST of the same event (same name, its count).
    assert again["metadata"]["name"] == name and again["count"] == 2
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    assert ledger.per_uid() == {first["metadata"]["uid"]: 1, again["metadata"]["uid"]: 2}


def test_legacy_aggregates_ten_distinct_messages(cluster: SimCluster, pod_ref: ObjectRef) -> None:
    clock, ledger = ManualClock(), EventLedger()
    rec = LegacyRecorder(cluster, component="kubelet", host="node-1", ledger=ledger, clock=clock)
    written = []
    for i in range(11):
        written.append(rec.event(pod_ref, "Warning", "Unhealthy", f"Readiness probe failed: attempt {i}"))
        clock.now += 1
    names = [w["metadata"]["name"] for w in written if w]
    messages = [w["message"] for w in written if w]
    assert len(set(names[:9])) == 9 and not any(m.startswith(COMBINED_PREFIX) for m in messages[:9])
    # The 10th distinct message within 600 s makes a new, combined event...
    assert messages[9] == COMBINED_PREFIX + "Readiness probe failed: attempt 9"
    assert names[9] not in names[:9] and written[9] is not None and written[9]["count"] == 1
    assert written[9]["involvedObject"]["fieldPath"] == "spec.containers{app}"
    # ... which the next distinct message PATCHes (count 2, latest message).
    assert names[10] == names[9] and written[10] is not None and written[10]["count"] == 2
    assert written[10]["message"] == COMBINED_PREFIX + "Readiness probe failed: attempt 10"
    assert ledger.total() == 11 == sum(_store_truth(cluster).values())
    # After 600 s of quiet the set starts again: a new message is its own event.
    clock.now += 601
    fresh = rec.event(pod_ref, "Warning", "Unhealthy", "Readiness probe failed: later")
    assert fresh is not None and not fresh["message"].startswith(COMBINED_PREFIX)


def test_legacy_spam_filter_drops_after_the_burst(cluster: SimCluster, pod_ref: ObjectRef) -> None:
    clock, ledger = ManualClock(), EventLedger()
    rec = LegacyRecorder(cluster, component="kubelet", host="node-1", ledger=ledger, clock=clock,
                         spam_filter=SpamFilter(burst=25, refill_every_s=300, clock=clock))
    for i in range(30):
        rec.event(pod_ref, "Normal", "Pulled", f"message {i % 3}")
    assert rec.stats.dropped == 5 and rec.stats.writes == 25
    assert ledger.total() == 25 == sum(_store_truth(cluster).values())
    clock.now += 300  # one token back
    assert rec.event(pod_ref, "Normal", "Pulled", "message 0") is not None
    assert rec.event(pod_ref, "Normal", "Pulled", "message 0") is None


def test_series_second_occurrence_patches_and_later_ones_jump(cluster: SimCluster, pod_ref: ObjectRef) -> None:
    clock, ledger = ManualClock(), EventLedger()
    rec = SeriesRecorder(cluster, controller="default-scheduler", host="cp-0", ledger=ledger, clock=clock)
    rv0 = cluster.resource_version
    first = rec.event(pod_ref, "Warning", "FailedScheduling", "0/3 nodes are available", action="Scheduling")
    assert first is not None and first["kind"] == "Event" and first["apiVersion"] == "events.k8s.io/v1"
    assert first["reportingController"] == "default-scheduler"
    assert first["reportingInstance"] == "default-scheduler-cp-0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["eventTime"])
    clock.now += 1
    second = rec.event(pod_ref, "Warning", "FailedScheduling", "a different note, same series",
                       action="Scheduling")
    assert second is not None and second["series"]["count"] == 2
    for _ in range(4):
        clock.now += 1
        assert rec.event(pod_ref, "Warning", "FailedScheduling", "again", action="Scheduling") is None
    assert rec.pending() == 4
    assert ledger.total() == 2  # the truth is what was written
    assert rec.flush() == 1 and rec.pending() == 0
    counts = [o.get("series", {}).get("count", 1) for _, o in _changes(cluster, rv0)]
    assert counts == [1, 2, 6]  # series.count jumps from 2 to 6
    assert ledger.per_uid() == _store_truth(cluster) == {first["metadata"]["uid"]: 6}
    core = cluster.get("events", "default", first["metadata"]["name"])
    assert core["firstTimestamp"] is None and core["message"] == "0/3 nodes are available"


def test_series_finish_writes_the_final_count_then_starts_over(cluster: SimCluster, pod_ref: ObjectRef) -> None:
    clock, ledger = ManualClock(), EventLedger()
    rec = SeriesRecorder(cluster, controller="kubelet", host="node-1", ledger=ledger, clock=clock,
                         finish_after_s=60, refresh_every_s=10_000)
    for _ in range(5):
        rec.event(pod_ref, "Warning", "BackOff", "back-off")
    assert ledger.total() == 2
    clock.now += 30
    assert rec.tick() == 0  # finishSeries runs once per period
    clock.now += 31
    assert rec.tick() == 1  # the series has been idle for > 60 s: final count, series ends
    assert ledger.total() == 5 == sum(_store_truth(cluster).values())
    fresh = rec.event(pod_ref, "Warning", "BackOff", "back-off")
    assert fresh is not None and "series" not in fresh and len(ledger) == 2


def test_series_refresh_rewrites_open_series(cluster: SimCluster, pod_ref: ObjectRef) -> None:
    clock, ledger = ManualClock(), EventLedger()
    rec = SeriesRecorder(cluster, controller="kubelet", host="node-1", ledger=ledger, clock=clock,
                         finish_after_s=10_000, refresh_every_s=30)
    for _ in range(7):
        rec.event(pod_ref, "Normal", "Pulled", "pulled")
    clock.now += 31
    assert rec.tick() == 1
    assert ledger.total() == 7 == sum(_store_truth(cluster).values())


def test_ledger_json_round_trip_and_summary(cluster: SimCluster, pod_ref: ObjectRef) -> None:
    ledger = EventLedger()
    legacy = LegacyRecorder(cluster, component="kubelet", host="node-1", ledger=ledger, clock=ManualClock())
    series = SeriesRecorder(cluster, controller="default-scheduler", ledger=ledger, clock=ManualClock())
    for _ in range(3):
        legacy.event(pod_ref, "Warning", "BackOff", "back-off")
        series.event(pod_ref, "Normal", "Scheduled", "assigned", action="Binding")
    copy = EventLedger.from_json(ledger.to_json())
    assert copy.per_uid() == ledger.per_uid() and copy.digest() == ledger.digest()
    assert ledger.by_reason() == {"BackOff": 3, "Scheduled": 2}
    text = ledger.summary()
    assert "2 objects, 5 occurrences" in text and "core/v1=1" in text and "events.k8s.io/v1=1" in text
    entry = ledger.get(next(iter(ledger.per_uid())))
    assert entry is not None and entry.involved_kind == "Pod" and entry.involved_name == "web-0"
