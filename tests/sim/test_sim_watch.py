"""WATCH semantics against spec §2 and checklist items 9-18, plus the recorded watch streams."""

from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from kubestream.sim.server import SimServer
from kubestream.sim.testing import WatchReader, http, running_sim

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "k8s-openapi-replays" / "v1-32"


def pod(name: str, ns: str = "default", node: str | None = None, **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx:1.27"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec}


def recorded_lines(name: str) -> list[dict[str, Any]]:
    body = json.loads((RECORDED / name).read_text())[0]["response_body"]
    return [json.loads(line) for line in body.split("\n") if line]


def test_synthetic_added_matches_recorded_watch(sim_server: SimServer) -> None:
    recorded = recorded_lines("watch_event-watch_pods.json")
    sim_server.cluster.create("pods", pod("a", "kube-system"))
    sim_server.cluster.create("pods", pod("b", "kube-system"))
    reader = WatchReader(sim_server, "/api/v1/namespaces/kube-system/pods?watch=true&timeoutSeconds=1")
    events = reader.events(2)
    assert {e["type"] for e in recorded} == {e["type"] for e in events} == {"ADDED"}
    assert list(events[0]) == list(recorded[0]) == ["type", "object"]
    assert list(events[0]["object"])[:3] == list(recorded[0]["object"])[:3] == ["kind", "apiVersion", "metadata"]
    assert set(events[0]["object"]) == set(recorded[0]["object"])
    assert reader.next_event() is None  # timeoutSeconds ends the stream cleanly


def test_framing_chunked_flushed_and_newline_terminated(sim_server: SimServer) -> None:
    rv = sim_server.cluster.resource_version
    sock = socket.create_connection(("127.0.0.1", sim_server.port), timeout=5)
    sock.sendall(f"GET /api/v1/pods?watch=1&resourceVersion={rv} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:  # headers arrive before any event exists
        head += sock.recv(4096)
    text = head.decode().lower()
    assert text.startswith("http/1.1 200") and "transfer-encoding: chunked" in text
    assert "content-type: application/json" in text
    sim_server.cluster.create("pods", pod("x"))
    body = head.split(b"\r\n\r\n", 1)[1]
    while b"}\n" not in body:
        body += sock.recv(65536)
    size_line, rest = body.split(b"\r\n", 1)
    line = rest[: int(size_line, 16)]
    assert line.endswith(b"\n") and orjson.loads(line)["type"] == "ADDED"
    sock.close()


@pytest.mark.parametrize("value", ["1", "true", "True", ""])
def test_watch_boolean_forms(sim_server: SimServer, value: str) -> None:
    sim_server.cluster.create("pods", pod("a"))
    reader = WatchReader(sim_server, f"/api/v1/pods?watch={value}&timeoutSeconds=1")
    assert reader.next_event()["type"] == "ADDED"  # type: ignore[index]
    reader.close()
    assert http(sim_server, "GET", "/api/v1/pods?watch=false").json["kind"] == "PodList"


def test_rv_n_streams_only_later_changes_and_deleted_has_new_rv(sim_server: SimServer) -> None:
    sim_server.cluster.create("pods", pod("old"))
    rv = sim_server.cluster.resource_version
    reader = WatchReader(sim_server, f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}")
    sim_server.cluster.create("pods", pod("new"))
    modified = sim_server.cluster.patch("pods", "default", "new", {"metadata": {"labels": {"x": "y"}}})
    sim_server.cluster.delete("pods", "default", "new")
    events = reader.events(3)
    reader.close()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]
    assert int(events[2]["object"]["metadata"]["resourceVersion"]) > int(modified["metadata"]["resourceVersion"])
    assert events[2]["object"]["metadata"]["labels"] == {"x": "y"}  # the last object, re-stamped


@pytest.mark.parametrize(("version", "zero_time"), [("1.32", {"creationTimestamp": None}), ("1.35", {})])
def test_bookmarks_only_when_allowed_periodic_and_before_deadline(version: str, zero_time: dict[str, Any]) -> None:
    with running_sim(bookmark_interval_s=0.3, kube_version=version) as server:
        rv = server.cluster.resource_version
        reader = WatchReader(server, f"/api/v1/pods?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=3")
        server.cluster.create("pods", pod("a"))
        seen = []
        while (event := reader.next_event()) is not None:
            seen.append(event)
        types = [e["type"] for e in seen]
        assert types[0] == "ADDED" and types.count("BOOKMARK") >= 3
        bookmark = next(e for e in seen if e["type"] == "BOOKMARK")["object"]
        assert bookmark == {"kind": "Pod", "apiVersion": "v1",
                            "metadata": {"resourceVersion": bookmark["metadata"]["resourceVersion"], **zero_time},
                            "spec": {"containers": None}, "status": {}}
        assert int(bookmark["metadata"]["resourceVersion"]) >= rv + 1
        plain = WatchReader(server, f"/api/v1/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1")
        assert [e["type"] for e in iter(plain.next_event, None)] == ["ADDED"]


def test_streaming_list_end_bookmark_matches_recorded(sim_server: SimServer) -> None:
    # The 1.32 shape (blueprint annotation); tests/sim/test_sim_versions.py holds every version.
    sim_server.config.kube_version = "1.32"
    recorded = recorded_lines("watch_event-watch_pods_without_initial_events.json")[-1]
    query = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0&allowWatchBookmarks=true"
    empty = WatchReader(sim_server, f"/api/v1/namespaces/kube-system/pods?{query}")
    end = empty.next_event()
    empty.close()
    assert end is not None and end["type"] == "BOOKMARK" == recorded["type"]
    assert end["object"]["metadata"].keys() == recorded["object"]["metadata"].keys()
    assert end["object"].keys() == recorded["object"].keys()
    annotations = end["object"]["metadata"]["annotations"]
    assert annotations["k8s.io/initial-events-end"] == "true"
    assert annotations["kubernetes.io/initial-events-list-blueprint"] == \
        recorded["object"]["metadata"]["annotations"]["kubernetes.io/initial-events-list-blueprint"]
    assert base64.b64decode(annotations["kubernetes.io/initial-events-list-blueprint"]).endswith(b"\n")
    sim_server.cluster.create("pods", pod("a"))
    full = WatchReader(sim_server, f"/api/v1/pods?{query}")
    first, second = full.events(2)
    full.close()
    assert first["type"] == "ADDED" and second["type"] == "BOOKMARK"
    assert second["object"]["metadata"]["resourceVersion"] == str(sim_server.cluster.resource_version)
    no_bookmarks = WatchReader(sim_server, "/api/v1/pods?watch=1&sendInitialEvents=true"
                                          "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
    assert [e["type"] for e in iter(no_bookmarks.next_event, None)] == ["ADDED"]
    wrong = http(sim_server, "GET", "/api/v1/pods?watch=1&sendInitialEvents=true")
    assert wrong.status == 422 and "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan" in wrong.json["message"]
    stray = http(sim_server, "GET", "/api/v1/pods?watch=1&resourceVersionMatch=NotOlderThan&resourceVersion=1")
    assert stray.status == 422


def test_expired_rv_is_in_stream_error_then_close(sim_server: SimServer) -> None:
    sim_server.cluster.create("pods", pod("a"))
    old = 2
    sim_server.cluster.create("pods", pod("b"))
    sim_server.cluster.compact()
    reader = WatchReader(sim_server, f"/api/v1/pods?watch=1&resourceVersion={old}")
    assert reader.status == 200
    error = reader.next_event()
    assert reader.next_event() is None
    assert error is not None and error["type"] == "ERROR"
    current = sim_server.cluster.resource_version
    assert error["object"] == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": f"too old resource version: {old} ({current})", "reason": "Expired",
                               "code": 410}


def test_history_window_evicts_old_events() -> None:
    with running_sim(history_min_events=5, history_max_events=10, history_min_s=0.0) as server:
        start = server.cluster.resource_version
        for i in range(20):
            server.cluster.create("pods", pod(f"p{i}"))
        expired = WatchReader(server, f"/api/v1/pods?watch=1&resourceVersion={start}")
        assert expired.next_event()["type"] == "ERROR"  # type: ignore[index]
        recent = server.cluster.resource_version - 3
        fresh = WatchReader(server, f"/api/v1/pods?watch=1&resourceVersion={recent}&timeoutSeconds=1")
        assert [e["type"] for e in iter(fresh.next_event, None)] == ["ADDED"] * 3


def test_errors_before_streaming_are_http_statuses(sim_server: SimServer) -> None:
    bad_field = http(sim_server, "GET", "/api/v1/pods?watch=1&fieldSelector=spec.bogus%3D1")
    assert (bad_field.status, bad_field.json["message"]) == (400, "field label not supported: spec.bogus")
    bad_rv = http(sim_server, "GET", "/api/v1/pods?watch=1&resourceVersion=abc")
    assert bad_rv.status == 400


def test_selector_transitions_become_added_and_deleted(sim_server: SimServer) -> None:
    rv = sim_server.cluster.resource_version
    reader = WatchReader(sim_server, f"/api/v1/pods?watch=1&resourceVersion={rv}&labelSelector=app%3Dweb")
    sim_server.cluster.create("pods", pod("p", app="db"))
    sim_server.cluster.patch("pods", "default", "p", {"metadata": {"labels": {"app": "web"}}})
    sim_server.cluster.patch("pods", "default", "p", {"metadata": {"labels": {"app": "db"}}})
    added, deleted = reader.events(2)
    reader.close()
    assert added["type"] == "ADDED" and deleted["type"] == "DELETED"
    assert deleted["object"]["metadata"]["labels"] == {"app": "web"}  # the old object, new RV
    assert int(deleted["object"]["metadata"]["resourceVersion"]) > int(added["object"]["metadata"]["resourceVersion"])


def test_graceful_pod_delete_modified_then_deleted(sim_server: SimServer) -> None:
    on_node = pod("on-node", node="n1")
    on_node["spec"]["terminationGracePeriodSeconds"] = 1  # an HTTP delete takes the pod's own grace period
    sim_server.cluster.create("pods", on_node)
    sim_server.cluster.create("pods", pod("floating"))
    rv = sim_server.cluster.resource_version
    reader = WatchReader(sim_server, f"/api/v1/pods?watch=1&resourceVersion={rv}")
    reply = http(sim_server, "DELETE", "/api/v1/namespaces/default/pods/on-node", {"propagationPolicy": "Background"})
    assert reply.status == 200 and reply.json["kind"] == "Pod"  # 200, not 202: the pod as marked
    assert reply.json["metadata"]["deletionTimestamp"] and reply.json["metadata"]["deletionGracePeriodSeconds"] == 1
    assert http(sim_server, "GET", "/api/v1/namespaces/default/pods/on-node").status == 200
    now = http(sim_server, "DELETE", "/api/v1/namespaces/default/pods/floating")
    assert now.status == 200 and now.json["kind"] == "Pod"
    events = reader.events(3)
    reader.close()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "on-node"), ("DELETED", "floating"), ("DELETED", "on-node")]
    assert http(sim_server, "GET", "/api/v1/namespaces/default/pods/on-node").status == 404


def test_drop_and_cut_mid_object_faults(sim_server: SimServer) -> None:
    rv = sim_server.cluster.resource_version
    reader = WatchReader(sim_server, f"/api/v1/pods?watch=1&resourceVersion={rv}")
    time.sleep(0.1)
    assert sim_server.requests.open_watches("pods") == 1
    assert sim_server.faults.drop_watches("pods") == 1
    with pytest.raises(urllib3.exceptions.ProtocolError):  # no terminating chunk
        reader.next_line()
    sim_server.faults.cut_next_watch_mid_object()
    cut = WatchReader(sim_server, f"/api/v1/pods?watch=1&resourceVersion={rv}")
    sim_server.cluster.create("pods", pod("x"))
    with pytest.raises(urllib3.exceptions.ProtocolError):
        cut.next_line()
    sim_server.faults.expire_next_watches(1, resource="pods")
    expired = WatchReader(sim_server, f"/api/v1/pods?watch=1&resourceVersion={rv}")
    event = expired.next_event()
    assert event is not None and event["type"] == "ERROR" and event["object"]["code"] == 410
