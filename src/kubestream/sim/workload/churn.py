"""The churn scheduler: Deployment pods replaced, rollouts, StatefulSet restarts, CronJobs firing
and short-lived pods, each at its configured rate per simulated second."""

from __future__ import annotations

from kubestream.sim.storage.cluster import SimApiError
from kubestream.sim.storage.names import (
    random_suffix,
    rfc3339,
)
from kubestream.sim.workload.bodies import (
    _SHORT_LIVED,
    pod_labels,
)
from kubestream.sim.workload.cluster_model import (
    _CronJob,
    _Deployment,
    _Owner,
)
from kubestream.sim.workload.controllers import Controllers


class Churn(Controllers):
    """Changes at the configured rates: replacements, rollouts, restarts, Jobs, short-lived pods."""

    # ---- churn ----------------------------------------------------------------------------

    def _churn(self) -> None:
        cfg = self.config
        for _ in range(self._due("pod_churn", cfg.pod_churn_per_s)):
            self._replace_deployment_pod()
        for _ in range(self._due("rollout", cfg.rollouts_per_s)):
            if self._deployments:
                self._rollout(self._rng.choice(self._deployments))
        for _ in range(self._due("sts_restart", cfg.statefulset_restarts_per_s)):
            self._restart_statefulset_pod()
        for sts in self._statefulsets:
            for ordinal, at in list(sts.recreate_at.items()):
                if at <= self.tick and not self._still_stored(sts.owner.namespace, f"{sts.owner.name}-{ordinal}"):
                    del sts.recreate_at[ordinal]
                    self._statefulset_pod(sts, ordinal)
        for cj in self._cronjobs:
            if cj.next_fire <= self.tick:
                cj.next_fire = self.tick + self._ticks(cfg.cronjob_period_s)
                self._fire_cronjob(cj)
        for _ in range(self._due("short_lived", cfg.short_lived_per_s)):
            prefix = self._rng.choice(_SHORT_LIVED)
            ns = self._rng.choice(self._namespaces)
            name = f"{prefix}-{random_suffix(self._rng)}"
            self._new_pod(ns, name, prefix, "docker.io/library/busybox:1.36.1",
                          pod_labels(prefix, {"run": name}, self.config.pod_labels), None, "bare")

    def _replace_deployment_pod(self) -> None:
        candidates = [d for d in self._deployments if d.pods]
        if not candidates:
            return
        d = self._rng.choice(candidates)
        name = self._rng.choice(d.pods)
        d.pods.remove(name)
        pod = self._pods.get((d.owner.namespace, name))
        if pod is not None:
            if pod.stage == "running":
                self._kubelet(pod, "Normal", "Killing", "Stopping container app")
            self._delete_pod(pod)
        self._emit("replicaset-controller", "", d.rs.ref(), "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        self._deployment_pod(d)

    def _rollout(self, d: _Deployment) -> None:
        old, old_pods = d.rs, list(d.pods)
        d.revision += 1
        d.pods = []
        with self._tolerate(f"roll deployment {d.owner.namespace}/{d.owner.name}"):
            self._api.patch("deployments", d.owner.namespace, d.owner.name, {
                "metadata": {"annotations": {"deployment.kubernetes.io/revision": str(d.revision)}},
                "spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": rfc3339(self.clock.now())}}}}},
                patch_type="merge", group="apps")
        self._new_replicaset(d)
        with self._tolerate(f"scale down {old.namespace}/{old.name}"):
            self._api.patch("replicasets", old.namespace, old.name, {"spec": {"replicas": 0}}, patch_type="merge",
                            group="apps")
        self._emit("deployment-controller", "", d.owner.ref(), "Normal", "ScalingReplicaSet",
                   f"Scaled down replica set {old.name} from {len(old_pods)} to 0")
        for name in old_pods:
            pod = self._pods.get((old.namespace, name))
            if pod is not None:
                if pod.stage == "running":
                    self._kubelet(pod, "Normal", "Killing", "Stopping container app")
                self._delete_pod(pod)
            self._emit("replicaset-controller", "", old.ref(), "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        d.old_rs.append(old)
        if len(d.old_rs) > 2:  # a short revision history keeps the store small
            gone = d.old_rs.pop(0)
            with self._tolerate(f"delete {gone.namespace}/{gone.name}"):
                self._api.delete("replicasets", gone.namespace, gone.name, group="apps")

    def _restart_statefulset_pod(self) -> None:
        candidates = [(s, p) for s in self._statefulsets for p in self._pods.values()
                      if p.owner is s.owner and p.stage == "running"]
        if not candidates:
            return
        sts, pod = self._rng.choice(candidates)
        self._kubelet(pod, "Normal", "Killing", "Stopping container app")
        self._delete_pod(pod)
        self._emit("statefulset-controller", "", sts.owner.ref(), "Normal", "SuccessfulDelete",
                   f"delete Pod {pod.name} in StatefulSet {sts.owner.name} successful")
        grace = self.config.delete_grace_s
        delay = self._ticks((1.0 if grace is None else grace) + self.config.tick_s)
        sts.recreate_at[int(pod.name.rsplit("-", 1)[1])] = self.tick + delay

    def _still_stored(self, namespace: str, name: str) -> bool:
        """Is the old pod still terminating? The StatefulSet controller waits until it is gone
        (a read, so the sequence of writes stays the same when the grace period is short)."""
        try:
            self._api.get("pods", namespace, name)
        except SimApiError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    def _fire_cronjob(self, cj: _CronJob) -> None:
        now = self.clock.now()
        # cronjob-controller names jobs after the scheduled time in minutes; faster sim schedules
        # use seconds so names stay unique.
        stamp = int(now // 60) if self.config.cronjob_period_s >= 60 else int(now)
        job = _Owner("Job", "batch/v1", cj.owner.namespace, f"{cj.owner.name}-{stamp}")
        self._create_owner("jobs", "batch", job, {
            "metadata": {"labels": {"app": cj.owner.name}, "ownerReferences": [cj.owner.owner_reference()],
                         "annotations": {"batch.kubernetes.io/cronjob-scheduled-timestamp": rfc3339(now)}},
            "spec": {"backoffLimit": 6, "completions": 1, "parallelism": 1,
                     "template": self._job_template(cj.owner.name, cj.image, {"app": cj.owner.name})}})
        self._emit("cronjob-controller", "", cj.owner.ref(), "Normal", "SuccessfulCreate", f"Created job {job.name}")
        labels = pod_labels(cj.owner.name, {
            "batch.kubernetes.io/controller-uid": job.uid, "batch.kubernetes.io/job-name": job.name,
            "controller-uid": job.uid, "job-name": job.name}, self.config.pod_labels)
        pod = self._new_pod(job.namespace, f"{job.name}-{random_suffix(self._rng)}", cj.owner.name, cj.image,
                            labels, job, "job")
        if pod is not None:
            self._emit("job-controller", "", job.ref(), "Normal", "SuccessfulCreate", f"Created pod: {pod.name}")
        cj.jobs.append((job, pod.name if pod else ""))
        while len(cj.jobs) > 3:  # successfulJobsHistoryLimit
            old, pod_name = cj.jobs.pop(0)
            with self._tolerate(f"delete job {old.namespace}/{old.name}"):
                self._api.delete("jobs", old.namespace, old.name, group="batch")
            old_pod = self._pods.get((old.namespace, pod_name))
            if old_pod is not None:  # the garbage collector removes the job's pod
                self._delete_pod(old_pod)
            self._emit("cronjob-controller", "", cj.owner.ref(), "Normal", "SuccessfulDelete",
                       f"Deleted job {old.name}")
