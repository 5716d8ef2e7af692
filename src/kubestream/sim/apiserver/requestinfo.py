"""URL → what the request is about (k8s.io/apiserver ``endpoints/request/requestinfo.go``)."""

from __future__ import annotations

from dataclasses import dataclass

from kubestream.sim.storage.resources import ResourceType, lookup

NON_RESOURCE_VERBS = {"version", "discovery", "openapi"}


@dataclass(slots=True)
class RequestInfo:
    """Kubernetes verb plus the resource coordinates of one request."""

    verb: str
    """get/list/watch/create/update/patch/delete/deletecollection, or discovery/openapi/version,
    or "" for an unknown path."""
    rtype: ResourceType | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    group: str = ""
    version: str = ""
    legacy_watch: bool = False

    @property
    def resource(self) -> str:
        """Group resource for accounting and messages ("" for non-resource requests)."""
        return self.rtype.group_resource if self.rtype else ""


def is_true(value: str | None) -> bool:
    """spec §2: a present query boolean is true unless it is "0" or "false" (any case)."""
    return value is not None and value.lower() not in ("0", "false")


def parse(method: str, path: str, watch_param: str | None) -> RequestInfo:
    """Classify a request; unknown paths get verb "" (→ 404)."""
    parts = [p for p in path.split("/") if p]
    if parts == ["version"]:
        return RequestInfo("version")
    if parts and parts[0] == "openapi":
        return RequestInfo("openapi")
    if parts in (["api"], ["apis"]):
        return RequestInfo("discovery")
    if parts and parts[0] == "api" and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts and parts[0] == "apis" and len(parts) >= 2:
        if len(parts) == 2:
            return RequestInfo("discovery", group=parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo("")
    if not rest:
        return RequestInfo("discovery", group=group, version=version)
    info = _resource_info(group, version, rest)
    if info is None:
        return RequestInfo("", group=group, version=version)
    info.verb = _verb(method, info, is_true(watch_param) or info.legacy_watch)
    return info


def _resource_info(group: str, version: str, rest: list[str]) -> RequestInfo | None:
    legacy_watch = False
    if rest[0] == "watch":  # deprecated /watch/ prefix paths
        legacy_watch, rest = True, rest[1:]
        if not rest:
            return None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rtype = lookup(group, version, rest[2])
        if rtype is not None and rtype.namespaced and len(rest) <= 5:
            return RequestInfo("", rtype, rest[1], _at(rest, 3), _at(rest, 4), group, version, legacy_watch)
    rtype = lookup(group, version, rest[0])
    if rtype is None or len(rest) > 3:
        return None
    if rtype.namespaced and len(rest) > 1:
        return None  # a namespaced kind by name needs /namespaces/<ns>/
    return RequestInfo("", rtype, None, _at(rest, 1), _at(rest, 2), group, version, legacy_watch)


def _at(parts: list[str], index: int) -> str | None:
    return parts[index] if index < len(parts) else None


def _verb(method: str, info: RequestInfo, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if info.name is None:
            return "watch" if watch else "list"
        return "watch" if info.legacy_watch else "get"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if info.name is not None else "deletecollection"
    return method.lower()
