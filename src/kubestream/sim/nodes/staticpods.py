"""Static pods and their mirror pods, as kubelet keeps them.

A static pod comes from a manifest file on the node. kubelet (pkg/kubelet/config/common.go
``applyDefaults``) names it ``<name>-<node>``, sets ``spec.nodeName``, gives it a UID that is a
hash of the manifest and records that hash in ``kubernetes.io/config.hash``, with
``kubernetes.io/config.source: file`` and ``kubernetes.io/config.seen``
(pkg/kubelet/types/pod_update.go). The API server holds a *mirror* pod instead
(pkg/kubelet/pod/mirror_client.go ``CreateMirrorPod``): a copy carrying
``kubernetes.io/config.mirror: <hash>`` and a controller owner reference to the Node, with a UID
of its own. kubelet's ``/pods`` lists the static pod, never the mirror.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import orjson

CONFIG_MIRROR = "kubernetes.io/config.mirror"
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_SEEN = "kubernetes.io/config.seen"
_API_ASSIGNED = ("resourceVersion", "managedFields", "generation", "creationTimestamp")
"""Metadata only the API server sets; a pod read from a file has none of it."""


def is_mirror(pod: dict[str, Any]) -> bool:
    """True for a mirror pod (kubelet types ``IsMirrorPod``)."""
    return CONFIG_MIRROR in ((pod.get("metadata") or {}).get("annotations") or {})


def kubelet_uid(pod: dict[str, Any]) -> str:
    """The UID kubelet knows a pod by: a mirror pod's static pod UID (its config hash), which also
    names the pod's log directory on the node; any other pod's own UID."""
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if CONFIG_MIRROR in annotations:
        return str(annotations.get(CONFIG_HASH) or annotations[CONFIG_MIRROR])
    return str(meta["uid"])


def static_manifest(manifest: dict[str, Any], node: str, seen: str) -> dict[str, Any]:
    """The static pod kubelet makes of a manifest: name ``<name>-<node>``, ``spec.nodeName``,
    UID = config hash. The hash is an MD5 like kubelet's, but of canonical JSON rather than Go's
    ``DeepHashObject`` dump, so its value differs from a real node's for the same manifest."""
    pod = copy.deepcopy(manifest)
    meta = pod.setdefault("metadata", {})
    meta["name"] = f"{meta['name']}-{node.lower()}"
    meta.setdefault("namespace", "default")
    pod.setdefault("spec", {})["nodeName"] = node
    digest = hashlib.md5(orjson.dumps(pod, option=orjson.OPT_SORT_KEYS), usedforsecurity=False).hexdigest()
    meta["uid"] = digest
    annotations = meta.setdefault("annotations", {})
    annotations.update({CONFIG_HASH: digest, CONFIG_SOURCE: "file", CONFIG_SEEN: seen})
    return pod


def mirror_of(static: dict[str, Any], node_uid: str) -> dict[str, Any]:
    """The mirror pod kubelet creates on the API server for a static pod (no UID: the server
    assigns one)."""
    pod = copy.deepcopy(static)
    meta = pod["metadata"]
    meta.pop("uid", None)
    meta["annotations"][CONFIG_MIRROR] = meta["annotations"][CONFIG_HASH]
    meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": pod["spec"]["nodeName"],
                                "uid": node_uid, "controller": True}]
    return pod


def kubelet_view(api_pod: dict[str, Any]) -> dict[str, Any]:
    """How kubelet reports a pod on ``/pods``: regular pods as the API server sent them; for a
    mirror pod, the static pod behind it (its own UID and annotations, the mirror's status, which
    kubelet's status manager wrote there; kubelet.go ``GetPods``)."""
    if not is_mirror(api_pod):
        return api_pod
    pod = copy.deepcopy(api_pod)
    meta = pod["metadata"]
    annotations = meta["annotations"]
    mirror_hash = annotations.pop(CONFIG_MIRROR)
    meta["uid"] = annotations.get(CONFIG_HASH, mirror_hash)
    meta.pop("ownerReferences", None)
    for key in _API_ASSIGNED:
        meta.pop(key, None)
    return pod
