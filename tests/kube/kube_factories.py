"""Builders of raw API objects (as the API server serialises them) for the kube tests."""

from __future__ import annotations

import uuid
from typing import Any


def raw_pod(name: str, namespace: str = "default", *, uid: str | None = None, node: str | None = "node-1",
            labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
            owners: list[dict[str, Any]] | None = None, rv: int = 1,
            containers: tuple[str, ...] = ("app",), init_containers: tuple[str, ...] = ()) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4()),
                            "resourceVersion": str(rv), "creationTimestamp": "2025-01-01T00:00:00Z"}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    if owners is not None:
        meta["ownerReferences"] = owners
    spec: dict[str, Any] = {"containers": [{"name": c, "image": f"registry.example/{c}:1.0"} for c in containers]}
    if init_containers:
        spec["initContainers"] = [{"name": c, "image": f"registry.example/{c}:init"} for c in init_containers]
    if node:
        spec["nodeName"] = node
    status: dict[str, Any] = {"phase": "Running", "podIP": "10.0.0.7",
                              "containerStatuses": [{"name": c, "imageID": f"registry.example/{c}@sha256:ab",
                                                     "containerID": f"containerd://{c}-{name}"}
                                                    for c in containers]}
    if init_containers:
        status["initContainerStatuses"] = [{"name": c, "imageID": "x@sha256:cd", "containerID": f"containerd://i-{c}"}
                                           for c in init_containers]
    return {"metadata": meta, "spec": spec, "status": status}


def owner(kind: str, name: str, uid: str, *, controller: bool = True) -> dict[str, Any]:
    api = {"ReplicaSet": "apps/v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
           "Job": "batch/v1", "CronJob": "batch/v1"}.get(kind, "v1")
    return {"apiVersion": api, "kind": kind, "name": name, "uid": uid, "controller": controller,
            "blockOwnerDeletion": True}
