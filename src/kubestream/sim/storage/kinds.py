"""Per-kind server behaviour that is not generic: time-field formats and the empty object a
BOOKMARK carries (create defaults live in defaults.py)."""

from __future__ import annotations

import copy
from typing import Any

from kubestream.sim.storage.meta import normalize_time
from kubestream.sim.storage.resources import ResourceType

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


def empty_object(rtype: ResourceType, resource_version: int, annotations: dict[str, str] | None = None, *,
                 zero_time_as_null: bool = False) -> dict[str, Any]:
    """The zero object of a kind carrying only an RV, as a BOOKMARK sends it (spec §2): 1.32
    writes the zero ``creationTimestamp`` as null, 1.34+ omit it."""
    metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
    if zero_time_as_null:
        metadata["creationTimestamp"] = None
    if annotations:
        metadata["annotations"] = annotations
    if rtype.kind == "Event":
        body = _EMPTY_EVENT_V1 if rtype.group == "events.k8s.io" else _EMPTY_EVENT_CORE
    else:
        body = _EMPTY_BODIES.get(rtype.kind, {})
    body = copy.deepcopy(body)
    if not zero_time_as_null:
        _drop_null_creation_times(body)
    return {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": metadata, **body}


def _drop_null_creation_times(value: Any) -> None:
    # 1.34+ omit a zero metav1.Time (pod templates' creationTimestamp) instead of writing null.
    if isinstance(value, dict):
        if value.get("creationTimestamp", 0) is None:
            del value["creationTimestamp"]
        for child in value.values():
            _drop_null_creation_times(child)

