"""The state every behaviour of the workload shares, its rate helpers and its event emission:
one recorder per (component, host), as client-go components keep theirs."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubestream.sim.storage.cluster import SimApiError
from kubestream.sim.storage.names import SimClock
from kubestream.sim.workload.cluster_model import (
    WorkloadStats,
    _CronJob,
    _Deployment,
    _Node,
    _Owner,
    _Pod,
    _Service,
    _StatefulSet,
)
from kubestream.sim.workload.event_ledger import EventLedger
from kubestream.sim.workload.journal import _CountingApi, _Journal
from kubestream.sim.workload.recorders import LegacyRecorder, ObjectRef, Recorder, SeriesRecorder
from kubestream.sim.workload.scenario import ClusterApi, WorkloadConfig

log = logging.getLogger(__name__)


class WorkloadBase:
    """The workload's state (created by ``__init__``), rate helpers and event emission."""

    def __init__(self, cluster: ClusterApi, config: WorkloadConfig | None = None,
                 ledger: EventLedger | None = None) -> None:
        self.config = config or WorkloadConfig()
        self.ledger = ledger if ledger is not None else EventLedger()
        self.stats = WorkloadStats()
        self.tick_digests: list[str] = []
        cfg = self.config
        self.clock = SimClock(cfg.start_time if cfg.start_time is not None else time.time(), cfg.tick_s)
        self._journal = _Journal() if cfg.journal else None
        self._api = _CountingApi(cluster, self.stats, self._journal)
        self._rng = random.Random(cfg.seed)
        self._recorders: dict[tuple[str, str], Recorder] = {}
        self._nodes: list[_Node] = []
        self._namespaces: list[str] = []
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._deployments: list[_Deployment] = []
        self._statefulsets: list[_StatefulSet] = []
        self._daemonsets: list[_Owner] = []
        self._cronjobs: list[_CronJob] = []
        self._services: list[_Service] = []
        self._carry: dict[str, float] = {}
        self._budget = 0.0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def tick(self) -> int:
        """Ticks run so far (the next ``step()`` runs this tick number)."""
        return self.stats.ticks

    # ---- helpers --------------------------------------------------------------------------

    def _per_tick(self, rate_per_s: float) -> float:
        return rate_per_s * self.config.tick_s

    def _due(self, name: str, rate_per_s: float) -> int:
        """How many times a rate fires this tick (deterministic accumulator, no randomness)."""
        carry = self._carry.get(name, 0.0) + self._per_tick(rate_per_s)
        fired = int(carry)
        self._carry[name] = carry - fired
        return fired

    def _ticks(self, seconds: float) -> int:
        return max(1, round(seconds / self.config.tick_s))

    def _error(self, what: str, exc: SimApiError) -> None:
        log.warning("workload: %s failed: %s", what, exc)
        if len(self.stats.errors) < 100:
            self.stats.errors.append(f"{what}: {exc.code} {exc}")

    @contextmanager
    def _tolerate(self, what: str) -> Iterator[None]:
        try:
            yield
        except SimApiError as exc:
            self._error(what, exc)

    def _recorder(self, component: str, host: str) -> Recorder:
        key = (component, host)
        recorder = self._recorders.get(key)
        if recorder is None:
            mode = self.config.events_api
            series = mode == "events.k8s.io" or (mode == "mixed" and component == "default-scheduler")
            if series:
                recorder = SeriesRecorder(
                    self._api, controller=component, host=host, ledger=self.ledger, clock=self.clock.now,
                    nanos=self.clock.unique_ns, finish_after_s=self.config.series_finish_s,
                    refresh_every_s=self.config.series_refresh_s)
            else:
                recorder = LegacyRecorder(self._api, component=component, host=host, ledger=self.ledger,
                                          clock=self.clock.now, nanos=self.clock.unique_ns)
            self._recorders[key] = recorder
        return recorder

    def _emit(self, component: str, host: str, ref: ObjectRef, type_: str, reason: str, message: str,
              action: str = "") -> None:
        self._budget -= 1
        self._recorder(component, host).event(ref, type_, reason, message, action=action)

    def _kubelet(self, pod: _Pod, type_: str, reason: str, message: str, container: str = "app",
                 where: str = "containers") -> None:
        node = pod.node.name if pod.node else ""
        self._emit("kubelet", node, pod.ref(f"spec.{where}{{{container}}}" if container else ""), type_, reason,
                   message)

    def _note_pod(self, pod: _Pod, answer: dict[str, Any]) -> None:
        meta = answer.get("metadata", {})
        pod.uid = str(meta.get("uid", pod.uid))
        pod.resource_version = str(meta.get("resourceVersion", pod.resource_version))
