"""``kubestream timeline``: the events and log lines of a pod, workload or namespace, in order.

The target's pod incarnations are found by pod UID, from events and logs alike (a log line
whose pod was gone before the agent enriched it still has the UID from its file path, and an
event about the pod names its UID), and every row is joined on that UID: a StatefulSet pod
re-created under the same name is another pod, shown as another object (``pod/db-0 (1a2b3c4d)``).
Events about the workload's own objects (the Deployment, its ReplicaSets, the Jobs of a
CronJob) are part of the workload's timeline too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from kubestream.errors import ConfigError

KINDS: Final = {
    "po": "Pod", "pod": "Pod", "pods": "Pod",
    "deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
    "sts": "StatefulSet", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
    "ds": "DaemonSet", "daemonset": "DaemonSet", "daemonsets": "DaemonSet",
    "job": "Job", "jobs": "Job",
    "cj": "CronJob", "cronjob": "CronJob", "cronjobs": "CronJob",
    "rs": "ReplicaSet", "replicaset": "ReplicaSet", "replicasets": "ReplicaSet",
    "ns": "Namespace", "namespace": "Namespace", "namespaces": "Namespace",
}
COLUMNS: Final = ("time", "source", "severity", "namespace", "object", "container", "reason", "message", "pod_uid",
                  "cluster")


@dataclass(frozen=True)
class Target:
    """What the timeline is about: ``kind`` is a Kubernetes kind or ``Namespace``."""

    kind: str
    name: str
    namespace: str | None = None

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace and self.kind != "Namespace" else ""
        return f"{self.kind.lower()}/{self.name}{where}"


def parse_target(text: str | None, namespace: str | None) -> Target:
    """``deploy/checkout``, ``sts/db``, ``pod/web-0`` (or just ``web-0``), ``ns/shop`` (or only ``-n``)."""
    if not text:
        if namespace:
            return Target("Namespace", namespace, namespace)
        raise ConfigError("name a pod, workload (deploy/NAME, sts/, ds/, job/, cronjob/) or namespace (ns/NAME "
                          "or -n NAME)", key="timeline")
    kind_text, slash, name = text.partition("/")
    if not slash:
        kind_text, name = "pod", text
    kind = KINDS.get(kind_text.strip().lower())
    if kind is None:
        raise ConfigError(f"unknown kind {kind_text!r} in {text!r}: use one of "
                          f"{', '.join(sorted({k for k in KINDS if len(k) <= 6}))}", key="timeline")
    if not name.strip():
        raise ConfigError(f"{text!r} names no object", key="timeline")
    name = name.strip()
    if kind == "Namespace":
        return Target(kind, name, name)
    return Target(kind, name, namespace)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in_namespace(target: Target) -> str:
    return f" AND namespace = {_quote(target.namespace)}" if target.namespace else ""


def _owns(target: Target) -> str:
    """Rows of objects the target owns (any level of the owner chain) or that are the target."""
    ref = _quote(f"{target.kind}/{target.name}")
    return (f"(list_contains(owner_chain, {ref}) OR (workload_kind = {_quote(target.kind)} "
            f"AND workload_name = {_quote(target.name)}))")


def timeline_sql(target: Target, *, limit: int | None = None) -> str:
    """The SQL of the timeline of ``target`` over the loaded window (columns: ``COLUMNS``)."""
    ns = _in_namespace(target)
    if target.kind == "Namespace":
        event_filter = log_filter = f"namespace = {_quote(target.name)}"
        pods = "SELECT NULL::VARCHAR AS pod_uid WHERE false"
    else:
        if target.kind == "Pod":
            match = f"pod = {_quote(target.name)}"
            about_target = "false"
        else:
            match = _owns(target)
            about_target = (f"(involved_kind = {_quote(target.kind)} AND involved_name = {_quote(target.name)}) "
                            f"OR {match}")
        pods = (f"SELECT pod_uid FROM events WHERE pod_uid IS NOT NULL AND {match}{ns} "
                f"UNION SELECT pod_uid FROM logs WHERE pod_uid IS NOT NULL AND {match}{ns}")
        event_filter = f"pod_uid IN (SELECT pod_uid FROM pods) OR (({about_target}){ns})"
        log_filter = "pod_uid IN (SELECT pod_uid FROM pods)"
    pod_object = "'pod/' || coalesce(pod, '?') || coalesce(' (' || left(pod_uid, 8) || ')', '')"
    sql = f"""
WITH pods AS ({pods}),
rows AS (
  SELECT time, 'event' AS source, type AS severity, namespace,
         CASE WHEN pod_uid IS NOT NULL THEN {pod_object}
              ELSE lower(coalesce(involved_kind, '?')) || '/' || coalesce(involved_name, '?') END AS object,
         container, reason, message, pod_uid, cluster, 0 AS source_order, resource_version AS seq
  FROM events WHERE {event_filter}
  UNION ALL
  SELECT time, 'log', stream, namespace, {pod_object}, container, NULL, message, pod_uid, cluster, 1, file_offset
  FROM logs WHERE {log_filter}
)
SELECT {", ".join(COLUMNS)} FROM rows
ORDER BY time NULLS FIRST, source_order, object, seq"""
    return sql + (f"\nLIMIT {int(limit)}" if limit else "")


@dataclass(frozen=True)
class TimelineRow:
    """One row of a timeline, as the HTML page and the tests use it."""

    values: tuple[Any, ...]

    def get(self, column: str) -> Any:
        return self.values[COLUMNS.index(column)]
