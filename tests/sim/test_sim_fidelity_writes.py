"""Issue 13 items 2, 7 and 8: managedFields, defaulting, validation and write semantics, held
against the recorded 1.35 replays (job-create, patch-deployment) where they show them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubestream.sim.server import SimServer
from kubestream.sim.testing import http

V135 = Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "k8s-openapi-replays" / "v1-35"


def _recorded(file: str, method: str, index: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request body, response body) of the index-th recorded ``method`` exchange of a file."""
    hits = [x for x in json.loads((V135 / file).read_text()) if x["request_method"] == method]
    x = hits[index]
    return json.loads(x["request_body"] or "null"), json.loads(x["response_body"])


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec}}


# -- item 2: managedFields -------------------------------------------------------------------------

@pytest.mark.parametrize(("file", "path"), [
    ("job-create.json", "/apis/batch/v1/namespaces/default/jobs"),
    ("patch-deployment.json", "/apis/apps/v1/namespaces/default/deployments"),
])
def test_create_files_exactly_the_recorded_fields_under_the_request_manager(
        sim_server: SimServer, file: str, path: str) -> None:
    body, real = _recorded(file, "POST")
    reply = http(sim_server, "POST", path, body, headers={"User-Agent": "unknown"})
    assert reply.status == 201
    ours = reply.json["metadata"]["managedFields"]
    assert [{k: v for k, v in e.items() if k != "time"} for e in ours] == [
        {k: v for k, v in e.items() if k != "time"} for e in real["metadata"]["managedFields"]]
    # and the defaults the recording shows, in its key order
    assert list(reply.json["spec"]) == list(real["spec"])
    assert reply.json["status"] == real["status"] == {}


def test_manager_is_field_manager_else_user_agent_prefix(sim_server: SimServer) -> None:
    http(sim_server, "POST", "/api/v1/namespaces/default/configmaps",
         {"metadata": {"name": "cm"}, "data": {"a": "1"}}, headers={"User-Agent": "kubectl/v1.32.0 (linux/amd64)"})
    reply = http(sim_server, "PATCH", "/api/v1/namespaces/default/configmaps/cm?fieldManager=ops",
                 {"data": {"b": "2"}}, headers={"Content-Type": "application/merge-patch+json"})
    entries = reply.json["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"], e["fieldsV1"]) for e in entries] == [
        ("kubectl", "Update", {"f:data": {".": {}, "f:a": {}}}),
        ("ops", "Update", {"f:data": {"f:b": {}}}),
    ]
    # a manager that changes another's field takes it (updates are forced); one left with none goes
    reply = http(sim_server, "PATCH", "/api/v1/namespaces/default/configmaps/cm?fieldManager=ops",
                 {"data": {"a": "3"}}, headers={"Content-Type": "application/merge-patch+json"})
    entries = reply.json["metadata"]["managedFields"]
    assert [(e["manager"], e["fieldsV1"]) for e in entries] == [
        ("kubectl", {"f:data": {}}), ("ops", {"f:data": {"f:a": {}, "f:b": {}}})]


