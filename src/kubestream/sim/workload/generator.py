"""A deterministic cluster workload for the simulated API server, with a ledger of events.

``Workload(cluster, config, ledger)`` populates a ``SimCluster`` the way a real cluster's
controllers and kubelets would: nodes, namespaces, Deployments → ReplicaSets → Pods,
StatefulSets (same pod names, new uids), DaemonSets, CronJobs → Jobs → Pods, Services with
EndpointSlices, crash-looping and short-lived pods, and the Events every component records
(through ``kubestream.sim.workload.recorders``, so counts and series behave as in client-go).

Determinism: ``step()`` runs one tick. The sequence of API writes depends only on the seed and
the tick number: all randomness comes from one ``random.Random(seed)`` consumed in a fixed
order, and every timestamp the workload writes comes from a logical clock
(``start_time + tick * tick_s``). The wall clock only paces ``run_for``/``start``. Server-set
fields (uid, resourceVersion, creationTimestamp) differ between runs; ``tick_digests`` (with
``journal=True``) hashes each tick's writes with those fields replaced by stable aliases. One
caveat: a StatefulSet pod is re-created once the old one is gone (as the controller does); with
a pod grace period longer than the re-create delay (``delete_grace_s`` or the server default)
that moment depends on wall time. Use ``delete_grace_s=0`` where determinism matters.

Event rate: ``events_per_s`` is a target in simulated time. Lifecycle events come first;
"noise" that real clusters produce in bulk (BackOff and probe-failure repeats, OOM kills on
nodes) fills the rest of each tick's budget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubestream.sim.workload.noise import Noise
from kubestream.sim.workload.scenario import ClusterApi, WorkloadConfig

log = logging.getLogger(__name__)


class Workload(Noise):
    """Drives a ``SimCluster`` like a busy real cluster (see the module docstring): the public
    control (``step``, ``run_for``, ``start``/``stop``, stats) over the behaviours it inherits,
    one module each (base → services → pods → controllers → churn → noise)."""

    # ---- public control -------------------------------------------------------------------

    def step(self) -> None:
        """Run one tick: the same writes for the same seed and tick number."""
        with self._lock:
            self.clock.set_tick(self.stats.ticks)
            if self.stats.ticks == 0:
                self._bootstrap()
            self._budget = max(self._budget, -self._per_tick(self.config.events_per_s)) + \
                self._per_tick(self.config.events_per_s)
            self._advance_pods()
            self._churn()
            self._update_endpoints()
            self._noise()
            for recorder in self._recorders.values():
                recorder.tick()
            if self._journal is not None:
                self.tick_digests.append(self._journal.close_tick())
            self.stats.ticks += 1

    def run_for(self, seconds: float) -> int:
        """Run ticks in this thread for ``seconds`` of wall time, one per ``tick_s`` (catching
        up without sleeping when behind). Returns the ticks run."""
        return self._paced(time.monotonic() + seconds)

    def start(self) -> None:
        """Run in a background thread until ``stop()`` (or ``config.duration_s``)."""
        if self._thread is not None:
            raise RuntimeError("workload already started")
        self._stop.clear()
        deadline = time.monotonic() + self.config.duration_s if self.config.duration_s else float("inf")
        self._thread = threading.Thread(target=self._paced_safely, args=(deadline,), name="sim-workload",
                                        daemon=True)
        self._thread.start()

    def stop(self, *, flush: bool = True) -> None:
        """Stop the background thread; by default write pending series counts (``flush``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if flush:
            self.flush()

    def flush(self) -> int:
        """Write every occurrence still counted only in a recorder's memory. Returns writes."""
        with self._lock:
            return sum(r.flush() for r in self._recorders.values())

    def event_stats(self) -> dict[str, int]:
        """Event occurrences recorded and API writes made, over all recorders."""
        with self._lock:
            recs = list(self._recorders.values())
        return {
            "occurrences": sum(r.stats.occurrences for r in recs),
            "posts": sum(r.stats.posts for r in recs),
            "patches": sum(r.stats.patches for r in recs),
            "writes": sum(r.stats.writes for r in recs),
            "failures": sum(r.stats.failures for r in recs),
        }

    def pods_on(self, node: str) -> list[str]:
        """``namespace/name`` of the workload's pods bound to a node."""
        with self._lock:
            return [f"{p.namespace}/{p.name}" for p in self._pods.values() if p.node and p.node.name == node]

    @property
    def node_names(self) -> list[str]:
        """The simulated nodes, in creation order (for a node log writer to pick one)."""
        return [n.name for n in self._nodes]

    def _paced_safely(self, deadline: float) -> None:
        try:
            self._paced(deadline)
        except Exception as exc:  # a background thread must not die silently
            log.exception("workload thread failed")
            self.stats.errors.append(f"thread died: {exc!r}")

    def _paced(self, deadline: float) -> int:
        t0 = time.monotonic()
        done = 0
        while not self._stop.is_set():
            due = t0 + done * self.config.tick_s
            if due >= deadline:
                break
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self.step()
            done += 1
        return done


def run_workload_from_cli(cluster: ClusterApi, args: Any) -> Workload:
    """Start a background workload for ``kubestream sim --workload`` and the demo.

    Reads optional attributes of ``args`` (an ``argparse.Namespace``): ``seed``,
    ``events_per_s``, ``events_api``, ``nodes``, ``namespaces``, ``deployments``.
    """
    defaults = WorkloadConfig()

    def opt(name: str, default: Any, cast: Callable[[Any], Any]) -> Any:
        value = getattr(args, name, None)
        return default if value is None else cast(value)

    config = WorkloadConfig(
        seed=opt("seed", defaults.seed, int),
        events_per_s=opt("events_per_s", defaults.events_per_s, float),
        events_api=opt("events_api", defaults.events_api, str),
        nodes=opt("nodes", defaults.nodes, int),
        namespaces=opt("namespaces", defaults.namespaces, int),
        deployments=opt("deployments", defaults.deployments, int),
    )
    workload = Workload(cluster, config)
    workload.start()
    log.info("workload started: seed=%d, %s events/s, events API %s", config.seed, config.events_per_s,
             config.events_api)
    return workload
