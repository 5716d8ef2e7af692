"""Create-only review resources: ``SelfSubjectReview`` (``kubectl auth whoami``) and
``SelfSubjectAccessReview`` (``kubectl auth can-i``), answered from the simulator's tokens and
``SimConfig.deny`` rules (its stand-in for RBAC).

Upstream: ``pkg/registry/authentication/selfsubjectreview/rest.go`` (the caller's user info, a
``creationTimestamp`` of now), ``pkg/registry/authorization/selfsubjectaccessreview/rest.go`` (the
spec is authorized as the caller; ``status.allowed``; ``ValidateSelfSubjectAccessReviewSpec``),
``authentication/request/bearertoken`` + ``group`` (an authenticated user is in
``system:authenticated``; anonymous is ``system:anonymous`` in ``system:unauthenticated``).
Nothing is stored, so these resources have no ``storageVersionHash`` in discovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubestream.sim.config import SimConfig
from kubestream.sim.storage import status as st
from kubestream.sim.storage.meta import rfc3339
from kubestream.sim.storage.resources import lookup


@dataclass(frozen=True, slots=True)
class Review:
    """One create-only, cluster-scoped review resource."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        """``group/version``."""
        return f"{self.group}/{self.version}"


REVIEWS = (
    Review("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview"),
    Review("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
)
ANONYMOUS = "system:anonymous"


def find(group: str, version: str, path_rest: list[str]) -> Review | None:
    """The review a ``/apis/<group>/<version>/<plural>`` request names, if any."""
    if len(path_rest) != 1:
        return None
    return next((r for r in REVIEWS if (r.group, r.version, r.plural) == (group, version, path_rest[0])), None)


def served(group: str, version: str) -> list[Review]:
    """The reviews of one group version (for discovery)."""
    return [r for r in REVIEWS if r.group == group and r.version == version]


def legacy_entry(review: Review) -> dict[str, Any]:
    """The APIResource of a review in ``/apis/<group>/<version>``."""
    return {"name": review.plural, "singularName": review.plural[:-1], "namespaced": False,
            "kind": review.kind, "verbs": ["create"]}


def aggregated_entry(review: Review) -> dict[str, Any]:
    """The APIResourceDiscovery of a review in aggregated v2 discovery."""
    return {"resource": review.plural, "responseKind": {"group": review.group, "version": review.version,
                                                        "kind": review.kind},
            "scope": "Cluster", "singularResource": review.plural[:-1], "verbs": ["create"]}


def user_info(user: str) -> dict[str, Any]:
    """authentication.k8s.io UserInfo of an authenticated (or anonymous) user."""
    groups = ["system:unauthenticated"] if user == ANONYMOUS else ["system:authenticated"]
    return {"username": user, "groups": groups}


def create(review: Review, config: SimConfig, user: str, body: Any) -> dict[str, Any]:
    """The created review (HTTP 201)."""
    if not isinstance(body, dict):
        raise st.bad_request(f"the object provided is unrecognized (must be of type {review.kind}): "
                             "couldn't get version/kind; json parse error: expected an object")
    head = {"kind": review.kind, "apiVersion": review.api_version}
    if review.kind == "SelfSubjectReview":
        return {**head, "metadata": {"creationTimestamp": rfc3339()}, "status": {"userInfo": user_info(user)}}
    spec: dict[str, Any] = body["spec"] if isinstance(body.get("spec"), dict) else {}
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        field, detail = (("nonResourceAttributes", "cannot be specified in combination with resourceAttributes")
                         if resource is not None else
                         ("resourceAttributes", "exactly one of nonResourceAttributes or resourceAttributes "
                                                "must be specified"))
        # field.Error prints a nil pointer as the string "null", quoted like any string.
        value = '"null"' if resource is None else "{...}"
        raise st.invalid(f"{review.kind}.{review.group}", review.group, review.plural, "",
                         [st.field_error("Invalid", f"spec.{field}", detail, value)])
    allowed = True
    if isinstance(resource, dict):
        allowed = _allowed(config, user, resource)
    meta: dict[str, Any] = {"creationTimestamp": None} if config.version.zero_time_as_null else {}
    return {**head, "metadata": meta, "spec": spec, "status": {"allowed": allowed}}


def _allowed(config: SimConfig, user: str, attrs: dict[str, Any]) -> bool:
    """The request ``attrs`` describe, as ``handlers._authorize`` would decide it."""
    group, resource = str(attrs.get("group") or ""), str(attrs.get("resource") or "")
    version = str(attrs.get("version") or "")
    rtype = lookup(group, version or "v1", resource) if resource else None
    group_resource = rtype.group_resource if rtype is not None else (f"{resource}.{group}" if group else resource)
    if attrs.get("subresource"):
        group_resource = f"{group_resource}/{attrs['subresource']}"
    namespace = attrs.get("namespace") or None
    verb = str(attrs.get("verb") or "")
    return not any(rule.matches(verb, group_resource, namespace, user) for rule in config.deny)
