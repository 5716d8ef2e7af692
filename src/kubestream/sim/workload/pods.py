"""Pod lifecycle as the scheduler and kubelets drive it: scheduling, image pulls, starts,
readiness, crash loops with back-off, ephemeral containers, deletion and Job completion."""

from __future__ import annotations

from typing import Any

from kubestream.sim.storage.cluster import SimApiError
from kubestream.sim.storage.names import (
    container_id,
    image_digest,
    random_suffix,
    rfc3339,
)
from kubestream.sim.workload.bodies import (
    CONTROL_PLANE,
    node_ip,
    pod_annotations,
    pod_spec,
    running_status,
)
from kubestream.sim.workload.cluster_model import (
    _Node,
    _Owner,
    _Pod,
)
from kubestream.sim.workload.services import ServiceEndpoints


class PodLifecycle(ServiceEndpoints):
    """Pods from creation to deletion, with the events the scheduler and kubelet record."""

    # ---- pods -----------------------------------------------------------------------------

    def _new_pod(self, namespace: str, name: str, app: str, image: str, labels: dict[str, str],
                 owner: _Owner | None, group: str, node: _Node | None = None) -> _Pod | None:
        """POST a new (pending, unbound unless ``node``) pod and start following its lifecycle."""
        rng = self._rng
        init = "busybox:1.36.1" if group in ("deployment", "statefulset") else None
        spec = pod_spec(app, image, init_image=init)
        if group == "job":
            spec["restartPolicy"] = "OnFailure"
        elif group == "bare":
            spec["restartPolicy"] = "Never"
        pod = _Pod(namespace, name, app, owner, group, spec, labels, next_tick=self.tick + 1)
        pod.crashloop = group in ("deployment", "statefulset") and rng.random() < self.config.crashloop_fraction
        pod.ephemeral = rng.random() < self.config.ephemeral_fraction
        pod.unschedulable_once = node is None and rng.random() < self.config.failed_scheduling_fraction
        meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels,
                                "annotations": pod_annotations(rng, self.config.pod_annotations)}
        if owner is not None:
            meta["ownerReferences"] = [owner.owner_reference()]
            if group != "statefulset":
                meta["generateName"] = name[: name.rfind("-") + 1]
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        if node is not None:
            # DaemonSet pods carry node affinity; binding them still goes through the scheduler,
            # so the workload binds them on the next tick like any other pod.
            pod.node = node
        try:
            self._note_pod(pod, self._api.create("pods", body))
        except SimApiError as exc:
            self._error(f"create pod {namespace}/{name}", exc)
            return None
        self._pods[pod.key] = pod
        return pod

    def _advance_pods(self) -> None:
        for pod in list(self._pods.values()):
            if pod.next_tick > self.tick and (pod.expires_tick is None or pod.expires_tick > self.tick):
                continue
            if pod.stage == "created":
                self._schedule(pod)
            elif pod.stage == "bound":
                self._start(pod)
            elif pod.stage == "running":
                self._running(pod)

    def _schedule(self, pod: _Pod) -> None:
        if pod.unschedulable_once:
            pod.unschedulable_once = False
            pod.next_tick = self.tick + self._ticks(1.0)
            n = len(self._nodes)
            self._emit("default-scheduler", CONTROL_PLANE, pod.ref(), "Warning", "FailedScheduling",
                       f"0/{n} nodes are available: {n} Insufficient cpu. preemption: 0/{n} nodes are available: "
                       f"{n} No preemption victims found for incoming pod.", action="Scheduling")
            return
        node = pod.node or self._rng.choice(self._nodes)
        try:
            self._note_pod(pod, self._api.patch("pods", pod.namespace, pod.name, {"spec": {"nodeName": node.name}}))
        except SimApiError as exc:
            self._error(f"bind pod {pod.namespace}/{pod.name}", exc)
            return
        pod.node, pod.stage, pod.next_tick = node, "bound", self.tick + 1
        self._emit("default-scheduler", CONTROL_PLANE, pod.ref(), "Normal", "Scheduled",
                   f"Successfully assigned {pod.namespace}/{pod.name} to {node.name}", action="Binding")

    def _start(self, pod: _Pod) -> None:
        rng = self._rng
        assert pod.node is not None
        pod.ip = pod.node.allocate_ip()
        pod.started = self.clock.now()
        containers = (*pod.spec.get("initContainers", []), *pod.spec["containers"])
        for c in containers:
            pod.container_ids[c["name"]] = container_id(rng)
            pod.image_ids[c["name"]] = f"{c['image'].rsplit(':', 1)[0]}@{image_digest(rng)}"
        status = running_status(pod.spec, pod_ip=pod.ip, host_ip=node_ip(pod.node.index), started=pod.started,
                                container_ids=pod.container_ids, image_ids=pod.image_ids)
        with self._tolerate(f"start pod {pod.namespace}/{pod.name}"):
            self._note_pod(pod, self._api.patch("pods", pod.namespace, pod.name, {"status": status}))
        for c in pod.spec.get("initContainers", []):
            self._container_started(pod, c, "initContainers", pulled=True)
        for c in pod.spec["containers"]:
            self._container_started(pod, c, "containers", pulled=rng.random() < 0.7)
        pod.stage = "running"
        pod.next_tick = self.tick + self._ticks(1.0)
        if pod.group == "job":
            pod.expires_tick = self.tick + self._ticks(self.config.job_duration_s)
        elif pod.group == "bare":
            pod.expires_tick = self.tick + self._ticks(self.config.short_lived_lifetime_s)
        if pod.crashloop:
            pod.next_crash_tick = self.tick + self._ticks(self.config.crashloop_period_s)
        self._dirty_endpoints(pod)

    def _container_started(self, pod: _Pod, c: dict[str, Any], where: str, *, pulled: bool) -> None:
        name, image = c["name"], c["image"]
        if pulled:
            self._kubelet(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine', name,
                          where)
        else:
            ms = self._rng.randint(300, 9000)
            self._kubelet(pod, "Normal", "Pulling", f'Pulling image "{image}"', name, where)
            self._kubelet(pod, "Normal", "Pulled",
                          f'Successfully pulled image "{image}" in {ms}ms ({ms + 12}ms including waiting). '
                          f"Image size: {self._rng.randint(5_000_000, 400_000_000)} bytes.", name, where)
        self._kubelet(pod, "Normal", "Created", f"Created container: {name}", name, where)
        self._kubelet(pod, "Normal", "Started", f"Started container {name}", name, where)

    def _running(self, pod: _Pod) -> None:
        if pod.expires_tick is not None and pod.expires_tick <= self.tick:
            if pod.group == "job":
                self._complete_job_pod(pod)
            else:
                self._kubelet(pod, "Normal", "Killing", "Stopping container app")
                self._delete_pod(pod)
            return
        if pod.ephemeral:
            pod.ephemeral = False
            self._add_ephemeral(pod)
        if pod.crashloop and pod.next_crash_tick <= self.tick:
            self._crash(pod)
        pod.next_tick = min(self.tick + self._ticks(1.0), pod.next_crash_tick if pod.crashloop else 1 << 62)

    def _crash(self, pod: _Pod) -> None:
        assert pod.node is not None
        pod.restarts += 1
        pod.next_crash_tick = self.tick + self._ticks(self.config.crashloop_period_s)
        pod.container_ids["app"] = container_id(self._rng)
        status = running_status(pod.spec, pod_ip=pod.ip, host_ip=node_ip(pod.node.index), started=pod.started,
                                container_ids=pod.container_ids, image_ids=pod.image_ids, restarts=pod.restarts,
                                crashlooping=True)
        with self._tolerate(f"crash pod {pod.namespace}/{pod.name}"):
            self._note_pod(pod, self._api.patch("pods", pod.namespace, pod.name,
                                                {"status": {"containerStatuses": status["containerStatuses"],
                                                            "conditions": status["conditions"]}}))
        image = pod.spec["containers"][0]["image"]
        self._kubelet(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
        self._kubelet(pod, "Normal", "Created", "Created container: app")
        self._kubelet(pod, "Normal", "Started", "Started container app")
        self._backoff(pod)

    def _backoff(self, pod: _Pod) -> None:
        self._kubelet(pod, "Warning", "BackOff",
                      f"Back-off restarting failed container app in pod {pod.name}_{pod.namespace}({pod.uid})")

    def _add_ephemeral(self, pod: _Pod) -> None:
        name = f"debugger-{random_suffix(self._rng)}"
        image = "busybox:1.36.1"
        ts = rfc3339(self.clock.now())
        cid = container_id(self._rng)
        with self._tolerate(f"debug pod {pod.namespace}/{pod.name}"):
            self._note_pod(pod, self._api.patch("pods", pod.namespace, pod.name, {
                "spec": {"ephemeralContainers": [{"name": name, "image": image, "targetContainerName": "app",
                                                  "stdin": True, "tty": True, "imagePullPolicy": "IfNotPresent",
                                                  "terminationMessagePath": "/dev/termination-log",
                                                  "terminationMessagePolicy": "File", "resources": {}}]},
                "status": {"ephemeralContainerStatuses": [{
                    "name": name, "state": {"running": {"startedAt": ts}}, "lastState": {}, "ready": False,
                    "restartCount": 0, "image": image, "imageID": f"docker.io/library/busybox@{image_digest(self._rng)}",
                    "containerID": f"containerd://{cid}"}]}}))
        self._container_started(pod, {"name": name, "image": image}, "ephemeralContainers", pulled=True)

    def _delete_pod(self, pod: _Pod) -> None:
        with self._tolerate(f"delete pod {pod.namespace}/{pod.name}"):
            self._api.delete("pods", pod.namespace, pod.name, grace_period_s=self.config.delete_grace_s)
        self._pods.pop(pod.key, None)
        self._dirty_endpoints(pod)

    def _complete_job_pod(self, pod: _Pod) -> None:
        ts = rfc3339(self.clock.now())
        status = {"phase": "Succeeded", "containerStatuses": [{
            "name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": rfc3339(pod.started),
                                                    "finishedAt": ts,
                                                    "containerID": f"containerd://{pod.container_ids['app']}"}},
            "lastState": {}, "ready": False, "restartCount": 0, "image": pod.spec["containers"][0]["image"],
            "imageID": pod.image_ids["app"], "containerID": f"containerd://{pod.container_ids['app']}",
            "started": False}]}
        with self._tolerate(f"complete pod {pod.namespace}/{pod.name}"):
            self._note_pod(pod, self._api.patch("pods", pod.namespace, pod.name, {"status": status}))
        pod.stage, pod.expires_tick = "done", None
        job = pod.owner
        assert job is not None
        with self._tolerate(f"complete job {job.namespace}/{job.name}"):
            self._api.patch("jobs", job.namespace, job.name, {"status": {
                "succeeded": 1, "completionTime": ts, "startTime": rfc3339(pod.started),
                "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": ts,
                                "lastTransitionTime": ts}]}}, patch_type="merge", group="batch")
        self._emit("job-controller", "", job.ref(), "Normal", "Completed", "Job completed")
        for cj in self._cronjobs:
            if any(j.name == job.name for j, _ in cj.jobs):
                self._emit("cronjob-controller", "", cj.owner.ref(), "Normal", "SawCompletedJob",
                           f"Saw completed job: {job.name}, condition: Complete")
