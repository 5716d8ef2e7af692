"""Per-kind server behaviour that is not generic: create defaults, time-field formats and the
empty object a BOOKMARK carries."""

from __future__ import annotations

import copy
from typing import Any

from kubestream.sim.meta import normalize_time
from kubestream.sim.resources import ResourceType

# Time fields per stored kind: (dotted path, is MicroTime). Lists are walked with "[]".
_TIME_FIELDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "Event": (
        ("firstTimestamp", False), ("lastTimestamp", False), ("eventTime", True),
        ("series.lastObservedTime", True),
    ),
    "Lease": (("spec.acquireTime", True), ("spec.renewTime", True)),  # spec §7: MicroTime
    "Pod": (
        ("status.startTime", False), ("status.conditions[].lastTransitionTime", False),
        ("status.conditions[].lastProbeTime", False),
    ),
}
_META_TIMES = ("creationTimestamp", "deletionTimestamp")


def _normalize_path(obj: Any, parts: list[str], micro: bool) -> None:
    if not parts or not isinstance(obj, dict):
        return
    head, rest = parts[0], parts[1:]
    is_list = head.endswith("[]")
    key = head[:-2] if is_list else head
    if key not in obj:
        return
    if is_list:
        for item in obj[key] or []:
            _normalize_path(item, rest, micro)
    elif rest:
        _normalize_path(obj[key], rest, micro)
    else:
        obj[key] = normalize_time(obj[key], micro)


def normalize_times(kind: str, obj: dict[str, Any]) -> None:
    """Rewrite client-sent timestamps in place to the server's Time/MicroTime formats, so a
    Python ``+00:00`` isoformat comes back as ``Z`` with the right precision (checklist 29)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in _META_TIMES:
            if key in meta:
                meta[key] = normalize_time(meta[key], False)
    for path, micro in _TIME_FIELDS.get(kind, ()):
        _normalize_path(obj, path.split("."), micro)


def _image_pull_policy(image: str) -> str:
    # core/v1 defaults.go SetDefaults_Container: ":latest" or no tag → Always.
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def _default_container(container: dict[str, Any]) -> None:
    container.setdefault("resources", {})
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("imagePullPolicy", _image_pull_policy(str(container.get("image", ""))))


def default_pod(pod: dict[str, Any]) -> None:
    """Defaults the API server and admission add to a new Pod (checklist 34: phase Pending)."""
    spec = pod.setdefault("spec", {})
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    status = pod.get("status")
    if not isinstance(status, dict) or not status:
        status = {}
    status.setdefault("phase", "Pending")  # pod/strategy.go PrepareForCreate
    status.setdefault("qosClass", "BestEffort")
    pod["status"] = status


def default_namespace(ns: dict[str, Any]) -> None:
    """Namespace defaults: finalizer, Active phase and the metadata.name label."""
    name = ns["metadata"]["name"]
    ns["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    ns.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    ns.setdefault("status", {}).setdefault("phase", "Active")


def apply_create_defaults(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Kind-specific defaults on create, in place."""
    if rtype.kind == "Pod":
        default_pod(obj)
    elif rtype.kind == "Namespace":
        default_namespace(obj)
    elif rtype.group in ("apps", "batch"):
        obj["metadata"].setdefault("generation", 1)


_EMPTY_BODIES: dict[str, dict[str, Any]] = {
    # spec §2: v1.32 BOOKMARK object of a pod watch, recorded: {"spec":{"containers":null},"status":{}}.
    "Pod": {"spec": {"containers": None}, "status": {}},
    "Namespace": {"spec": {}, "status": {}},
    "Node": {"spec": {}, "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}, "nodeInfo": {
        "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "",
        "containerRuntimeVersion": "", "kubeletVersion": "", "kubeProxyVersion": "",
        "operatingSystem": "", "architecture": ""}}},
    "Service": {"spec": {}, "status": {"loadBalancer": {}}},
    "Lease": {"spec": {}},
    "Deployment": {"spec": {"selector": None, "template": {"metadata": {"creationTimestamp": None},
                   "spec": {"containers": None}}, "strategy": {}}, "status": {}},
    "ReplicaSet": {"spec": {"selector": None, "template": {"metadata": {"creationTimestamp": None},
                   "spec": {"containers": None}}}, "status": {"replicas": 0}},
    "StatefulSet": {"spec": {"selector": None, "template": {"metadata": {"creationTimestamp": None},
                    "spec": {"containers": None}}, "serviceName": "", "updateStrategy": {}}, "status": {"replicas": 0}},
    "DaemonSet": {"spec": {"selector": None, "template": {"metadata": {"creationTimestamp": None},
                  "spec": {"containers": None}}, "updateStrategy": {}},
                  "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                             "desiredNumberScheduled": 0, "numberReady": 0}},
    "Job": {"spec": {"template": {"metadata": {"creationTimestamp": None}, "spec": {"containers": None}}},
            "status": {}},
    "CronJob": {"spec": {"schedule": "", "jobTemplate": {"metadata": {"creationTimestamp": None}, "spec": {
        "template": {"metadata": {"creationTimestamp": None}, "spec": {"containers": None}}}}}, "status": {}},
    "EndpointSlice": {"addressType": "", "endpoints": None},
}
_EMPTY_EVENT_CORE: dict[str, Any] = {
    "involvedObject": {}, "source": {}, "firstTimestamp": None, "lastTimestamp": None,
    "eventTime": None, "reportingComponent": "", "reportingInstance": "",
}
_EMPTY_EVENT_V1: dict[str, Any] = {
    "eventTime": None, "regarding": {}, "deprecatedSource": {},
    "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None,
}


def empty_object(rtype: ResourceType, resource_version: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """The zero object of a kind carrying only an RV, as a v1.32 BOOKMARK sends it (spec §2)."""
    metadata: dict[str, Any] = {"resourceVersion": str(resource_version), "creationTimestamp": None}
    if annotations:
        metadata["annotations"] = annotations
    if rtype.kind == "Event":
        body = _EMPTY_EVENT_V1 if rtype.group == "events.k8s.io" else _EMPTY_EVENT_CORE
    else:
        body = _EMPTY_BODIES.get(rtype.kind, {})
    return {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": metadata, **copy.deepcopy(body)}

