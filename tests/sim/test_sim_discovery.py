"""Discovery documents (spec §6, checklist 30 and 32) built from the resource registry."""

from __future__ import annotations

import re

import orjson

from kubestream.sim.apiserver import discovery_docs as discovery
from kubestream.sim.apiserver import reviews
from kubestream.sim.apiserver.discovery_docs import AGGREGATED_CONTENT_TYPE
from kubestream.sim.storage.resources import RESOURCES, group_versions
from kubestream.sim.testing import http
from kubestream.sim.versions import kube_version

KUBECTL_DISCOVERY_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


def test_version_reports_the_kube_version_with_every_version_info_field() -> None:
    info = discovery.version_info()
    assert set(info) == {"major", "minor", "gitVersion", "gitCommit", "gitTreeState",
                         "buildDate", "goVersion", "compiler", "platform"}
    assert (info["major"], info["minor"]) == ("1", "35")  # the default --kube-version
    assert re.fullmatch(r"v1\.35\.\d+-kubestream-sim", info["gitVersion"])
    assert all(isinstance(v, str) and v for v in info.values())
    assert discovery.version_info(kube_version("1.32"))["minor"] == "32"


def test_kubectl_accept_header_selects_aggregated_v2() -> None:
    assert discovery.wants_aggregated(KUBECTL_DISCOVERY_ACCEPT)


def test_plain_or_missing_accept_gets_legacy_discovery() -> None:
    assert not discovery.wants_aggregated("application/json")
    assert not discovery.wants_aggregated("")
    assert not discovery.wants_aggregated("*/*")
    # v2beta1 alone is not served by the simulator: legacy answer.
    assert not discovery.wants_aggregated(
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


def test_json_preferred_by_q_weight_beats_aggregated() -> None:
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.5,"
              "application/json")
    assert not discovery.wants_aggregated(accept)


def test_aggregated_content_type_names_v2_group_discovery_list() -> None:
    assert AGGREGATED_CONTENT_TYPE == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")


def test_core_versions_lists_v1_and_the_given_address() -> None:
    doc = discovery.core_versions("127.0.0.1:6443")
    assert doc == {"kind": "APIVersions", "versions": ["v1"],
                   "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                   "serverAddress": "127.0.0.1:6443"}]}


def test_group_list_covers_every_served_group_once_without_core() -> None:
    doc = discovery.group_list()
    names = [g["name"] for g in doc["groups"]]
    # The registry's groups and the two review groups (kubectl auth whoami / can-i).
    assert sorted(names) == sorted({g for g, _ in group_versions() if g}
                                   | {"authentication.k8s.io", "authorization.k8s.io"})
    apps = next(g for g in doc["groups"] if g["name"] == "apps")
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert apps["versions"] == [apps["preferredVersion"]]


def test_core_resource_list_has_pods_with_short_names_categories_and_subresources() -> None:
    doc = discovery.resource_list("", "v1")
    assert doc is not None
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    assert "apiVersion" not in doc  # the core document has none on real servers
    by_name = {r["name"]: r for r in doc["resources"]}
    pods = by_name["pods"]
    assert pods["singularName"] == "pod" and pods["namespaced"] is True and pods["kind"] == "Pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    assert pods["verbs"] == ["create", "delete", "deletecollection", "get", "list", "patch",
                             "update", "watch"]
    # sha256("/v1/Pod")[:8], the value real clusters report for pods.
    assert pods["storageVersionHash"] == "xPOwRZ+Yhw8="
    assert by_name["pods/status"] == {"name": "pods/status", "singularName": "", "namespaced": True,
                                      "kind": "Pod", "verbs": ["get", "patch", "update"]}
    assert by_name["pods/log"]["verbs"] == ["get"]
    assert by_name["nodes"]["namespaced"] is False


