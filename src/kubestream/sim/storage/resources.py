"""The resource types the simulated API server serves, one registry for routing, discovery,
OpenAPI, Tables and field-selector validation.

Field labels follow docs/spec/kubernetes-api.md §4 (pods, core/v1 and events.k8s.io/v1
events). Every type accepts ``metadata.name`` and ``metadata.namespace``
(``DefaultClusterScopedAttr``/``DefaultNamespaceScopedAttr`` in k8s.io/apiserver generic registry).
"""

from __future__ import annotations

from dataclasses import dataclass

_RW = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_BASE_FIELDS = frozenset({"metadata.name", "metadata.namespace"})

POD_FIELDS = _BASE_FIELDS | {
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
}
"""§4: pkg/apis/core/v1/conversion.go; the legacy ``spec.host`` is mapped to ``spec.nodeName``."""

CORE_EVENT_FIELDS = _BASE_FIELDS | {
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
}
"""§4: AddFieldLabelConversionsForEvent / event strategy ToSelectableFields."""

EVENTS_V1_FIELDS = _BASE_FIELDS | {
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reportingController",
    "reason",
    "type",
    "source",
}
"""§4: pkg/apis/events/v1/conversion.go (``regarding.*`` → ``involvedObject.*``)."""


UNCACHED_STORES = frozenset({"events"})
"""pkg/kubeapiserver/default_storage_factory_builder.go DefaultWatchCacheSizes: events → 0."""


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource (group/version/plural)."""

    group: str
    """"" for the core group."""
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _RW
    field_labels: frozenset[str] = _BASE_FIELDS
    storage: str = ""
    """Name of the backing store; resources sharing one (core/v1 and events.k8s.io/v1 events)
    serve the same objects. Defaults to ``plural``."""
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``pods`` or ``leases.coordination.k8s.io``, as in Status messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def store_name(self) -> str:
        return self.storage or self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def watch_cached(self) -> bool:
        """Served from the watch cache; Events are not: kube-apiserver's ``DefaultWatchCacheSizes``
        sets both Event resources to 0, so their lists and watches go to etcd (spec §2)."""
        return self.store_name not in UNCACHED_STORES


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Pod", "pods", "pod", True, ("po",), ("all",), field_labels=POD_FIELDS,
                 subresources=("status", "log")),
    ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                 field_labels=_BASE_FIELDS | {"status.phase"}, subresources=("status",)),
    ResourceType("", "v1", "Node", "nodes", "node", False, ("no",),
                 field_labels=_BASE_FIELDS | {"spec.unschedulable"}, subresources=("status",)),
    ResourceType("", "v1", "Event", "events", "event", True, ("ev",), field_labels=CORE_EVENT_FIELDS,
                 storage="events"),
    ResourceType("", "v1", "Service", "services", "service", True, ("svc",), ("all",),
                 verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
                 subresources=("status",)),
    # Kinds the deploy manifests create (tests/deploy applies them with kubectl); served with
    # the generic behaviour, their schemas come from the client's models like every kind's.
    ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",)),
    ResourceType("", "v1", "Secret", "secrets", "secret", True,
                 field_labels=_BASE_FIELDS | {"type"}),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",)),
    ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",), ("all",),
                 subresources=("status", "scale")),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",), ("all",),
                 field_labels=_BASE_FIELDS | {"status.replicas"}, subresources=("status", "scale")),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", "statefulset", True, ("sts",), ("all",),
                 subresources=("status", "scale")),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", "daemonset", True, ("ds",), ("all",),
                 subresources=("status",)),
    ResourceType("batch", "v1", "Job", "jobs", "job", True, (), ("all",),
                 field_labels=_BASE_FIELDS | {"status.successful"}, subresources=("status",)),
    ResourceType("batch", "v1", "CronJob", "cronjobs", "cronjob", True, ("cj",), ("all",),
                 subresources=("status",)),
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", "lease", True),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", True,
                 ("pdb",), subresources=("status",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
                 "clusterrolebinding", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", True),
    ResourceType("events.k8s.io", "v1", "Event", "events", "event", True, ("ev",),
                 field_labels=EVENTS_V1_FIELDS, storage="events"),
)

_BY_PATH: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The served resource for a URL's group ("" for /api), version and plural, if any."""
    return _BY_PATH.get((group, version, plural))


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, core first, in registry order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen
