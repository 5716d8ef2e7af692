"""Per-kind Table columns and cells, after kube-apiserver's ``pkg/printers/internalversion``.

The server always prints the wide form (every column, priority 0 and 1); kubectl hides
priority-1 columns unless ``-o wide``. Column descriptions are the API field docs, taken from
the same generated models as the OpenAPI schemas. Kinds without a printer here get NAME/AGE.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubestream.sim.printers.ages import UNKNOWN, since
from kubestream.sim.printers.columns import (
    NONE,
    Column,
    age_column,
    as_int,
    dicts,
    doc,
    meta,
    name_column,
    section,
)
from kubestream.sim.printers.event_rows import event_cells, event_columns
from kubestream.sim.printers.pod_rows import pod_cells, pod_columns, pod_conditions

_CONTAINERS = "Names of each container in the template."
_IMAGES = "Images referenced by each container in the template."


def _template_cells(obj: dict[str, Any]) -> list[Any]:
    """Containers, images and selector cells of a workload (``layoutContainerCells``)."""
    spec = section(obj, "spec")
    containers = dicts(section(section(spec, "template"), "spec").get("containers"))
    names = ",".join(str(c.get("name", "")) for c in containers)
    images = ",".join(str(c.get("image", "")) for c in containers)
    return [names, images, format_selector(spec.get("selector"))]


def format_selector(selector: Any) -> str:
    """``metav1.LabelSelectorAsSelector(...).String()``: requirements sorted by key."""
    if not isinstance(selector, dict):
        return NONE
    parts: list[tuple[str, str]] = [
        (k, f"{k}={v}") for k, v in section(selector, "matchLabels").items()
    ]
    for expr in dicts(selector.get("matchExpressions")):
        key, op = str(expr.get("key", "")), expr.get("operator")
        raw_values = expr.get("values")
        values = ",".join(sorted(str(v) for v in raw_values)) if isinstance(raw_values, list) else ""
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(str(op), key)
        parts.append((key, text))
    return ",".join(text for _, text in sorted(parts, key=lambda p: p[0]))


Cells = Callable[[dict[str, Any], datetime], list[Any]]


def _age(obj: dict[str, Any], now: datetime) -> str:
    return since(meta(obj).get("creationTimestamp"), now)


def _name(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def _default_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


def _namespace_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), section(obj, "status").get("phase", ""), _age(obj, now)]


def _lease_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), section(obj, "spec").get("holderIdentity") or "", _age(obj, now)]


def _deployment_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = section(obj, "spec"), section(obj, "status")
    desired = as_int(spec.get("replicas"), 1)  # defaulted to 1 by the real server
    ready = f"{as_int(status.get('readyReplicas'), 0)}/{desired}"
    return [_name(obj), ready, as_int(status.get("updatedReplicas"), 0),
            as_int(status.get("availableReplicas"), 0), _age(obj, now), *_template_cells(obj)]


def _replicaset_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = section(obj, "spec"), section(obj, "status")
    return [_name(obj), as_int(spec.get("replicas"), 1), as_int(status.get("replicas"), 0),
            as_int(status.get("readyReplicas"), 0), _age(obj, now), *_template_cells(obj)]


def _node_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = section(obj, "spec"), section(obj, "status")
    ready = next((c for c in dicts(status.get("conditions")) if c.get("type") == "Ready"), None)
    states = ["Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    labels = section(meta(obj), "labels")
    roles = sorted({k.removeprefix("node-role.kubernetes.io/") for k in labels
                    if k.startswith("node-role.kubernetes.io/") and k != "node-role.kubernetes.io/"}
                   | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set()))
    info = section(status, "nodeInfo")
    addresses = dicts(status.get("addresses"))

    def address(kind: str) -> str:
        return next((a.get("address", "") for a in addresses if a.get("type") == kind), NONE)

    return [_name(obj), ",".join(states), ",".join(roles) or NONE, _age(obj, now),
            info.get("kubeletVersion", ""), address("InternalIP"), address("ExternalIP"),
            info.get("osImage") or UNKNOWN, info.get("kernelVersion") or UNKNOWN,
            info.get("containerRuntimeVersion") or UNKNOWN]


def _service_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec = section(obj, "spec")
    ports = []
    for port in dicts(spec.get("ports")):
        node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
        ports.append(f"{port.get('port', '')}{node_port}/{port.get('protocol', 'TCP')}")
    external_ips = spec.get("externalIPs")
    external = ",".join(map(str, external_ips)) if isinstance(external_ips, list) and external_ips else NONE
    selector = ",".join(f"{k}={v}" for k, v in sorted(section(spec, "selector").items())) or NONE
    return [_name(obj), spec.get("type", "ClusterIP"), spec.get("clusterIP") or NONE, external,
            ",".join(ports) or NONE, _age(obj, now), selector]


@dataclass(frozen=True, slots=True)
class Printer:
    """The columns of a kind, the function producing one row's cells and its row conditions."""

    columns: tuple[Column, ...]
    cells: Cells
    conditions: Callable[[dict[str, Any]], list[dict[str, Any]] | None] = lambda _obj: None


@functools.cache
def _printers() -> dict[str, Printer]:
    workload_tail = (age_column(), Column("Containers", "string", _CONTAINERS, 1),
                     Column("Images", "string", _IMAGES, 1))
    return {
        "Pod": Printer(pod_columns(), pod_cells, pod_conditions),
        "Event": Printer(event_columns(), event_cells),
        "Namespace": Printer((name_column(), Column("Status", "string", "The status of the namespace"),
                              age_column()), _namespace_cells),
        "Lease": Printer((name_column(), Column("Holder", "string", doc("V1LeaseSpec", "holderIdentity")),
                          age_column()), _lease_cells),
        "Deployment": Printer((
            name_column(), Column("Ready", "string", "Number of the pod with ready state"),
            Column("Up-to-date", "integer", doc("V1DeploymentStatus", "updatedReplicas")),
            Column("Available", "integer", doc("V1DeploymentStatus", "availableReplicas")),
            *workload_tail, Column("Selector", "string", doc("V1DeploymentSpec", "selector"), 1),
        ), _deployment_cells),
        "ReplicaSet": Printer((
            name_column(), Column("Desired", "integer", doc("V1ReplicaSetSpec", "replicas")),
            Column("Current", "integer", doc("V1ReplicaSetStatus", "replicas")),
            Column("Ready", "integer", doc("V1ReplicaSetStatus", "readyReplicas")),
            *workload_tail, Column("Selector", "string", doc("V1ReplicaSetSpec", "selector"), 1),
        ), _replicaset_cells),
        "Node": Printer((
            name_column(), Column("Status", "string", "The status of the node"),
            Column("Roles", "string", "The roles of the node"), age_column(),
            Column("Version", "string", doc("V1NodeSystemInfo", "kubeletVersion")),
            Column("Internal-IP", "string", doc("V1NodeStatus", "addresses"), 1),
            Column("External-IP", "string", doc("V1NodeStatus", "addresses"), 1),
            Column("OS-Image", "string", doc("V1NodeSystemInfo", "osImage"), 1),
            Column("Kernel-Version", "string", doc("V1NodeSystemInfo", "kernelVersion"), 1),
            Column("Container-Runtime", "string", doc("V1NodeSystemInfo", "containerRuntimeVersion"), 1),
        ), _node_cells),
        "Service": Printer((
            name_column(), Column("Type", "string", doc("V1ServiceSpec", "type")),
            Column("Cluster-IP", "string", doc("V1ServiceSpec", "clusterIP")),
            Column("External-IP", "string", doc("V1ServiceSpec", "externalIPs")),
            Column("Port(s)", "string", doc("V1ServiceSpec", "ports")), age_column(),
            Column("Selector", "string", doc("V1ServiceSpec", "selector"), 1),
        ), _service_cells),
    }


def printer_for(kind: str) -> Printer:
    """The printer of a kind (both event APIs share ``Event``), NAME/AGE for the rest."""
    return _printers().get(kind) or Printer((name_column(), age_column()), _default_cells)