def test_group_resource_list_carries_api_version_and_scale_subresource_kind() -> None:
    doc = discovery.resource_list("apps", "v1")
    assert doc is not None
    assert doc["apiVersion"] == "v1" and doc["groupVersion"] == "apps/v1"
    scale = next(r for r in doc["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")


def test_unserved_group_version_has_no_resource_list() -> None:
    assert discovery.resource_list("apps", "v1beta1") is None
    assert discovery.resource_list("nope.example.com", "v1") is None


def test_every_registry_resource_appears_in_legacy_and_aggregated_discovery() -> None:
    legacy = set()
    for group, version in discovery.served_group_versions():
        doc = discovery.resource_list(group, version)
        assert doc is not None
        legacy |= {(group, version, r["name"]) for r in doc["resources"] if "/" not in r["name"]}
    aggregated = set()
    for core in (True, False):
        for item in discovery.aggregated(core)["items"]:
            for v in item["versions"]:
                aggregated |= {(item["metadata"].get("name", ""), v["version"], r["resource"])
                               for r in v["resources"]}
    expected = {(r.group, r.version, r.plural) for r in RESOURCES} | {
        (r.group, r.version, r.plural) for r in reviews.REVIEWS}
    assert legacy == expected == aggregated


def test_both_event_apis_report_the_core_storage_version_hash() -> None:
    core = discovery.resource_list("", "v1")
    events_v1 = discovery.resource_list("events.k8s.io", "v1")
    assert core is not None and events_v1 is not None
    core_hash = next(r for r in core["resources"] if r["name"] == "events")["storageVersionHash"]
    new_hash = next(r for r in events_v1["resources"] if r["name"] == "events")["storageVersionHash"]
    assert core_hash == new_hash == "r2yiGXH7wu8="


def test_aggregated_core_document_shape() -> None:
    doc = discovery.aggregated(core=True)
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2")
    [item] = doc["items"]
    assert "name" not in item["metadata"]  # the core group has no name
    [v1] = item["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    pods = next(r for r in v1["resources"] if r["resource"] == "pods")
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert set(subs) == {"status", "log"}
    assert subs["status"]["verbs"] == ["get", "patch", "update"]
    nodes = next(r for r in v1["resources"] if r["resource"] == "nodes")
    assert nodes["scope"] == "Cluster"


def test_aggregated_groups_follow_the_apis_order() -> None:
    names = [item["metadata"]["name"] for item in discovery.aggregated(core=False)["items"]]
    assert names == [g["name"] for g in discovery.group_list()["groups"]]
    apps = discovery.aggregated(core=False)["items"][names.index("apps")]
    deployments = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    scale = next(s for s in deployments["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}


def test_partial_object_metadata_for_get_list_and_a_json_range_after_protobuf(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim_server.cluster.create("configmaps", {"metadata": {"name": "a", "namespace": "default", "labels": {"x": "1"}},
                                             "data": {"k": "v"}})
    as_list = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
               "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")
    listed = http(sim_server, "GET", "/api/v1/namespaces/default/configmaps?limit=1", headers={"Accept": as_list}).json
    assert (listed["kind"], listed["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    assert set(listed["metadata"]) == {"resourceVersion"}
    [item] = listed["items"]
    assert set(item) == {"kind", "apiVersion", "metadata"} and item["kind"] == "PartialObjectMetadata"
    assert item["metadata"]["labels"] == {"x": "1"} and "managedFields" in item["metadata"]
    one = http(sim_server, "GET", "/api/v1/namespaces/default/configmaps/a",
               headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}).json
    assert (one["kind"], one["metadata"]["name"]) == ("PartialObjectMetadata", "a") and "data" not in one
    plain = http(sim_server, "GET", "/api/v1/namespaces/default/configmaps/a").json
    assert plain["kind"] == "ConfigMap"
    watched = http(sim_server, "GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
                   headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"})
    first = orjson.loads(watched.raw.splitlines()[0])
    assert first["type"] == "ADDED" and set(first["object"]) == {"kind", "apiVersion", "metadata"}
    assert first["object"]["kind"] == "PartialObjectMetadata"
