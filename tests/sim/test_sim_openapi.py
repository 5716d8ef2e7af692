"""OpenAPI v3 index and documents (spec §6, checklist 31), generated from the client's models."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from kubestream.sim.apiserver import openapi
from kubestream.sim.storage.resources import RESOURCES, group_versions

SCHEMA_PREFIX = "#/components/schemas/"


def _doc(path: str) -> dict[str, Any]:
    doc = openapi.v3_document(path)
    assert doc is not None, path
    return doc


def _patch_ops(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [item["patch"] for item in doc["paths"].values() if "patch" in item]


def test_index_lists_every_group_version_with_a_content_hash_url() -> None:
    index = openapi.v3_index()
    expected = {openapi.gv_path(g, v) for g, v in group_versions()}
    assert set(index["paths"]) == expected
    for path, entry in index["paths"].items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{path}?hash=")
        canonical = json.dumps(_doc(path), sort_keys=True, separators=(",", ":")).encode()
        assert url.rsplit("=", 1)[1] == hashlib.sha512(canonical).hexdigest().upper()


def test_hash_is_stable_across_calls() -> None:
    assert openapi.v3_index() == openapi.v3_index()


def test_unserved_document_is_none() -> None:
    assert openapi.v3_document("apis/apps/v1beta1") is None
    assert openapi.v3_document("apis/nope.example.com/v1") is None


def test_every_served_kind_has_a_patch_operation_with_gvk_and_field_validation() -> None:
    # What kubectl's query_param_verifier_v3 looks for before sending fieldValidation=Strict.
    for rtype in RESOURCES:
        doc = _doc(openapi.gv_path(rtype.group, rtype.version))
        gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
        matching = [op for op in _patch_ops(doc) if op["x-kubernetes-group-version-kind"] == gvk]
        assert matching, rtype
        for op in matching:
            assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op["parameters"])


def test_pod_paths_and_operation_ids_follow_upstream_naming() -> None:
    doc = _doc("api/v1")
    pod = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert pod["patch"]["operationId"] == "patchCoreV1NamespacedPod"
    assert pod["patch"]["x-kubernetes-action"] == "patch"
    assert "application/strategic-merge-patch+json" in pod["patch"]["requestBody"]["content"]
    assert doc["paths"]["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
    assert "/api/v1/nodes/{name}" in doc["paths"]
    assert "/api/v1/namespaces/{namespace}/pods/{name}/status" in doc["paths"]
    lease_doc = _doc("apis/coordination.k8s.io/v1")
    lease = lease_doc["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"]
    assert lease["patch"]["operationId"] == "patchCoordinationV1NamespacedLease"


def test_pod_schema_is_generated_from_the_client_models() -> None:
    schemas = _doc("api/v1")["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert set(pod["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert pod["properties"]["spec"]["allOf"] == [{"$ref": SCHEMA_PREFIX + "io.k8s.api.core.v1.PodSpec"}]
    container = schemas["io.k8s.api.core.v1.Container"]
    assert container["required"] == ["name"]
    assert container["properties"]["ports"]["type"] == "array"
    meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    assert meta["properties"]["labels"] == {
        "type": "object", "additionalProperties": {"type": "string"},
        "description": meta["properties"]["labels"]["description"]}
    assert meta["properties"]["creationTimestamp"]["format"] == "date-time"
    assert schemas["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"][0]["kind"] == "PodList"


def test_both_event_kinds_get_their_own_package() -> None:
    core = _doc("api/v1")["components"]["schemas"]["io.k8s.api.core.v1.Event"]
    new = _doc("apis/events.k8s.io/v1")["components"]["schemas"]["io.k8s.api.events.v1.Event"]
    assert "involvedObject" in core["properties"] and "regarding" not in core["properties"]
    assert "regarding" in new["properties"] and "note" in new["properties"]


@pytest.mark.parametrize("path", [openapi.gv_path(g, v) for g, v in group_versions()])
def test_documents_are_valid_openapi_3_with_resolvable_refs(path: str) -> None:
    doc = _doc(path)
    validate(doc)  # raises on an invalid OpenAPI 3.0 document or a dangling $ref
    refs = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("$ref"), str):
                refs.add(value["$ref"])
            for v in value.values():
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)

    collect(doc)
    schemas = doc["components"]["schemas"]
    assert {r.removeprefix(SCHEMA_PREFIX) for r in refs} <= set(schemas)