def test_status_writes_are_their_own_entry_and_pods_carry_generation(sim_server: SimServer) -> None:
    http(sim_server, "POST", "/api/v1/namespaces/default/pods?fieldManager=kube-controller-manager", _pod("p"))
    reply = http(sim_server, "PUT", "/api/v1/namespaces/default/pods/p/status?fieldManager=kubelet",
                 {**http(sim_server, "GET", "/api/v1/namespaces/default/pods/p").json,
                  "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}]}})
    meta = reply.json["metadata"]
    assert meta["generation"] == 1
    kubelet = [e for e in meta["managedFields"] if e["manager"] == "kubelet"]
    assert kubelet[0]["subresource"] == "status"
    assert kubelet[0]["fieldsV1"] == {"f:status": {"f:phase": {}, "f:podIP": {}, "f:podIPs": {
        ".": {}, 'k:{"ip":"10.0.0.9"}': {".": {}, "f:ip": {}}}}}


def test_in_process_writes_carry_managed_fields_too(sim_server: SimServer) -> None:
    from kubestream.sim.workload.bodies import populate_pods

    populate_pods(sim_server.cluster, 3, seed=2)
    for pod in sim_server.cluster.list("pods"):
        managers = {(m["manager"], m.get("subresource")) for m in pod["metadata"]["managedFields"]}
        assert managers == {("kube-controller-manager", None), ("kubelet", "status")}


# -- item 8: defaulting and validation -------------------------------------------------------------

def test_status_sent_with_a_create_is_dropped(sim_server: SimServer) -> None:
    body = {**_pod("p"), "status": {"phase": "Running", "podIP": "10.1.1.1"}}
    reply = http(sim_server, "POST", "/api/v1/namespaces/default/pods", body)
    assert reply.status == 201 and reply.json["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize(("path", "body", "field", "reason"), [
    ("/api/v1/namespaces/default/pods", _pod("Bad_Name"), "metadata.name", "FieldValueInvalid"),
    ("/api/v1/namespaces/default/pods", {"metadata": {"name": "p"}, "spec": {}}, "spec.containers",
     "FieldValueRequired"),
    ("/apis/apps/v1/namespaces/default/deployments",
     {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {
         "metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
     "spec.template.metadata.labels", "FieldValueInvalid"),
    ("/apis/events.k8s.io/v1/namespaces/default/events",
     {"metadata": {"name": "e"}, "eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "c",
      "reportingInstance": "i", "action": "A", "reason": "R", "type": "Normal",
      "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}, "series": {
          "count": 1, "lastObservedTime": "2025-01-01T00:00:00.000000Z"}}, "series.count", "FieldValueInvalid"),
    ("/apis/events.k8s.io/v1/namespaces/default/events",
     {"metadata": {"name": "e"}, "eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "c",
      "reportingInstance": "i", "action": "A", "reason": "R", "type": "Bad",
      "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}}, "type", "FieldValueInvalid"),
    ("/apis/events.k8s.io/v1/namespaces/default/events",
     {"metadata": {"name": "e"}, "eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "c",
      "reportingInstance": "i", "action": "A", "reason": "R", "type": "Normal", "deprecatedCount": 3,
      "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}}, "count", "FieldValueInvalid"),
    ("/api/v1/namespaces/default/events",
     {"metadata": {"name": "e"}, "reason": "R", "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}},
     "involvedObject.namespace", "FieldValueInvalid"),
    ("/apis/coordination.k8s.io/v1/namespaces/default/leases",
     {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": -1}},
     "spec.leaseDurationSeconds", "FieldValueInvalid"),
    ("/apis/batch/v1/namespaces/default/jobs",
     {"metadata": {"name": "j"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}},
     "spec.template.spec.restartPolicy", "FieldValueNotSupported"),
])
def test_invalid_objects_get_422_and_are_not_stored(sim_server: SimServer, path: str, body: dict[str, Any],
                                                    field: str, reason: str) -> None:
    before = sim_server.cluster.resource_version
    reply = http(sim_server, "POST", path, body)
    assert reply.status == 422, reply.json
    assert reply.json["reason"] == "Invalid"
    assert (field, reason) in [(c["field"], c["reason"]) for c in reply.json["details"]["causes"]]
    assert sim_server.cluster.resource_version == before  # nothing was stored


def test_one_invalid_pod_cannot_reach_the_store_to_break_every_typed_list(sim_server: SimServer) -> None:
    from kubestream.sim.storage.status import SimApiError

    with pytest.raises(SimApiError) as caught:  # the in-process path is held to the same rules
        sim_server.cluster.create("pods", {"metadata": {"name": "p"}, "spec": {}})
    assert caught.value.code == 422
    assert http(sim_server, "GET", "/api/v1/pods").json["items"] == []


def test_pod_spec_is_immutable_but_for_images(sim_server: SimServer) -> None:
    http(sim_server, "POST", "/api/v1/namespaces/default/pods", _pod("p"))
    patch = {"Content-Type": "application/strategic-merge-patch+json"}
    image = http(sim_server, "PATCH", "/api/v1/namespaces/default/pods/p",
                 {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}, headers=patch)
    assert image.status == 200 and image.json["metadata"]["generation"] == 2
    policy = http(sim_server, "PATCH", "/api/v1/namespaces/default/pods/p", {"spec": {"restartPolicy": "Never"}},
                  headers=patch)
    assert policy.status == 422
    assert policy.json["details"]["causes"][0]["field"] == "spec"
    assert "pod updates may not change fields other than" in policy.json["message"]


# -- item 7: write semantics -----------------------------------------------------------------------

def test_dry_run_never_persists(sim_server: SimServer) -> None:
    sim_server.cluster.create("nodes", {"metadata": {"name": "n1"}})
    before = sim_server.cluster.resource_version
    created = http(sim_server, "POST", "/api/v1/namespaces/default/pods?dryRun=All", _pod("p"))
    assert created.status == 201 and created.json["metadata"]["uid"]
    cordon = http(sim_server, "PATCH", "/api/v1/nodes/n1?dryRun=All", {"spec": {"unschedulable": True}},
                  headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert cordon.status == 200 and cordon.json["spec"]["unschedulable"] is True
    deleted = http(sim_server, "DELETE", "/api/v1/nodes/n1?dryRun=All")
    assert deleted.status == 200
    assert sim_server.cluster.resource_version == before
    assert http(sim_server, "GET", "/api/v1/namespaces/default/pods/p").status == 404
    assert "unschedulable" not in http(sim_server, "GET", "/api/v1/nodes/n1").json.get("spec", {})
    assert http(sim_server, "POST", "/api/v1/namespaces/default/pods?dryRun=Some", _pod("q")).status == 422


def test_job_delete_without_propagation_orphans_with_a_warning(sim_server: SimServer) -> None:
    body, _ = _recorded("job-create.json", "POST")
    http(sim_server, "POST", "/apis/batch/v1/namespaces/default/jobs", body)
    _, real_delete = _recorded("job-create.json", "DELETE")
    reply = http(sim_server, "DELETE", f"/apis/batch/v1/namespaces/default/jobs/{body['metadata']['name']}")
    assert reply.status == 200 and reply.json["kind"] == "Job"
    meta = reply.json["metadata"]
    assert meta["finalizers"] == real_delete["metadata"]["finalizers"] == ["orphan"]
    assert meta["deletionGracePeriodSeconds"] == 0 and meta["deletionTimestamp"] and meta["generation"] == 2
    assert "child pods are preserved by default" in reply.headers["Warning"]
    background = http(sim_server, "POST", "/apis/batch/v1/namespaces/default/jobs",
                      {**body, "metadata": {"name": "bg"}})
    assert background.status == 201
    gone = http(sim_server, "DELETE", "/apis/batch/v1/namespaces/default/jobs/bg?propagationPolicy=Background")
    assert gone.json["kind"] == "Status" and "Warning" not in gone.headers


def test_pod_delete_is_200_with_the_pods_own_grace_period(sim_server: SimServer) -> None:
    http(sim_server, "POST", "/api/v1/namespaces/default/pods", _pod("p", nodeName="n1",
                                                                     terminationGracePeriodSeconds=45))
    reply = http(sim_server, "DELETE", "/api/v1/namespaces/default/pods/p")
    assert reply.status == 200 and reply.json["metadata"]["deletionGracePeriodSeconds"] == 45
