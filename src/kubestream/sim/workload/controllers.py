"""The cluster's bootstrap and its controllers' objects: nodes, namespaces, Deployments and
ReplicaSets, Services, StatefulSets, DaemonSets and CronJobs, each with its first pods."""

from __future__ import annotations

from typing import Any

from kubestream.sim.storage.names import (
    pod_template_hash,
    random_suffix,
)
from kubestream.sim.workload.bodies import (
    _APPS,
    _CRONJOBS,
    _DAEMONSETS,
    _NAMESPACES,
    _STATEFULSETS,
    _ZONES,
    _image,
    namespace_object,
    node_object,
    pod_labels,
    pod_spec,
)
from kubestream.sim.workload.cluster_model import (
    _CronJob,
    _Deployment,
    _Node,
    _Owner,
    _Service,
    _StatefulSet,
)
from kubestream.sim.workload.pods import PodLifecycle
from kubestream.sim.workload.recorders import ObjectRef


class Controllers(PodLifecycle):
    """Nodes and the workload controllers' objects, created at bootstrap and on demand."""

    # ---- bootstrap ------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        cfg = self.config
        rng = self._rng
        for i in range(cfg.nodes):
            self._add_node(i)
        for i in range(cfg.namespaces):
            base = _NAMESPACES[i % len(_NAMESPACES)]
            name = base if i < len(_NAMESPACES) else f"{base}-{i // len(_NAMESPACES)}"
            with self._tolerate(f"create namespace {name}"):
                self._api.create("namespaces", namespace_object(name, base))
            self._namespaces.append(name)
        for i in range(cfg.deployments):
            app = _APPS[i % len(_APPS)] + ("" if i < len(_APPS) else f"-{i // len(_APPS)}")
            self._add_deployment(self._namespaces[i % len(self._namespaces)], app, rng.randint(*cfg.replicas))
        for d in self._deployments[: cfg.services]:
            self._add_service(d)
        for i in range(cfg.statefulsets):
            name = _STATEFULSETS[i % len(_STATEFULSETS)] + ("" if i < len(_STATEFULSETS) else f"-{i}")
            self._add_statefulset(self._namespaces[i % len(self._namespaces)], name)
        for i in range(cfg.daemonsets):
            name = _DAEMONSETS[i % len(_DAEMONSETS)] + ("" if i < len(_DAEMONSETS) else f"-{i}")
            self._add_daemonset(name)
        for i in range(cfg.cronjobs):
            name = _CRONJOBS[i % len(_CRONJOBS)] + ("" if i < len(_CRONJOBS) else f"-{i}")
            self._add_cronjob(self._namespaces[i % len(self._namespaces)], name, first_fire=1 + i)

    def _add_node(self, index: int) -> None:
        name = f"sim-worker-{index}"
        node = _Node(name, index)
        with self._tolerate(f"create node {name}"):
            answer = self._api.create("nodes", node_object(name, index, _ZONES[index % len(_ZONES)],
                                                           self.clock.now()))
            node.uid = str(answer["metadata"]["uid"])
        self._nodes.append(node)
        # kubelet refers to its node with the node name as uid (kubelet.go nodeRef).
        ref = ObjectRef("Node", name, "", name)
        for reason, message in (
            ("Starting", "Starting kubelet."),
            ("NodeHasSufficientMemory", f"Node {name} status is now: NodeHasSufficientMemory"),
            ("NodeHasNoDiskPressure", f"Node {name} status is now: NodeHasNoDiskPressure"),
            ("NodeHasSufficientPID", f"Node {name} status is now: NodeHasSufficientPID"),
            ("NodeAllocatableEnforced", "Updated Node Allocatable limit across pods"),
            ("NodeReady", f"Node {name} status is now: NodeReady"),
        ):
            self._emit("kubelet", name, ref, "Normal", reason, message)
        self._emit("node-controller", "", ObjectRef("Node", name, "", node.uid), "Normal", "RegisteredNode",
                   f"Node {name} event: Registered Node {name} in Controller")

    def _create_owner(self, plural: str, group: str, owner: _Owner, body: dict[str, Any]) -> None:
        body = {"apiVersion": owner.api_version, "kind": owner.kind,
                **body, "metadata": {"name": owner.name, "namespace": owner.namespace, **body.get("metadata", {})}}
        with self._tolerate(f"create {owner.kind} {owner.namespace}/{owner.name}"):
            answer = self._api.create(plural, body, group=group)
            owner.uid = str(answer["metadata"]["uid"])

    def _template(self, app: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"labels": labels}, "spec": pod_spec(app, image, init_image="busybox:1.36.1")}

    def _job_template(self, app: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
        # batch validation: a Job's pods restart OnFailure or Never, never Always.
        template = self._template(app, image, labels)
        template["spec"]["restartPolicy"] = "OnFailure"
        return template

    def _add_deployment(self, namespace: str, app: str, replicas: int) -> None:
        image = _image(self._rng, app)
        owner = _Owner("Deployment", "apps/v1", namespace, app)
        selector = {"matchLabels": {"app": app}}
        self._create_owner("deployments", "apps", owner, {
            "metadata": {"labels": {"app": app}, "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": replicas, "selector": selector, "revisionHistoryLimit": 10,
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                                             "maxSurge": "25%"}},
                     "template": self._template(app, image, {"app": app})}})
        d = _Deployment(owner, replicas, image, _Owner("ReplicaSet", "apps/v1", namespace, ""), "")
        self._deployments.append(d)
        self._new_replicaset(d)

    def _new_replicaset(self, d: _Deployment) -> None:
        """A new ReplicaSet revision for the Deployment, scaled up with fresh pods."""
        d.rs_hash = pod_template_hash(self._rng)
        app = d.owner.name
        rs = _Owner("ReplicaSet", "apps/v1", d.owner.namespace, f"{app}-{d.rs_hash}")
        labels = {"app": app, "pod-template-hash": d.rs_hash}
        body = {"metadata": {"labels": labels, "ownerReferences": [d.owner.owner_reference()],
                             "annotations": {"deployment.kubernetes.io/revision": str(d.revision),
                                             "deployment.kubernetes.io/desired-replicas": str(d.replicas)}},
                "spec": {"replicas": d.replicas, "selector": {"matchLabels": labels},
                         "template": self._template(app, d.image, labels)}}
        self._create_owner("replicasets", "apps", rs, body)
        d.rs = rs
        self._emit("deployment-controller", "", d.owner.ref(), "Normal", "ScalingReplicaSet",
                   f"Scaled up replica set {rs.name} from 0 to {d.replicas}")
        for _ in range(d.replicas):
            self._deployment_pod(d)

    def _deployment_pod(self, d: _Deployment) -> None:
        labels = pod_labels(d.owner.name, {"app": d.owner.name, "pod-template-hash": d.rs_hash},
                            self.config.pod_labels)
        pod = self._new_pod(d.owner.namespace, f"{d.rs.name}-{random_suffix(self._rng)}", d.owner.name, d.image,
                            labels, d.rs, "deployment")
        if pod is not None:
            d.pods.append(pod.name)
            self._emit("replicaset-controller", "", d.rs.ref(), "Normal", "SuccessfulCreate",
                       f"Created pod: {pod.name}")

    def _add_service(self, d: _Deployment) -> None:
        app, ns = d.owner.name, d.owner.namespace
        svc = _Service(ns, app, app, f"{app}-{random_suffix(self._rng)}")
        octets = (self._rng.randint(0, 255), self._rng.randint(1, 254))
        with self._tolerate(f"create service {ns}/{app}"):
            answer = self._api.create("services", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
                "spec": {"selector": {"app": app}, "type": "ClusterIP",
                         "clusterIP": f"10.96.{octets[0]}.{octets[1]}",
                         "clusterIPs": [f"10.96.{octets[0]}.{octets[1]}"],
                         "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                         "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None"}})
            owner = _Owner("Service", "v1", ns, app, str(answer["metadata"]["uid"]))
            self._api.create("endpointslices", {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": svc.slice_name, "namespace": ns, "generateName": f"{app}-",
                             "labels": {"kubernetes.io/service-name": app,
                                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                             "ownerReferences": [owner.owner_reference()]},
                "addressType": "IPv4", "endpoints": [],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}, group="discovery.k8s.io")
        self._services.append(svc)

    def _add_statefulset(self, namespace: str, name: str) -> None:
        image = _image(self._rng, name)
        owner = _Owner("StatefulSet", "apps/v1", namespace, name)
        sts = _StatefulSet(owner, self.config.statefulset_replicas, image, f"{name}-{pod_template_hash(self._rng)}")
        self._create_owner("statefulsets", "apps", owner, {
            "spec": {"replicas": sts.replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "podManagementPolicy": "OrderedReady",
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                     "template": self._template(name, image, {"app": name})}})
        self._statefulsets.append(sts)
        for ordinal in range(sts.replicas):
            self._statefulset_pod(sts, ordinal)

    def _statefulset_pod(self, sts: _StatefulSet, ordinal: int) -> None:
        name = f"{sts.owner.name}-{ordinal}"
        labels = pod_labels(sts.owner.name, {
            "app": sts.owner.name, "controller-revision-hash": sts.revision_hash,
            "statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": str(ordinal)},
            self.config.pod_labels)
        if self._new_pod(sts.owner.namespace, name, sts.owner.name, sts.image, labels, sts.owner,
                         "statefulset") is not None:
            self._emit("statefulset-controller", "", sts.owner.ref(), "Normal", "SuccessfulCreate",
                       f"create Pod {name} in StatefulSet {sts.owner.name} successful")

    def _add_daemonset(self, name: str) -> None:
        owner = _Owner("DaemonSet", "apps/v1", "kube-system", name)
        image = f"registry.k8s.io/{name}:v1.32.{self._rng.randint(0, 4)}"
        self._create_owner("daemonsets", "apps", owner, {
            "spec": {"selector": {"matchLabels": {"k8s-app": name}},
                     "updateStrategy": {"type": "RollingUpdate"},
                     "template": self._template(name, image, {"k8s-app": name})}})
        self._daemonsets.append(owner)
        for node in self._nodes:
            labels = pod_labels(name, {"k8s-app": name, "controller-revision-hash": pod_template_hash(self._rng),
                                       "pod-template-generation": "1"}, self.config.pod_labels)
            pod = self._new_pod("kube-system", f"{name}-{random_suffix(self._rng)}", name, image, labels, owner,
                                "daemonset", node=node)
            if pod is not None:
                self._emit("daemonset-controller", "", owner.ref(), "Normal", "SuccessfulCreate",
                           f"Created pod: {pod.name}")

    def _add_cronjob(self, namespace: str, name: str, first_fire: int) -> None:
        owner = _Owner("CronJob", "batch/v1", namespace, name)
        image = _image(self._rng, name)
        self._create_owner("cronjobs", "batch", owner, {
            "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 3,
                     "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"spec": {"backoffLimit": 6,
                                              "template": self._job_template(name, image, {"app": name})}}}})
        self._cronjobs.append(_CronJob(owner, image, first_fire))
