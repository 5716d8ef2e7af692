"""Realistic Pod JSON for the Kubernetes-access benchmark (shape of a real 1.32 PodList item).

The shape follows a recorded kube-apiserver 1.32 PodList item (k8s-openapi test replays, as kept in
tests/fixtures/recorded): spec with volumes, probes, resources and tolerations; status with
conditions and container statuses. Each pod has 10 labels, 5 annotations (one of them a
``kubectl.kubernetes.io/last-applied-configuration``), two containers, and about 4.7 KB of JSON
before its ``managedFields`` (about 8 KB with them, as stored).
Values repeat the way they do in a cluster: 20 pods per Deployment, 50 namespaces, 200 nodes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

PODS_PER_DEPLOYMENT = 20
NAMESPACES = 50
NODES = 200


def _hex(seed: str, n: int = 64) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def with_managed_fields(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as a real API server stores it: ``metadata.managedFields`` of its writers
    (kube-controller-manager for metadata and spec, kubelet for status), computed by the
    simulator's field manager as kube-apiserver computes them; about 1.6-1.8x the bytes."""
    from kubestream.sim.storage import fieldmanager as fm
    stamp = pod["metadata"]["creationTimestamp"]
    zero: dict[str, Any] = {"spec": {"containers": None}, "status": {}}
    spec_change = fm.compare("V1Pod", zero, pod, status_only=False, ignore_status=True)
    status_change = fm.compare("V1Pod", zero, pod, status_only=True, ignore_status=False)
    entries = fm.update([], fm.Writer("kube-controller-manager", "v1"), spec_change, stamp)
    entries = fm.update(entries, fm.Writer("kubelet", "v1", subresource="status"), status_change, stamp)
    pod["metadata"]["managedFields"] = entries
    return pod


def realistic_pod(i: int) -> dict[str, Any]:
    """The i-th pod of a synthetic cluster (deterministic), with its managedFields."""
    return with_managed_fields(_pod(i))


def _pod(i: int) -> dict[str, Any]:
    dep = i // PODS_PER_DEPLOYMENT
    ns = f"team-{dep % NAMESPACES:02d}"
    app = f"svc-{dep:04d}"
    rs_hash = _hex(f"rs{dep}", 10)
    name = f"{app}-{rs_hash}-{_hex(f'p{i}', 5)}"
    image = f"registry.example.com/{ns}/{app}:v1.{dep % 7}.{dep % 3}"
    last_applied = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
                               "spec": {"replicas": PODS_PER_DEPLOYMENT, "template": {"spec": {"containers": [
                                   {"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]}}}})
    labels = {
        "app": app, "app.kubernetes.io/name": app, "app.kubernetes.io/instance": f"{app}-prod",
        "app.kubernetes.io/version": f"1.{dep % 7}.{dep % 3}", "app.kubernetes.io/component": "backend",
        "app.kubernetes.io/part-of": f"product-{dep % 13}", "app.kubernetes.io/managed-by": "Helm",
        "pod-template-hash": rs_hash, "team": ns, "environment": "production",
    }
    annotations = {
        "kubectl.kubernetes.io/last-applied-configuration": last_applied,
        "prometheus.io/scrape": "true", "prometheus.io/port": "9090",
        "checksum/config": _hex(f"cfg{dep}"), "kubectl.kubernetes.io/restartedAt": "2025-06-01T10:00:00Z",
    }
    node = f"ip-10-0-{(i % NODES) // 250}-{i % NODES}.eu-west-1.compute.internal"
    pod_ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"

    def container(cname: str, cimage: str, port: int) -> dict[str, Any]:
        return {"name": cname, "image": cimage, "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
                "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"},
                                  "timeoutSeconds": 5, "periodSeconds": 10, "successThreshold": 1,
                                  "failureThreshold": 3},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"}

    def status(cname: str, cimage: str) -> dict[str, Any]:
        return {"name": cname, "state": {"running": {"startedAt": "2025-06-01T10:00:05Z"}}, "lastState": {},
                "ready": True, "restartCount": 0, "image": cimage,
                "imageID": f"{cimage.split(':')[0]}@sha256:{_hex(cimage)}",
                "containerID": f"containerd://{_hex(f'{cname}{i}')}", "started": True}

    sidecar = "docker.io/envoyproxy/envoy:v1.31.2"
    return {
        "metadata": {
            "name": name, "generateName": f"{app}-{rs_hash}-", "namespace": ns, "uid": str(uuid.UUID(int=i + 1)),
            "resourceVersion": str(1000 + i), "creationTimestamp": "2025-06-01T10:00:00Z",
            "labels": labels, "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-{rs_hash}",
                                 "uid": str(uuid.UUID(int=10**9 + dep)), "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}],
                "defaultMode": 420}}],
            "containers": [container("app", image, 8080), container("envoy", sidecar, 15000)],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": app, "serviceAccount": app, "nodeName": node, "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": "2025-06-01T10:00:05Z"}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "hostIP": f"10.0.{(i % NODES) // 250}.{i % NODES}", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
            "startTime": "2025-06-01T10:00:01Z", "qosClass": "Burstable",
            "containerStatuses": [status("app", image), status("envoy", sidecar)],
        },
    }
