"""The workload's own model of the cluster it drives: nodes, owners, pods, Deployments,
StatefulSets, CronJobs, Services, and the counters of what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubestream.sim.workload.bodies import _owner_ref
from kubestream.sim.workload.recorders import ObjectRef

# ---- the workload's model of the cluster ----------------------------------------------------

@dataclass(slots=True)
class _Node:
    name: str
    index: int
    uid: str = ""
    next_ip: int = 2

    def allocate_ip(self) -> str:
        ip = f"10.244.{self.index}.{self.next_ip}"
        self.next_ip = self.next_ip + 1 if self.next_ip < 254 else 2
        return ip


@dataclass(slots=True)
class _Owner:
    kind: str
    api_version: str
    namespace: str
    name: str
    uid: str = ""

    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.name, self.namespace, self.uid, self.api_version)

    def owner_reference(self) -> dict[str, Any]:
        return _owner_ref(self.kind, self.name, self.uid, self.api_version)


@dataclass(slots=True)
class _Pod:
    namespace: str
    name: str
    app: str
    owner: _Owner | None
    group: str
    """deployment, statefulset, daemonset, job or bare."""
    spec: dict[str, Any]
    labels: dict[str, str]
    uid: str = ""
    resource_version: str = ""
    node: _Node | None = None
    stage: str = "created"
    next_tick: int = 0
    expires_tick: int | None = None
    crashloop: bool = False
    next_crash_tick: int = 0
    restarts: int = 0
    ephemeral: bool = False
    unschedulable_once: bool = False
    ip: str = ""
    container_ids: dict[str, str] = field(default_factory=dict)
    image_ids: dict[str, str] = field(default_factory=dict)
    started: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def ref(self, field_path: str = "") -> ObjectRef:
        return ObjectRef("Pod", self.name, self.namespace, self.uid, "v1", self.resource_version, field_path)


@dataclass(slots=True)
class _Deployment:
    owner: _Owner
    replicas: int
    image: str
    rs: _Owner
    rs_hash: str
    revision: int = 1
    pods: list[str] = field(default_factory=list)
    old_rs: list[_Owner] = field(default_factory=list)


@dataclass(slots=True)
class _StatefulSet:
    owner: _Owner
    replicas: int
    image: str
    revision_hash: str
    recreate_at: dict[int, int] = field(default_factory=dict)
    """Ordinal → tick at which the controller re-creates the deleted pod."""


@dataclass(slots=True)
class _CronJob:
    owner: _Owner
    image: str
    next_fire: int
    jobs: list[tuple[_Owner, str]] = field(default_factory=list)
    """(Job, its pod's name), oldest first."""


@dataclass(slots=True)
class _Service:
    namespace: str
    name: str
    app: str
    slice_name: str
    dirty: bool = True


@dataclass(slots=True)
class WorkloadStats:
    """What the workload did so far."""

    ticks: int = 0
    writes: dict[str, int] = field(default_factory=dict)
    """verb → successful API writes, event writes included."""
    errors: list[str] = field(default_factory=list)
    """API errors the workload did not expect (kept to the first 100)."""
