"""LIST semantics against spec §1 and checklist items 1-8, 34, plus the recorded PodList."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import orjson

from kubestream.sim.server import SimServer
from kubestream.sim.testing import http, running_sim

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "k8s-openapi-replays" / "v1-32"


def pod(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}


def make_ns(server: SimServer, *names: str) -> None:
    for name in names:
        server.cluster.create("namespaces", {"metadata": {"name": name}})


def test_one_global_resource_version_across_kinds(sim_server: SimServer) -> None:
    p = sim_server.cluster.create("pods", pod("p"))
    e = sim_server.cluster.create("events", {"metadata": {"name": "e", "namespace": "default"},
                                             "involvedObject": {"kind": "Pod", "name": "p"}})
    assert int(e["metadata"]["resourceVersion"]) > int(p["metadata"]["resourceVersion"])
    reply = http(sim_server, "GET", "/api/v1/pods")
    assert int(reply.json["metadata"]["resourceVersion"]) >= int(e["metadata"]["resourceVersion"])


def test_list_shape_matches_recorded_podlist(sim_server: SimServer) -> None:
    recorded = json.loads(json.loads((RECORDED / "pod-list.json").read_text())[0]["response_body"])
    sim_server.cluster.create("pods", pod("p", "kube-system"))
    ours = http(sim_server, "GET", "/api/v1/namespaces/kube-system/pods").json
    assert list(ours) == list(recorded) == ["kind", "apiVersion", "metadata", "items"]
    assert ours["kind"] == "PodList" and ours["apiVersion"] == "v1"
    assert set(ours["metadata"]) == set(recorded["metadata"]) == {"resourceVersion"}
    item = ours["items"][0]
    assert set(item) == set(recorded["items"][0]) == {"metadata", "spec", "status"}  # no kind/apiVersion
    assert {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"} <= set(item["metadata"])
    assert item["status"]["phase"] == "Pending"


def test_items_sorted_by_namespace_then_name(sim_server: SimServer) -> None:
    make_ns(sim_server, "a", "b")
    for ns, name in (("b", "a"), ("a", "z"), ("a", "b")):
        sim_server.cluster.create("pods", pod(name, ns))
    items = http(sim_server, "GET", "/api/v1/pods").json["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == [("a", "b"), ("a", "z"), ("b", "a")]


def _pages(server: SimServer, path: str) -> list[dict[str, Any]]:
    pages, token = [], None
    while True:
        sep = "&" if "?" in path else "?"
        reply = http(server, "GET", path + (f"{sep}continue={token}" if token else ""))
        assert reply.status == 200, reply.json
        pages.append(reply.json)
        token = reply.json["metadata"].get("continue")
        if not token:
            return pages


def test_pagination_tokens_same_rv_and_remaining_count(sim_server: SimServer) -> None:
    for i in range(5):
        sim_server.cluster.create("pods", pod(f"p{i}", app="x" if i % 2 else "y"))
    pages = _pages(sim_server, "/api/v1/namespaces/default/pods?limit=2")
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert len({p["metadata"]["resourceVersion"] for p in pages}) == 1
    assert [p["metadata"].get("remainingItemCount") for p in pages] == [3, 1, None]
    token = pages[0]["metadata"]["continue"]
    decoded = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert decoded == {"v": "meta.k8s.io/v1", "rv": int(pages[0]["metadata"]["resourceVersion"]),
                       "start": "p1\u0000"}
    assert "=" not in token
    # With a selector: tokens still flow, remainingItemCount never appears.
    selected = _pages(sim_server, "/api/v1/pods?limit=1&labelSelector=app%3Dx")
    assert [i["metadata"]["name"] for p in selected for i in p["items"]] == ["p1", "p3"]
    assert all("remainingItemCount" not in p["metadata"] for p in selected)


def test_pages_are_consistent_at_the_token_rv(sim_server: SimServer) -> None:
    for i in range(4):
        sim_server.cluster.create("pods", pod(f"p{i}"))
    first = http(sim_server, "GET", "/api/v1/namespaces/default/pods?limit=2").json
    sim_server.cluster.delete("pods", "default", "p3")
    sim_server.cluster.create("pods", pod("p9"))
    second = http(sim_server, "GET", f"/api/v1/namespaces/default/pods?limit=2&continue={first['metadata']['continue']}").json
    assert [i["metadata"]["name"] for i in second["items"]] == ["p2", "p3"]  # the snapshot, not now
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_expired_and_bad_tokens() -> None:
    with running_sim(continue_ttl_s=0.2) as server:
        for i in range(3):
            server.cluster.create("pods", pod(f"p{i}"))
        token = http(server, "GET", "/api/v1/pods?limit=1").json["metadata"]["continue"]
        time.sleep(0.3)
        expired = http(server, "GET", f"/api/v1/pods?limit=1&continue={token}")
        assert expired.status == 410
        assert expired.json["reason"] == "Expired"
        assert expired.json["message"].startswith("The provided continue parameter is too old")
        fresh = expired.json["metadata"]["continue"]
        resumed = http(server, "GET", f"/api/v1/pods?limit=5&continue={fresh}")
        assert [i["metadata"]["name"] for i in resumed.json["items"]] == ["p1", "p2"]
        garbage = http(server, "GET", "/api/v1/pods?limit=1&continue=notatoken")
        assert garbage.status == 400 and garbage.json["message"].startswith("invalid continue token: continue key is not valid")
        with_rv = http(server, "GET", f"/api/v1/pods?limit=1&continue={fresh}&resourceVersion=5")
        assert (with_rv.status, with_rv.json["message"]) == (400, "specifying resource version is not allowed when using continue")


def test_compacted_token_gets_410_with_fresh_token(sim_server: SimServer) -> None:
    for i in range(3):
        sim_server.cluster.create("pods", pod(f"p{i}"))
    token = http(sim_server, "GET", "/api/v1/pods?limit=1").json["metadata"]["continue"]
    sim_server.cluster.create("pods", pod("late"))
    sim_server.cluster.compact()
    reply = http(sim_server, "GET", f"/api/v1/pods?limit=1&continue={token}")
    assert reply.status == 410 and reply.json["metadata"]["continue"]


def test_rv_zero_ignores_limit(sim_server: SimServer) -> None:
    for i in range(3):
        sim_server.cluster.create("pods", pod(f"p{i}"))
    reply = http(sim_server, "GET", "/api/v1/pods?limit=1&resourceVersion=0").json
    assert len(reply["items"]) == 3 and "continue" not in reply["metadata"]


def test_list_option_validation_is_422(sim_server: SimServer) -> None:
    reply = http(sim_server, "GET", "/api/v1/pods?resourceVersionMatch=Exact")
    assert reply.status == 422
    assert reply.json["message"] == ('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                                     "resourceVersionMatch is forbidden unless resourceVersion is provided")
    assert reply.json["details"]["kind"] == "ListOptions" and reply.json["details"]["group"] == "meta.k8s.io"
    assert reply.json["details"]["causes"][0]["field"] == "resourceVersionMatch"
    for query in ("resourceVersion=0&resourceVersionMatch=Exact", "resourceVersionMatch=NotOlderThan&continue=x",
                  "sendInitialEvents=true", "resourceVersion=1&resourceVersionMatch=Bogus"):
        assert http(sim_server, "GET", f"/api/v1/pods?{query}").status == 422, query
    bad_rv = http(sim_server, "GET", "/api/v1/pods?resourceVersion=abc")
    assert bad_rv.status == 400 and "Invalid value" in bad_rv.json["message"]


def test_exact_old_and_too_new_resource_versions(sim_server: SimServer) -> None:
    first = sim_server.cluster.create("pods", pod("p0"))
    rv0 = int(first["metadata"]["resourceVersion"])
    sim_server.cluster.create("pods", pod("p1"))
    exact = http(sim_server, "GET", f"/api/v1/pods?resourceVersion={rv0}&resourceVersionMatch=Exact").json
    assert [i["metadata"]["name"] for i in exact["items"]] == ["p0"]
    assert exact["metadata"]["resourceVersion"] == str(rv0)
    sim_server.cluster.compact()
    gone = http(sim_server, "GET", f"/api/v1/pods?resourceVersion={rv0}&limit=10")
    assert (gone.status, gone.json["reason"], gone.json["message"]) == (
        410, "Expired", "The resourceVersion for the provided list is too old.")
    current = sim_server.cluster.resource_version
    started = time.monotonic()
    future = http(sim_server, "GET", f"/api/v1/pods?resourceVersion={current + 100}")
    assert time.monotonic() - started >= 0.4  # waited (test config: 0.5 s instead of 3 s)
    assert future.status == 504 and future.headers["Retry-After"] == "1"
    assert future.json["reason"] == "Timeout"
    assert future.json["message"] == f"Too large resource version: {current + 100}, current: {current}"
    assert future.json["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    assert future.json["details"]["retryAfterSeconds"] == 1


def test_create_sets_server_fields_and_duplicate_conflicts(sim_server: SimServer) -> None:
    created = http(sim_server, "POST", "/api/v1/namespaces/default/pods", pod("dup"))
    assert created.status == 201
    meta = created.json["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"].endswith("Z")
    assert created.json["status"]["phase"] == "Pending"
    again = http(sim_server, "POST", "/api/v1/namespaces/default/pods", pod("dup"))
    assert again.status == 409
    assert again.json == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": 'pods "dup" already exists', "reason": "AlreadyExists",
                          "details": {"name": "dup", "kind": "pods"}, "code": 409}
    generated = http(sim_server, "POST", "/api/v1/namespaces/default/pods",
                     {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
    assert generated.status == 201 and generated.json["metadata"]["name"].startswith("web-")
    assert len(generated.json["metadata"]["name"]) == len("web-") + 5
