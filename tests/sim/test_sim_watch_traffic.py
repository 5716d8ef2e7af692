"""What each watch stream sends is counted (events, bookmarks, bytes, per user and selector), so
benchmarks can compare what a node agent *receives*, not only how many watches it opened."""

from __future__ import annotations

import time
from typing import Any

from kubestream.sim.server import SimServer
from kubestream.sim.testing import WatchReader, http


def _pod(name: str, node: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx:1.27"}]}}


def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_each_watch_counts_what_it_streamed(sim_server: SimServer) -> None:
    for i in range(3):
        sim_server.cluster.create("pods", _pod(f"a{i}", "node-a"))
    sim_server.cluster.create("pods", _pod("b0", "node-b"))
    everything = WatchReader(sim_server, "/api/v1/pods?watch=true&timeoutSeconds=2&resourceVersion=0")
    scoped = WatchReader(sim_server, "/api/v1/pods?watch=true&timeoutSeconds=2&resourceVersion=0"
                                     "&fieldSelector=spec.nodeName%3Dnode-b")
    assert len(everything.events(4)) == 4 and len(scoped.events(1)) == 1
    sim_server.cluster.create("pods", _pod("a3", "node-a"))
    assert everything.next_event() is not None
    assert everything.next_event() is None and scoped.next_event() is None  # both streams ended
    _until(lambda: all(t.closed for t in sim_server.requests.watch_traffic()))
    by_selector = {t.field_selector: t for t in sim_server.requests.watch_traffic()}
    assert by_selector[None].events == 5 and by_selector["spec.nodeName=node-b"].events == 1
    assert by_selector[None].bytes > 4 * by_selector["spec.nodeName=node-b"].bytes > 0
    totals = sim_server.requests.watch_totals(resource="pods")
    assert (totals.watches, totals.events) == (2, 6)
    assert totals.bytes == sum(t.bytes for t in by_selector.values())


def test_bookmarks_are_counted_apart_and_reset_starts_a_window(sim_server: SimServer) -> None:
    reader = WatchReader(sim_server, "/api/v1/pods?watch=true&timeoutSeconds=3&allowWatchBookmarks=true"
                                     "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan")
    sim_server.cluster.create("pods", _pod("x", "node-a"))
    events = reader.events(2)  # the initial-events-end bookmark, then the new pod
    assert [e["type"] for e in events] == ["BOOKMARK", "ADDED"]
    traffic = sim_server.requests.watch_totals()
    assert (traffic.events, traffic.bookmarks) == (1, 1)
    sim_server.requests.reset()
    assert sim_server.requests.watch_totals() == type(traffic)(1, 0, 0, 0)  # still open, counted afresh
    document = http(sim_server, "GET", "/_sim/requests").json
    assert document["watchTraffic"][0]["resource"] == "pods" and document["watchTraffic"][0]["events"] == 0
