"""Start policy (events.since) and filters (server-side selectors, client-side checks)."""

from __future__ import annotations

from typing import Any

from source_events_support import NOW, core_event

from kubestream.config.settings import EventsSettings
from kubestream.kube.reflector import EventType
from kubestream.sources.event_decode import decode_event
from kubestream.sources.event_filters import EventFilter, escape_field_value


async def test_since_now_baselines_the_listed_events_and_exports_later_increments(make_harness: Any) -> None:
    h = make_harness(since="now")
    await h.listing([core_event("a", 10, count=5), core_event("b", 11, count=1)], list_rv=12)
    assert h.sink.all() == []
    await h.feed(EventType.MODIFIED, core_event("a", 13, count=7))
    await h.feed(EventType.ADDED, core_event("c", 14, count=1))
    assert h.sink.deltas() == [("a", 2), ("c", 1)]

    # The baselines are persisted at once: a crash before any commit does not lose them,
    # and a later start ignores "since": unknown listed events are caught up in full.
    h.restart()
    await h.listing([core_event("a", 13, count=7), core_event("b", 11, count=1), core_event("d", 15, count=3)],
                    list_rv=16)
    assert h.sink.deltas() == [("a", 2), ("d", 3)]


async def test_since_retained_exports_everything_listed(make_harness: Any) -> None:
    h = make_harness(since="retained")
    await h.listing([core_event("a", 10, count=5), core_event("b", 11, count=1)], list_rv=12)
    assert h.sink.deltas() == [("a", 5), ("b", 1)]


async def test_since_duration_exports_only_recent_occurrences(make_harness: Any) -> None:
    h = make_harness(since="15m", clock=NOW)  # NOW is 2023-11-14T22:13:20Z
    recent = core_event("new", 10, count=4, last="2023-11-14T22:00:00Z")
    old = core_event("old", 11, count=9, last="2023-11-14T21:50:00Z")
    await h.listing([recent, old], list_rv=12)
    assert h.sink.deltas() == [("new", 4)]
    await h.feed(EventType.MODIFIED, core_event("old", 13, count=10, last="2023-11-14T22:13:00Z"))
    assert h.sink.deltas() == [("new", 4), ("old", 1)]


async def test_crash_during_the_first_list_keeps_the_first_start_policy(make_harness: Any) -> None:
    h = make_harness(since="now")
    await h.feed(EventType.LISTED, core_event("a", 10, count=5), 12)
    h.restart()  # before SYNCED: nothing persisted, still a first start
    await h.listing([core_event("a", 10, count=5)], list_rv=13)
    assert h.sink.all() == []


def test_server_side_selector_pushes_single_values_and_exclusions() -> None:
    settings = EventsSettings(namespaces_include=["shop"], namespaces_exclude=["kube-system"], types=["Warning"],
                              reasons_include=["BackOff"], kinds_exclude=["Node", "Lease"])
    pushed = EventFilter(settings).server_side()
    assert pushed.namespace == "shop"
    assert pushed.field_selector == (
        "metadata.namespace!=kube-system,type=Warning,reason=BackOff,"
        "involvedObject.kind!=Lease,involvedObject.kind!=Node"
    )


def test_server_side_selector_for_events_v1_and_multi_value_includes() -> None:
    settings = EventsSettings(api="events.k8s.io/v1", namespaces_include=["a", "b"], types=["Normal", "Warning"],
                              kinds_include=["Pod"], reasons_exclude=["a,b=c"])
    pushed = EventFilter(settings).server_side()
    assert pushed.namespace is None
    assert pushed.field_selector == "reason!=a\\,b\\=c,regarding.kind=Pod"
    assert EventFilter(EventsSettings()).server_side().field_selector is None
    assert escape_field_value("x\\y") == "x\\\\y"


def test_client_side_filter_checks_every_rule() -> None:
    f = EventFilter(EventsSettings(namespaces_include=["a", "b"], types=["Warning"], reasons_exclude=["Pulled"],
                                   kinds_include=["Pod", "Node"]))
    ok = decode_event(core_event("x", 1, namespace="a", type_="Warning", reason="BackOff"))
    assert f.matches(ok)
    assert not f.matches(decode_event(core_event("x", 1, namespace="c", type_="Warning")))
    assert not f.matches(decode_event(core_event("x", 1, namespace="a", type_="Normal")))
    assert not f.matches(decode_event(core_event("x", 1, namespace="a", type_="Warning", reason="Pulled")))
    assert not f.matches(decode_event(core_event("x", 1, namespace="b", type_="Warning", kind="Service")))


async def test_filtered_events_are_counted_and_never_exported(make_harness: Any) -> None:
    h = make_harness(since="retained", namespaces_include=["a", "b"], reasons_exclude=["Pulled"])
    await h.listing([core_event("x", 10, namespace="a"), core_event("y", 11, namespace="c"),
                     core_event("z", 12, namespace="b", reason="Pulled")], list_rv=13)
    assert h.sink.deltas() == [("x", 1)]
    assert h.metric("records_in") == 3
    assert h.metric("records_filtered") == 2
