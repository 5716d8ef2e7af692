"""Events have no watch cache (spec §2, DefaultWatchCacheSizes): their lists and watches are
served by etcd. Also the watch cache's answers to a too-new RV, a fresh cache's start, the
periodic etcd compactor, and flow control's 429 shape."""

from __future__ import annotations

import time
from typing import Any

from kubestream.sim.server import SimServer
from kubestream.sim.storage.status import WATCH_EXPIRED
from kubestream.sim.testing import WatchReader, http, running_sim


def event(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "reason": "Test", "message": name,
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"}, "count": 1, "type": "Normal"}


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}


def test_event_list_with_rv_zero_honours_limit_and_pages(sim_server: SimServer) -> None:
    for i in range(5):
        sim_server.cluster.create("events", event(f"e{i}"))
        sim_server.cluster.create("pods", pod(f"p{i}"))
    first = http(sim_server, "GET", "/api/v1/events?limit=2&resourceVersion=0").json
    assert [e["metadata"]["name"] for e in first["items"]] == ["e0", "e1"]
    assert first["metadata"]["continue"] and first["metadata"]["remainingItemCount"] == 3
    second = http(sim_server, "GET", f"/api/v1/events?limit=2&continue={first['metadata']['continue']}").json
    assert [e["metadata"]["name"] for e in second["items"]] == ["e2", "e3"]
    v1 = http(sim_server, "GET", "/apis/events.k8s.io/v1/events?limit=2&resourceVersion=0").json
    assert len(v1["items"]) == 2 and v1["metadata"]["continue"]
    # Pods come from the watch cache, which still ignores limit for RV=0 (computeListLimit).
    pods = http(sim_server, "GET", "/api/v1/pods?limit=2&resourceVersion=0").json
    assert len(pods["items"]) == 5 and "continue" not in pods["metadata"]


def test_event_watches_get_no_periodic_bookmarks_but_cached_ones_do() -> None:
    with running_sim(bookmark_interval_s=0.2) as server:
        rv = server.cluster.resource_version
        query = f"watch=1&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=3"
        events = WatchReader(server, f"/api/v1/events?{query}")
        events_v1 = WatchReader(server, f"/apis/events.k8s.io/v1/events?{query}")
        pods = WatchReader(server, f"/api/v1/pods?{query}")
        server.cluster.create("events", event("e"))
        seen = {name: [e["type"] for e in iter(r.next_event, None)]
                for name, r in (("events", events), ("events_v1", events_v1), ("pods", pods))}
    assert seen["events"] == seen["events_v1"] == ["ADDED"]
    assert seen["pods"] and set(seen["pods"]) == {"BOOKMARK"}
    # The initial-events-end bookmark of a streaming list is still sent (etcd3 watcher).
    with running_sim() as server:
        reader = WatchReader(server, "/api/v1/events?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                                     "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
        assert [e["type"] for e in iter(reader.next_event, None)] == ["BOOKMARK"]


def test_compacted_event_watch_gets_the_etcd_text_and_an_open_one_survives(sim_server: SimServer) -> None:
    cluster = sim_server.cluster
    old = cluster.resource_version
    open_watch = WatchReader(sim_server, f"/api/v1/events?watch=1&resourceVersion={old}&timeoutSeconds=5")
    cluster.create("events", event("before"))
    cluster.compact()
    cluster.create("events", event("after"))
    # An open watch is synced: etcd compaction does not end it.
    assert [e["object"]["metadata"]["name"] for e in open_watch.events(2)] == ["before", "after"]
    open_watch.close()
    late = WatchReader(sim_server, f"/api/v1/events?watch=1&resourceVersion={old}")
    error = late.next_event()
    assert late.next_event() is None
    assert error == {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": WATCH_EXPIRED,
        "reason": "Expired", "code": 410}}


def test_periodic_compactor_expires_quiet_event_watches_only() -> None:
    with running_sim(compaction_interval_s=0.2) as server:
        rv = server.cluster.resource_version
        server.cluster.create("pods", pod("moves-the-revision"))
        deadline = time.monotonic() + 10
        while server.cluster.compactions < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.cluster.compactions >= 2
        events = WatchReader(server, f"/api/v1/events?watch=1&resourceVersion={rv}")
        assert events.next_event() == {"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": WATCH_EXPIRED,
            "reason": "Expired", "code": 410}}
        # The watch cache keeps its own window: etcd compaction does not reach cached resources.
        pods = WatchReader(server, f"/api/v1/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1")
        assert [e["type"] for e in iter(pods.next_event, None)] == ["ADDED"]


def test_too_large_rv_plain_watch_waits_streaming_list_errors_in_stream(sim_server: SimServer) -> None:
    cluster = sim_server.cluster
    future = cluster.resource_version + 3
    waiting = WatchReader(sim_server, f"/api/v1/pods?watch=1&resourceVersion={future}&timeoutSeconds=5")
    assert waiting.status == 200
    for i in range(5):
        cluster.create("pods", pod(f"p{i}"))
    # Only changes after the requested RV arrive, once the store got there.
    got = waiting.events(2)
    assert [int(e["object"]["metadata"]["resourceVersion"]) for e in got] == [future + 1, future + 2]
    waiting.close()
    ahead = cluster.resource_version + 10
    streaming = WatchReader(sim_server, f"/api/v1/pods?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                                        f"&resourceVersionMatch=NotOlderThan&resourceVersion={ahead}")
    assert streaming.status == 200
    error = streaming.next_event()
    assert streaming.next_event() is None
    assert error is not None and error["type"] == "ERROR"
    assert (error["object"]["code"], error["object"]["reason"]) == (504, "Timeout")
    assert error["object"]["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    assert error["object"]["message"] == f"Too large resource version: {ahead}, current: {cluster.resource_version}"


def test_fresh_watch_cache_rejects_rvs_from_before_its_start() -> None:
    with running_sim(start_rv=5000) as server:
        assert server.cluster.resource_version > 5000
        before = WatchReader(server, "/api/v1/pods?watch=1&resourceVersion=4000")
        assert before.next_event() == {"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 4000 (5000)", "reason": "Expired", "code": 410}}
        since_start = WatchReader(server, "/api/v1/namespaces?watch=1&resourceVersion=5000&timeoutSeconds=1")
        assert {e["type"] for e in iter(since_start.next_event, None)} == {"ADDED"}  # the auto namespaces


def test_429_storm_is_flow_control_plain_text_for_the_python_client(sim_server: SimServer) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    sim_server.faults.error_storm(429, 5.0, retry_after=3, resource="pods")
    configuration = client.Configuration(host=sim_server.url)
    configuration.retries = False  # urllib3 would otherwise wait out Retry-After and retry 3 times
    api = client.CoreV1Api(client.ApiClient(configuration))
    try:
        api.list_namespaced_pod("default")
    except ApiException as exc:
        assert (exc.status, exc.headers["Retry-After"]) == (429, "3")
        assert exc.body == "Too many requests, please try again later.\n"
        assert exc.headers["Content-Type"] == "text/plain; charset=utf-8"
    else:
        raise AssertionError("no 429")
