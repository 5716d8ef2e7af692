"""Discovery documents: /version, /api, /apis, /api/v1, /apis/<g>/<v>, aggregated v2 (spec §6).

Everything is derived from the resource registry (resources.py), so routing, discovery and the
OpenAPI documents cannot disagree about what is served. Shapes follow apimachinery
``pkg/apis/meta/v1/types.go`` (APIVersions, APIGroupList, APIResourceList) and
``k8s.io/api/apidiscovery/v2/types.go`` (APIGroupDiscoveryList), checked against the recorded
``/apis`` of real 1.32 and 1.34 servers (tests/fixtures/recorded/k8s-openapi-replays).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from kubestream.sim.apiserver import reviews
from kubestream.sim.apiserver.negotiation import parse_accept
from kubestream.sim.storage.resources import RESOURCES, ResourceType, group_versions
from kubestream.sim.versions import DEFAULT_KUBE_VERSION, KubeVersion, kube_version

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

SERVER_MINOR = str(kube_version(DEFAULT_KUBE_VERSION).minor)
"""The default version's minor. The kubectl on these machines is a dispatcher that runs the
kubectl matching the server's minor, and its own 1.32 build for minors it does not carry."""

GIT_VERSION = f"v1.{SERVER_MINOR}.0-kubestream-sim"

# kube-apiserver lists groups by its fixed priority table (aggregator apiservice priorities),
# not alphabetically; this is the order the recorded 1.32 /apis shows.
_GROUP_PRIORITY = (
    "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
    "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io",
    "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
    "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
    "discovery.k8s.io", "flowcontrol.apiserver.k8s.io",
)

# Subresources that answer with another kind (``deployments/scale`` → autoscaling/v1 Scale).
_SUBRESOURCE_KIND = {"scale": ("autoscaling", "v1", "Scale")}
_SUBRESOURCE_VERBS = {"log": ("get",)}
_STATUS_VERBS = ("get", "patch", "update")


def version_info(version: KubeVersion | None = None) -> dict[str, Any]:
    """The /version document of ``version`` (default 1.35); field set of apimachinery ``version.Info``."""
    minor = str(version.minor) if version is not None else SERVER_MINOR
    return {
        "major": "1",
        "minor": minor,
        "gitVersion": f"v1.{minor}.0-kubestream-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T00:00:00Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def wants_aggregated(accept: str) -> bool:
    """True when the Accept header asks for the v2 aggregated discovery document.

    The first range the server can serve wins: v2 aggregated before plain JSON. v2beta1 is not
    served by the simulator, so such a range is skipped like any unknown type.
    """
    for media in parse_accept(accept):
        if media.mime == "application/json" and media.names("apidiscovery.k8s.io", "v2",
                                                            "APIGroupDiscoveryList"):
            return True
        if media.is_plain_json:
            return False
    return False


def core_versions(server_address: str) -> dict[str, Any]:
    """/api (APIVersions); ``server_address`` is ``host:port`` as clients should reach it."""
    return {
        "kind": "APIVersions",
        "versions": [v for g, v in group_versions() if g == ""],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def served_group_versions() -> list[tuple[str, str]]:
    """The registry's group versions, then those only the create-only reviews serve."""
    out = group_versions()
    return out + sorted({(r.group, r.version) for r in reviews.REVIEWS} - set(out))


def served_groups() -> list[str]:
    """Named groups (not core) in the order the real server lists them."""
    named = {g for g, _ in served_group_versions() if g}

    def rank(group: str) -> tuple[int, str]:
        known = group in _GROUP_PRIORITY
        return (_GROUP_PRIORITY.index(group) if known else len(_GROUP_PRIORITY), group)

    return sorted(named, key=rank)


def group_list() -> dict[str, Any]:
    """/apis (APIGroupList)."""
    groups = []
    for group in served_groups():
        versions = [{"groupVersion": f"{group}/{v}", "version": v}
                    for g, v in served_group_versions() if g == group]
        groups.append({"name": group, "versions": versions, "preferredVersion": versions[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """/api/v1 or /apis/<group>/<version> (APIResourceList); None if not served."""
    served = _served(group, version)
    review_kinds = reviews.served(group, version)
    if not served and not review_kinds:
        return None
    resources: list[dict[str, Any]] = []
    for rtype in served:
        resources.append(_legacy_resource(rtype))
        resources.extend(_legacy_subresource(rtype, sub) for sub in rtype.subresources)
    resources.extend(reviews.legacy_entry(r) for r in review_kinds)
    head: dict[str, Any] = {"kind": "APIResourceList"}
    if group:
        # /api/v1 has no apiVersion; group documents carry "v1" (seen on real servers).
        head["apiVersion"] = "v1"
    return {**head, "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}


def aggregated(core: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList for /api (core=True) or /apis (core=False)."""
    groups = [""] if core else served_groups()
    items = []
    for group in groups:
        metadata: dict[str, Any] = {"creationTimestamp": None}
        if group:
            metadata = {"name": group, **metadata}
        versions = [
            {"version": v, "resources": [*(_aggregated_resource(r) for r in _served(g, v)),
                                         *(reviews.aggregated_entry(r) for r in reviews.served(g, v))],
             "freshness": "Current"}
            for g, v in served_group_versions() if g == group
        ]
        items.append({"metadata": metadata, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}


def storage_version_hash(rtype: ResourceType) -> str:
    """apiserver ``discovery.StorageVersionHash``: base64 of sha256("group/version/kind")[:8].

    Resources sharing a store (both event APIs) report the hash of the owning core type.
    """
    owner = next((r for r in RESOURCES if r.store_name == rtype.store_name and r.group == ""), rtype)
    digest = hashlib.sha256(f"{owner.group}/{owner.version}/{owner.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _served(group: str, version: str) -> list[ResourceType]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


def _legacy_resource(rtype: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    entry["storageVersionHash"] = storage_version_hash(rtype)
    return entry


def _subresource_verbs(sub: str) -> list[str]:
    return list(_SUBRESOURCE_VERBS.get(sub, _STATUS_VERBS))


def _legacy_subresource(rtype: ResourceType, sub: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": f"{rtype.plural}/{sub}", "singularName": "",
                             "namespaced": rtype.namespaced}
    if sub in _SUBRESOURCE_KIND:
        group, version, kind = _SUBRESOURCE_KIND[sub]
        entry.update(group=group, version=version, kind=kind)
    else:
        entry["kind"] = rtype.kind
    entry["verbs"] = _subresource_verbs(sub)
    return entry


def _aggregated_resource(rtype: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rtype.plural,
        "responseKind": {"group": rtype.group, "version": rtype.version, "kind": rtype.kind},
        "scope": "Namespaced" if rtype.namespaced else "Cluster",
        "singularResource": rtype.singular,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    if rtype.subresources:
        entry["subresources"] = [_aggregated_subresource(rtype, s) for s in rtype.subresources]
    return entry


def _aggregated_subresource(rtype: ResourceType, sub: str) -> dict[str, Any]:
    group, version, kind = _SUBRESOURCE_KIND.get(sub, (rtype.group, rtype.version, rtype.kind))
    return {"subresource": sub, "responseKind": {"group": group, "version": version, "kind": kind},
            "verbs": _subresource_verbs(sub)}
