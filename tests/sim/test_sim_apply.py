"""Server-side apply (spec §11): PatchOptions validation, create on apply, field ownership,
conflicts, force and removal of fields an applier dropped."""

from __future__ import annotations

from typing import Any

import orjson

from kubestream.sim.server import SimServer
from kubestream.sim.testing import HttpReply, http

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
APPLY = {"Content-Type": "application/apply-patch+yaml"}


def _cm(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"app": "a"}}, "data": data}


def _apply(server: SimServer, path: str, body: Any, query: str) -> HttpReply:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return http(server, "PATCH", f"{path}?{query}", raw, headers=APPLY)


def _owners(reply: HttpReply) -> dict[tuple[str, str], Any]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in reply.json["metadata"]["managedFields"]}


def test_apply_requires_a_field_manager_and_force_only_on_apply(sim_server: SimServer) -> None:
    missing = _apply(sim_server, f"{CMS}/c", _cm(x="1"), "")
    assert (missing.status, missing.json["message"]) == (
        422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch')
    assert missing.json["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]
    merge = http(sim_server, "PATCH", f"{CMS}/c?force=true", {"data": {}},
                 headers={"Content-Type": "application/merge-patch+json"})
    assert (merge.status, merge.json["message"]) == (
        422, 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch')
    wrong_kind = _apply(sim_server, f"{CMS}/c", {**_cm(), "kind": "Secret"}, "fieldManager=m")
    assert (wrong_kind.status, wrong_kind.json["message"]) == (400, "invalid object type: /v1, Kind=Secret")
    bad_yaml = _apply(sim_server, f"{CMS}/c", b"a: [", "fieldManager=m")
    assert bad_yaml.status == 400 and bad_yaml.json["message"].startswith("error decoding YAML: ")
    owned = _apply(sim_server, f"{CMS}/c", {**_cm(), "metadata": {"name": "c", "managedFields": []}}, "fieldManager=m")
    assert (owned.status, owned.json["message"]) == (400, "metadata.managedFields must be nil")


def test_apply_creates_with_an_apply_entry_and_dry_run_keeps_nothing(sim_server: SimServer) -> None:
    dry = _apply(sim_server, f"{CMS}/c", _cm(x="1"), "fieldManager=m1&dryRun=All")
    assert dry.status == 201
    assert http(sim_server, "GET", f"{CMS}/c").status == 404
    created = _apply(sim_server, f"{CMS}/c", _cm(x="1", y="2"), "fieldManager=m1")
    assert created.status == 201 and created.json["data"] == {"x": "1", "y": "2"}
    assert created.json["metadata"]["managedFields"] == [{
        "manager": "m1", "operation": "Apply", "apiVersion": "v1",
        "time": created.json["metadata"]["managedFields"][0]["time"], "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:x": {}, "f:y": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}}]
    again = _apply(sim_server, f"{CMS}/c", _cm(x="1", y="2"), "fieldManager=m1")
    assert again.status == 200
    assert again.json["metadata"]["resourceVersion"] == created.json["metadata"]["resourceVersion"]


def test_conflicts_shared_ownership_force_and_pruning(sim_server: SimServer) -> None:
    _apply(sim_server, f"{CMS}/c", _cm(x="1", y="2"), "fieldManager=m1")
    conflict = _apply(sim_server, f"{CMS}/c", _cm(x="9"), "fieldManager=m2")
    assert conflict.status == 409
    assert conflict.json == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "m1": .data.x', "reason": "Conflict",
        "details": {"causes": [{"type": "FieldManagerConflict", "message": 'conflict with "m1"', "field": ".data.x"}]},
        "code": 409}
    shared = _apply(sim_server, f"{CMS}/c", _cm(x="1"), "fieldManager=m2")  # the same value: co-owned
    assert _owners(shared)[("m2", "Apply")] == {"f:data": {"f:x": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
    # m1 drops y (only it owned y: removed) and x (m2 still owns it: kept).
    dropped = _apply(sim_server, f"{CMS}/c", {**_cm(), "data": {}}, "fieldManager=m1")
    assert dropped.json["data"] == {"x": "1"}
    http(sim_server, "PATCH", f"{CMS}/c?fieldManager=editor", {"data": {"x": "5", "z": "3"}},
         headers={"Content-Type": "application/merge-patch+json"})
    two = _apply(sim_server, f"{CMS}/c", _cm(x="7", z="4"), "fieldManager=m2")
    assert two.json["message"] == ('Apply failed with 2 conflicts: conflicts with "editor" using v1:\n'
                                   "- .data.x\n- .data.z")
    forced = _apply(sim_server, f"{CMS}/c", _cm(x="7", z="4"), "fieldManager=m2&force=true")
    assert forced.status == 200 and forced.json["data"] == {"x": "7", "z": "4"}
    assert ("editor", "Update") not in _owners(forced)  # it lost its only fields


def test_apply_merges_keyed_lists_and_keeps_status(sim_server: SimServer) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                       "template": {"metadata": {"labels": {"app": "d"}},
                                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
              "status": {"replicas": 9}}
    created = _apply(sim_server, f"{DEPLOYS}/d", deploy, "fieldManager=kubectl")
    assert created.status == 201 and "replicas" not in created.json["status"]  # the strategy drops status
    assert _owners(created)[("kubectl", "Apply")]["f:spec"]["f:template"]["f:spec"] == {
        "f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}, "f:name": {}}}}
    sidecar = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"template": {"spec": {"containers": [{"name": "s", "image": "busybox"}]}}}}
    merged = _apply(sim_server, f"{DEPLOYS}/d", sidecar, "fieldManager=sidecar")
    assert [c["name"] for c in merged.json["spec"]["template"]["spec"]["containers"]] == ["c", "s"]
    assert merged.json["spec"]["replicas"] == 2
    http(sim_server, "PATCH", f"{DEPLOYS}/d?fieldManager=hpa", {"spec": {"replicas": 5}},
         headers={"Content-Type": "application/merge-patch+json"})
    conflict = _apply(sim_server, f"{DEPLOYS}/d", deploy, "fieldManager=kubectl")
    assert conflict.json["message"] == 'Apply failed with 1 conflict: conflict with "hpa" using apps/v1: .spec.replicas'
