"""Strict field validation: unknown fields named by their path, as the real decoder does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubestream.sim.apiserver.field_validation import unknown_fields
from kubestream.sim.storage.resources import RESOURCES, ResourceType, lookup


def _served(group: str, plural: str) -> ResourceType:
    rtype = lookup(group, "v1", plural)
    assert rtype is not None, plural
    return rtype


RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
PODS = _served("", "pods")


def _pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "x", "labels": {"any-key": "v"}, "annotations": {"a/b": "c"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                                     "resources": {"limits": {"cpu": "1"}}}], **spec}}


def test_a_valid_pod_has_no_unknown_fields() -> None:
    assert unknown_fields(PODS, _pod(nodeSelector={"disk": "ssd"})) == []


def test_unknown_spec_field_is_named_by_dotted_path() -> None:
    assert unknown_fields(PODS, _pod(foo="bar")) == ["spec.foo"]


def test_unknown_fields_inside_lists_carry_the_index_in_document_order() -> None:
    pod = _pod(foo=1)
    pod["spec"]["containers"].append({"name": "d", "image": "x", "bogus": True,
                                      "ports": [{"containerPort": 1, "nope": 2}]})
    pod["metadata"]["extra"] = 3
    # "containers" precedes "foo" in the spec mapping, so its fields come first.
    assert unknown_fields(PODS, pod) == ["metadata.extra", "spec.containers[1].bogus",
                                         "spec.containers[1].ports[0].nope", "spec.foo"]


def test_field_names_are_case_sensitive() -> None:
    pod = _pod()
    pod["spec"]["Containers"] = []
    assert unknown_fields(PODS, pod) == ["spec.Containers"]


def test_unknown_top_level_field() -> None:
    assert unknown_fields(PODS, {"apiVersion": "v1", "kind": "Pod", "spce": {}}) == ["spce"]


def test_free_form_values_are_not_descended() -> None:
    # labels/annotations are maps; managedFields[].fieldsV1 and IntOrString are untyped.
    pod = _pod()
    pod["metadata"]["managedFields"] = [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}]
    pod["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"port": "http", "path": "/"}}
    assert unknown_fields(PODS, pod) == []


def test_each_kind_uses_its_own_schema() -> None:
    events_v1 = lookup("events.k8s.io", "v1", "events")
    core_events = lookup("", "v1", "events")
    assert events_v1 is not None and core_events is not None
    assert unknown_fields(events_v1, {"regarding": {}, "note": "x", "involvedObject": {}}) == [
        "involvedObject"]
    assert unknown_fields(core_events, {"regarding": {}, "involvedObject": {}}) == ["regarding"]
    lease = lookup("coordination.k8s.io", "v1", "leases")
    assert lease is not None
    assert unknown_fields(lease, {"spec": {"holderIdentity": "a", "renewTime": "t", "x": 1}}) == [
        "spec.x"]


def test_every_served_kind_accepts_the_common_envelope() -> None:
    envelope = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n", "namespace": "d",
                                                              "uid": "u", "resourceVersion": "1"}}
    for rtype in RESOURCES:
        assert unknown_fields(rtype, envelope) == [], rtype


@pytest.mark.parametrize("replay", sorted((RECORDED / "k8s-openapi-replays").glob("*/pod-list.json")),
                         ids=lambda p: p.parent.name)
def test_real_recorded_pods_have_no_unknown_fields(replay: Path) -> None:
    # Objects written by real 1.32/1.34 servers must pass Strict when sent back.
    exchanges = json.loads(replay.read_text())
    items = [item for ex in exchanges for item in json.loads(ex["response_body"]).get("items", [])]
    assert items
    for item in items:
        assert unknown_fields(PODS, item) == [], item["metadata"]["name"]


def test_real_recorded_core_event_has_no_unknown_fields() -> None:
    path = RECORDED / "k9s" / "core-v1-event.json"
    if not path.exists():
        pytest.skip(f"fixture {path} missing")
    core_events = lookup("", "v1", "events")
    assert core_events is not None
    assert unknown_fields(core_events, json.loads(path.read_text())) == []
