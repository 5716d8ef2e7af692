"""The events real clusters emit in bulk (BackOff and probe-failure repeats, OOM kills), filling
each tick's event budget after the lifecycle events."""

from __future__ import annotations

from kubestream.sim.workload.churn import Churn
from kubestream.sim.workload.recorders import ObjectRef


class Noise(Churn):
    """Bulk events that fill the rest of each tick's event budget."""

    # ---- noise ----------------------------------------------------------------------------

    def _noise(self) -> None:
        """Fill the tick's event budget with the repeats real clusters are full of."""
        if self._budget < 1:
            return
        running = [p for p in self._pods.values() if p.stage == "running" and p.node is not None]
        if not running:
            return
        crashing = [p for p in running if p.crashloop and p.restarts > 0]
        rng = self._rng
        while self._budget >= 1:
            roll = rng.random()
            if crashing and roll < 0.35:
                self._backoff(rng.choice(crashing))
            elif roll < 0.75:
                pod = rng.choice(running)
                # A few fixed messages per pod: identical repeats are counted, distinct ones
                # eventually get aggregated.
                variant = rng.randint(0, 12)
                if variant < 9:
                    message = "Readiness probe failed: HTTP probe failed with statuscode: 503"
                else:
                    message = (f'Readiness probe failed: Get "http://{pod.ip}:8080/ready": context deadline '
                               f"exceeded (Client.Timeout exceeded while awaiting headers) #{variant}")
                self._kubelet(pod, "Warning", "Unhealthy", message)
            elif roll < 0.9:
                pod = rng.choice(running)
                self._kubelet(pod, "Warning", "FailedMount",
                              f'MountVolume.SetUp failed for volume "config" : configmap "{pod.app}-config" not found',
                              container="")
            else:
                node = rng.choice(self._nodes)
                victim = rng.choice(running)
                self._emit("kernel-monitor", node.name, ObjectRef("Node", node.name, "", node.name), "Warning",
                           "OOMKilling",
                           f"Memory cgroup out of memory: Killed process {rng.randint(1000, 99999)} ({victim.app}) "
                           f"total-vm:{rng.randint(100000, 900000)}kB, anon-rss:{rng.randint(10000, 500000)}kB, "
                           f"file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:{rng.randint(200, 2000)}kB "
                           f"oom_score_adj:{rng.choice((-997, 999, 1000))}")
