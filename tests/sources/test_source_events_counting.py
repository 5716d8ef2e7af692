"""Occurrence counting: one record per occurrence change with the right count_delta."""

from __future__ import annotations

from source_events_support import Harness, core_event

from kubestream.kube.reflector import EventType


async def test_legacy_repeats_give_one_record_each_with_delta_one(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("a", 10, count=1))
    await harness.feed(EventType.MODIFIED, core_event("a", 11, count=2))
    await harness.feed(EventType.MODIFIED, core_event("a", 12, count=3))

    assert harness.sink.deltas() == [("a", 1), ("a", 1), ("a", 1)]
    assert [r.data["event"]["count"] for r in harness.sink.all()] == [1, 2, 3]
    assert [r.position for r in harness.sink.all()] == [10, 11, 12]


async def test_series_jumps_give_the_jump_as_delta(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    series = {"count": 2, "lastObservedTime": "2023-11-14T22:05:00.123456Z"}
    await harness.feed(EventType.ADDED, core_event("s", 10, count=None))
    await harness.feed(EventType.MODIFIED, core_event("s", 11, count=None, series=series))
    await harness.feed(EventType.MODIFIED, core_event("s", 12, count=None, series={**series, "count": 9}))

    assert harness.sink.deltas() == [("s", 1), ("s", 1), ("s", 7)]
    last = harness.sink.all()[-1].data
    assert last["event"]["series_count"] == 9
    assert last["timestamp"] == "2023-11-14T22:05:00.123456Z"


async def test_relist_does_not_recount_but_exports_what_changed_meanwhile(harness: Harness) -> None:
    await harness.listing([core_event("a", 10, count=2), core_event("b", 11, count=1)], list_rv=12)
    assert harness.sink.deltas() == [("a", 2), ("b", 1)]

    # After a 410 the reflector relists: "a" unchanged, "b" repeated twice while disconnected.
    await harness.listing([core_event("a", 10, count=2), core_event("b", 20, count=3)], list_rv=21)
    assert harness.sink.deltas() == [("a", 2), ("b", 1), ("b", 2)]
    assert harness.metric("records_deduplicated") == 1
    # A watch ADDED for a known uid (synthetic ADDED after a restart) is an update too.
    await harness.feed(EventType.ADDED, core_event("b", 20, count=3))
    assert len(harness.sink.all()) == 3


async def test_deleted_never_counts_and_repeats_are_dropped(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("a", 10, count=1))
    await harness.feed(EventType.MODIFIED, core_event("a", 11, count=2))
    # A restarted watch replays the same (uid, rv): no second record.
    await harness.feed(EventType.MODIFIED, core_event("a", 11, count=2))
    await harness.feed(EventType.DELETED, core_event("a", 30, count=2))

    assert harness.sink.deltas() == [("a", 1), ("a", 1)]
    assert harness.metric("records_in") == 3
    assert harness.metric("records_deduplicated") == 1


async def test_occurrences_fall_back_to_one_without_count_or_series(harness: Harness) -> None:
    await harness.listing([core_event("z", 10, count=0)], list_rv=11)
    assert harness.sink.deltas() == [("z", 1)]


async def test_record_carries_event_involved_and_kubernetes_blocks(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("a", 10, namespace="shop", reason="Pulled"))
    record = harness.sink.all()[0]
    assert record.sort_key == record.data["timestamp"] == "2023-11-14T22:00:00.000000Z"
    assert record.data["kind"] == "event"
    event = record.data["event"]
    assert event["resource_version"] == 10 and event["reason"] == "Pulled" and event["api"] == "core/v1"
    assert event["source_component"] == "kubelet" and event["event_time"] is None
    assert record.data["involved"]["field_path"] == "spec.containers{app}"
    assert "related" not in record.data
    assert record.data["kubernetes"] == {
        "enrichment": "none", "namespace": "shop", "object_kind": "Pod", "object_name": "obj-a", "object_uid": "u-a",
    }
