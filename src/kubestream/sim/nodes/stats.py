"""kubelet's ``GET /stats/summary``: the Summary API (k8s.io/kubelet/pkg/apis/stats/v1alpha1
``Summary``) for one simulated node.

The shape is upstream's: ``node`` (``nodeName``, ``startTime``, ``cpu``, ``memory``, ``network``,
``fs``, ``runtime.imageFs``) and one ``pods`` entry per pod on the node (``podRef``,
``startTime``, ``containers`` with their own ``cpu``/``memory``/``rootfs``/``logs``, the pod's
``cpu``, ``memory``, ``network``, ``ephemeral-storage``). Nothing runs, so the numbers are made up
but plausible and stable: each container's working set and CPU rate come from a hash of its pod
UID and name (10 to 500 millicores, 20 to 520 MiB), cumulative CPU grows with the time since the pod
started, and the node's figures are the sums over its pods plus a system share.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from kubestream.sim.storage.cluster import SimCluster

_MIB = 1024 * 1024
_NODE_MEMORY = 16 * 1024 * _MIB
"""Capacity the simulated nodes report (``availableBytes`` is what is left of it)."""
_SYSTEM_CORES_NANO = 150_000_000
_SYSTEM_MEMORY = 600 * _MIB


def _stamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seeded(uid: str, name: str) -> int:
    return int.from_bytes(hashlib.blake2s(f"{uid}/{name}".encode(), digest_size=8).digest(), "big")


def _started(meta: dict[str, Any], status: dict[str, Any], now: float) -> float:
    text = status.get("startTime") or meta.get("creationTimestamp")
    if isinstance(text, str):
        try:
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now


def _usage(nano_cores: int, working_set: int, started: float, now: float, stamp: str) -> dict[str, Any]:
    return {
        "cpu": {"time": stamp, "usageNanoCores": nano_cores,
                "usageCoreNanoSeconds": int(nano_cores * max(0.0, now - started))},
        "memory": {"time": stamp, "workingSetBytes": working_set, "usageBytes": working_set + working_set // 8,
                   "rssBytes": working_set * 3 // 4, "pageFaults": working_set // 4096, "majorPageFaults": 0},
    }


def _container(pod_uid: str, name: str, started: float, now: float, stamp: str) -> dict[str, Any]:
    seed = _seeded(pod_uid, name)
    cores = (10 + seed % 490) * 1_000_000
    working_set = (20 + (seed >> 16) % 500) * _MIB
    out: dict[str, Any] = {"name": name, "startTime": _stamp(started),
                           **_usage(cores, working_set, started, now, stamp)}
    out["rootfs"] = {"time": stamp, "usedBytes": 64 * 1024, "inodesUsed": 12}
    out["logs"] = {"time": stamp, "usedBytes": (seed >> 32) % (8 * _MIB), "inodesUsed": 1}
    return out


def summary(cluster: SimCluster, node: str, now: float) -> dict[str, Any]:
    """The Summary of ``node`` at ``now`` (the pods bound to it, running containers only)."""
    stamp = _stamp(now)
    pods = []
    total_cores, total_memory = _SYSTEM_CORES_NANO, _SYSTEM_MEMORY
    for pod in cluster.list("pods", field_selector=f"spec.nodeName={node}"):
        meta, status = pod["metadata"], pod.get("status") or {}
        started = _started(meta, status, now)
        running = {cs.get("name") for cs in status.get("containerStatuses") or []
                   if "running" in (cs.get("state") or {})}
        containers = [_container(meta["uid"], c["name"], started, now, stamp)
                      for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") in running]
        cores = sum(c["cpu"]["usageNanoCores"] for c in containers)
        memory = sum(c["memory"]["workingSetBytes"] for c in containers)
        total_cores += cores
        total_memory += memory
        pods.append({
            "podRef": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "startTime": _stamp(started), "containers": containers,
            **_usage(cores, memory, started, now, stamp),
            "network": {"time": stamp, "name": "eth0", "rxBytes": memory // 16, "txBytes": memory // 32,
                        "rxErrors": 0, "txErrors": 0},
            "ephemeral-storage": {"time": stamp, "usedBytes": sum(c["logs"]["usedBytes"] for c in containers)},
        })
    node_obj = next(iter(cluster.list("nodes", field_selector=f"metadata.name={node}")), None)
    node_start = _started(node_obj["metadata"], {}, now) if node_obj is not None else now
    node_usage = _usage(total_cores, total_memory, node_start, now, stamp)
    node_usage["memory"]["availableBytes"] = max(0, _NODE_MEMORY - total_memory)
    return {
        "node": {"nodeName": node, "startTime": _stamp(node_start), **node_usage,
                 "network": {"time": stamp, "name": "eth0", "rxBytes": total_memory // 8, "txBytes": total_memory // 16,
                             "rxErrors": 0, "txErrors": 0},
                 "fs": {"time": stamp, "capacityBytes": 100 * 1024 * _MIB, "usedBytes": 20 * 1024 * _MIB,
                        "availableBytes": 80 * 1024 * _MIB},
                 "runtime": {"imageFs": {"time": stamp, "capacityBytes": 100 * 1024 * _MIB,
                                         "usedBytes": 8 * 1024 * _MIB, "availableBytes": 80 * 1024 * _MIB}}},
        "pods": pods,
    }
