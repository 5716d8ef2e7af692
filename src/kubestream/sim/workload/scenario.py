"""What the workload simulates: ``WorkloadConfig`` (sizes and rates per simulated second) and
the in-process cluster API it drives (``ClusterApi``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

EventsApiMode = Literal["core", "events.k8s.io", "mixed"]


class ClusterApi(Protocol):
    """The synchronous in-process API of ``kubestream.sim.storage.cluster.SimCluster``."""

    def create(self, plural: str, obj: dict[str, Any], *, group: str = "", version: str = "v1") -> dict[str, Any]: ...

    def get(self, plural: str, namespace: str | None, name: str, *, group: str = "",
            version: str = "v1") -> dict[str, Any]: ...

    def list(self, plural: str, namespace: str | None = None, *, group: str = "", version: str = "v1",
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]: ...

    def update(self, plural: str, obj: dict[str, Any], *, group: str = "", version: str = "v1") -> dict[str, Any]: ...

    def patch(self, plural: str, namespace: str | None, name: str, patch: dict[str, Any], *,
              patch_type: Literal["strategic", "merge"] = "strategic", group: str = "",
              version: str = "v1") -> dict[str, Any]: ...

    def delete(self, plural: str, namespace: str | None, name: str, *, group: str = "", version: str = "v1",
               grace_period_s: float | None = None) -> dict[str, Any]: ...


@dataclass(slots=True)
class WorkloadConfig:
    """What to simulate. Rates are per simulated second."""

    seed: int = 1
    nodes: int = 3
    namespaces: int = 3
    deployments: int = 6
    replicas: tuple[int, int] = (1, 3)
    statefulsets: int = 1
    statefulset_replicas: int = 3
    daemonsets: int = 1
    cronjobs: int = 1
    services: int = 3
    """Services (with an EndpointSlice each) for the first N Deployments."""
    events_per_s: float = 50.0
    tick_s: float = 0.1
    pod_churn_per_s: float = 0.2
    """Deployment pods deleted and replaced by their ReplicaSet."""
    rollouts_per_s: float = 0.01
    statefulset_restarts_per_s: float = 0.05
    cronjob_period_s: float = 60.0
    job_duration_s: float = 2.0
    short_lived_per_s: float = 0.1
    short_lived_lifetime_s: float = 2.0
    crashloop_fraction: float = 0.1
    crashloop_period_s: float = 10.0
    ephemeral_fraction: float = 0.05
    """Running pods that get a ``kubectl debug`` ephemeral container."""
    failed_scheduling_fraction: float = 0.05
    events_api: EventsApiMode = "mixed"
    """core: every recorder is tools/record; events.k8s.io: every one is tools/events; mixed:
    the scheduler on events.k8s.io, kubelets and controllers on core/v1 (as in 1.32)."""
    series_finish_s: float = 360.0
    series_refresh_s: float = 1800.0
    legacy_spam_filter: bool = False
    duration_s: float | None = None
    """Background mode stops by itself after this long (None: until ``stop()``)."""
    start_time: float | None = None
    """Origin of the logical clock (None: the wall clock when the Workload is made)."""
    delete_grace_s: float | None = None
    """Grace period of pod deletions (None: the server's default)."""
    pod_labels: int = 10
    pod_annotations: int = 5
    journal: bool = False
    """Keep ``tick_digests`` (costs a hash of every write)."""

    def __post_init__(self) -> None:
        if self.tick_s <= 0 or self.events_per_s < 0 or self.nodes < 1 or self.namespaces < 1:
            raise ValueError("tick_s > 0, events_per_s >= 0, nodes >= 1 and namespaces >= 1 are required")
        if self.events_api not in ("core", "events.k8s.io", "mixed"):
            raise ValueError(f"events_api must be core, events.k8s.io or mixed, not {self.events_api!r}")
