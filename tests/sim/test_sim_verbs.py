"""Write verbs, Lease rules, events over both APIs, TTL and Status bodies (spec §3, §5-§7;
checklist 19, 22-26, 28-29, 34)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kubestream.sim.server import SimServer
from kubestream.sim.storage.cluster import SimApiError
from kubestream.sim.testing import WatchReader, http, running_sim

LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
CORE_EVENTS = "/api/v1/namespaces/default/events"
V1_EVENTS = "/apis/events.k8s.io/v1/namespaces/default/events"


def lease(name: str, holder: str, rv: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if rv:
        meta["resourceVersion"] = rv
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": "2024-05-01T10:00:00.123456+00:00", "acquireTime": "2024-05-01T10:00:00+00:00"}}


def test_put_optimistic_concurrency_and_lease_rules(sim_server: SimServer) -> None:
    created = http(sim_server, "PUT", f"{LEASES}/lock", lease("lock", "a"))
    assert created.status == 201  # Lease: AllowCreateOnUpdate
    spec = created.json["spec"]
    assert spec["renewTime"] == "2024-05-01T10:00:00.123456Z"  # MicroTime
    assert spec["acquireTime"] == "2024-05-01T10:00:00.000000Z"
    rv = created.json["metadata"]["resourceVersion"]
    ok = http(sim_server, "PUT", f"{LEASES}/lock", lease("lock", "b", rv))
    assert ok.status == 200 and ok.json["spec"]["holderIdentity"] == "b"
    stale = http(sim_server, "PUT", f"{LEASES}/lock", lease("lock", "c", rv))
    assert stale.status == 409 and stale.json["reason"] == "Conflict"
    assert stale.json["message"] == ('Operation cannot be fulfilled on leases.coordination.k8s.io "lock": the object '
                                     "has been modified; please apply your changes to the latest version and try again")
    assert stale.json["details"] == {"name": "lock", "group": "coordination.k8s.io", "kind": "leases"}
    unconditional = http(sim_server, "PUT", f"{LEASES}/lock", lease("lock", "d"))
    assert unconditional.status == 422
    assert unconditional.json["message"] == ('leases.coordination.k8s.io "lock" is invalid: metadata.resourceVersion: '
                                             "Invalid value: 0x0: must be specified for an update")
    pod = sim_server.cluster.create("pods", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    pod["metadata"].pop("resourceVersion")
    pod["metadata"]["labels"] = {"k": "v"}
    assert http(sim_server, "PUT", "/api/v1/namespaces/default/pods/p", pod).status == 200  # unconditional OK
    missing = http(sim_server, "PUT", "/api/v1/namespaces/default/pods/nope", {**pod, "metadata": {"name": "nope"}})
    assert missing.status == 404


def test_noop_update_keeps_resource_version(sim_server: SimServer) -> None:
    obj = sim_server.cluster.create("leases", lease("l", "a"), group="coordination.k8s.io")
    again = http(sim_server, "PUT", f"{LEASES}/l", obj)
    assert again.json["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def core_event(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u1"},
            "reason": "BackOff", "message": "Back-off restarting", "type": "Warning", "count": 1,
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2024-05-01T10:00:00Z", "lastTimestamp": "2024-05-01T10:00:00Z", **extra}


def test_strategic_patch_repeats_emit_modified(sim_server: SimServer) -> None:
    rv = sim_server.cluster.resource_version
    reader = WatchReader(sim_server, f"/api/v1/events?watch=1&resourceVersion={rv}")
    assert http(sim_server, "POST", CORE_EVENTS, core_event("e1")).status == 201
    for count in (2, 3):
        patched = http(sim_server, "PATCH", f"{CORE_EVENTS}/e1",
                       {"count": count, "lastTimestamp": f"2024-05-01T10:0{count}:00Z", "message": "again"},
                       headers={"Content-Type": "application/strategic-merge-patch+json"})
        assert patched.status == 200 and patched.json["count"] == count
    events = reader.events(3)
    reader.close()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED"]
    assert events[-1]["object"]["count"] == 3 and events[-1]["object"]["message"] == "again"
    series = http(sim_server, "PATCH", f"{V1_EVENTS}/e1",
                  {"series": {"count": 7, "lastObservedTime": "2024-05-01T10:10:00.5+00:00"}},
                  headers={"Content-Type": "application/merge-patch+json"})
    assert series.status == 200 and series.json["series"] == {"count": 7, "lastObservedTime": "2024-05-01T10:10:00.500000Z"}


def test_events_over_both_apis_share_one_object(sim_server: SimServer) -> None:
    core = http(sim_server, "POST", CORE_EVENTS, core_event("legacy")).json
    as_v1 = http(sim_server, "GET", f"{V1_EVENTS}/legacy").json
    assert as_v1["apiVersion"] == "events.k8s.io/v1" and as_v1["eventTime"] is None
    assert as_v1["regarding"] == core["involvedObject"] and as_v1["note"] == core["message"]
    assert as_v1["deprecatedCount"] == 1 and as_v1["deprecatedSource"] == {"component": "kubelet", "host": "n1"}
    assert (as_v1["metadata"]["uid"], as_v1["metadata"]["resourceVersion"]) == (
        core["metadata"]["uid"], core["metadata"]["resourceVersion"])
    assert core["reportingComponent"] == "" and core["reportingInstance"] == ""
    new = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "modern", "namespace": "default"},
           "eventTime": "2024-05-01T10:00:00.25+00:00", "reportingController": "example.com/ctl",
           "reportingInstance": "ctl-1", "action": "Sync", "reason": "Synced", "type": "Normal", "note": "done",
           "regarding": {"kind": "Pod", "namespace": "default", "name": "web-1"}}
    created = http(sim_server, "POST", V1_EVENTS, new)
    assert created.status == 201 and created.json["eventTime"] == "2024-05-01T10:00:00.250000Z"
    as_core = http(sim_server, "GET", f"{CORE_EVENTS}/modern").json
    assert as_core["firstTimestamp"] is None and as_core["lastTimestamp"] is None
    assert as_core["reportingComponent"] == "example.com/ctl" and as_core["message"] == "done"
    assert as_core["involvedObject"]["name"] == "web-1"
    listed = http(sim_server, "GET", "/apis/events.k8s.io/v1/events").json
    assert listed["kind"] == "EventList" and [i["metadata"]["name"] for i in listed["items"]] == ["legacy", "modern"]
    by_regarding = http(sim_server, "GET", "/apis/events.k8s.io/v1/events?fieldSelector=reportingController%3Dexample.com%2Fctl")
    assert [i["metadata"]["name"] for i in by_regarding.json["items"]] == ["modern"]


def test_event_ttl_produces_deleted() -> None:
    with running_sim(event_ttl_s=0.3) as server:
        rv = server.cluster.resource_version
        reader = WatchReader(server, f"/api/v1/events?watch=1&resourceVersion={rv}")
        server.cluster.create("events", core_event("short"))
        time.sleep(0.15)
        server.cluster.patch("events", "default", "short", {"count": 2})  # a write refreshes the TTL
        added, modified, deleted = reader.events(3)
        reader.close()
        assert [added["type"], modified["type"], deleted["type"]] == ["ADDED", "MODIFIED", "DELETED"]
        with pytest.raises(SimApiError) as gone:
            server.cluster.get("events", "default", "short")
        assert gone.value.code == 404


def test_delete_status_bodies(sim_server: SimServer) -> None:
    obj = sim_server.cluster.create("leases", lease("l", "a"), group="coordination.k8s.io")
    reply = http(sim_server, "DELETE", f"{LEASES}/l")
    assert reply.status == 200
    assert reply.json == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "details": {"name": "l", "group": "coordination.k8s.io", "kind": "leases",
                                      "uid": obj["metadata"]["uid"]}}
    missing = http(sim_server, "DELETE", f"{LEASES}/l")
    assert missing.json == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": 'leases.coordination.k8s.io "l" not found', "reason": "NotFound",
                            "details": {"name": "l", "group": "coordination.k8s.io", "kind": "leases"}, "code": 404}


def test_bad_inputs_get_exact_statuses() -> None:
    with running_sim(max_body_bytes=1024) as server:
        pods = "/api/v1/namespaces/default/pods"
        broken = http(server, "POST", pods, b"{not json", headers={"Content-Type": "application/json"})
        assert broken.status == 400 and broken.json["message"].startswith(
            "the object provided is unrecognized (must be of type Pod)")
        unknown = http(server, "GET", "/api/v1/foos")
        assert unknown.json == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "the server could not find the requested resource", "reason": "NotFound",
                                "details": {}, "code": 404}
        assert http(server, "GET", "/apis/nope.io/v1/things").status == 404
        huge = http(server, "POST", pods, {"metadata": {"name": "x", "annotations": {"a": "b" * 2000}}})
        assert (huge.status, huge.json["message"]) == (413, "Request entity too large: limit is 1024")
        wrong_ns = http(server, "POST", pods, {"metadata": {"name": "x", "namespace": "kube-system"}})
        assert (wrong_ns.status, wrong_ns.json["message"]) == (
            400, "the namespace of the provided object does not match the namespace sent on the request")
        wrong_kind = http(server, "POST", pods, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}})
        assert wrong_kind.status == 400
        wrong_version = http(server, "POST", pods, {"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "x"}})
        assert wrong_version.status == 400 and "does not match the expected API version" in wrong_version.json["message"]
        no_ns = http(server, "POST", "/api/v1/namespaces/ghost/pods", {"metadata": {"name": "x"}})
        assert (no_ns.status, no_ns.json["message"]) == (404, 'namespaces "ghost" not found')
        nameless = http(server, "POST", pods, {"metadata": {}})
        assert nameless.status == 422 and "name or generateName is required" in nameless.json["message"]
        cbor = http(server, "PATCH", f"{pods}/x", b"\xa0", headers={"Content-Type": "application/apply-patch+cbor"})
        assert cbor.status == 415  # the CBOR apply type needs a feature gate that is off by default


def test_json_patch_and_status_subresource(sim_server: SimServer) -> None:
    sim_server.cluster.create("pods", {"metadata": {"name": "p", "labels": {"a": "1"}},
                                       "spec": {"containers": [{"name": "c", "image": "i"}]}})
    patched = http(sim_server, "PATCH", "/api/v1/namespaces/default/pods/p",
                   [{"op": "replace", "path": "/metadata/labels/a", "value": "2"},
                    {"op": "add", "path": "/status/phase", "value": "Running"}],
                   headers={"Content-Type": "application/json-patch+json"})
    assert patched.json["metadata"]["labels"] == {"a": "2"}
    assert patched.json["status"]["phase"] == "Pending"  # main resource ignores status
    status = http(sim_server, "PATCH", "/api/v1/namespaces/default/pods/p/status",
                  {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
                  headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert status.json["status"]["phase"] == "Running"
    merged = http(sim_server, "PATCH", "/api/v1/namespaces/default/pods/p/status",
                  {"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}},
                  headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert [c["type"] for c in merged.json["status"]["conditions"]] == ["Ready", "PodScheduled"]
    stale = http(sim_server, "PATCH", "/api/v1/namespaces/default/pods/p", {"metadata": {"resourceVersion": "1"}},
                 headers={"Content-Type": "application/merge-patch+json"})
    assert stale.status == 409
