"""Realistic object bodies (nodes, namespaces, pods with labels, annotations, init containers
and running status) and ``populate_pods`` for benchmarks that need a large, plausible cluster."""

from __future__ import annotations

import random
import time
from typing import Any

from kubestream.sim.storage.cluster import SimApiError
from kubestream.sim.storage.names import (
    container_id,
    image_digest,
    pod_template_hash,
    random_hex,
    random_suffix,
    rfc3339,
)
from kubestream.sim.workload.scenario import ClusterApi

# ---- realistic object bodies --------------------------------------------------------------

_NAMESPACES = ("payments", "checkout", "search", "catalog", "identity", "billing", "shipping", "analytics",
               "frontend", "platform")
_APPS = ("api", "web", "worker", "cart", "auth", "gateway", "inventory", "notifier", "recommender", "ledger",
         "pricing", "reports")
_IMAGES = ("registry.example.com/shop/{app}:1.{minor}.{patch}", "ghcr.io/acme/{app}:v2.{minor}.{patch}",
           "docker.io/library/nginx:1.27.{patch}", "quay.io/acme/{app}:2025.{minor}.{patch}")
_DAEMONSETS = ("kube-proxy", "fluent-bit", "node-exporter", "csi-node")
_STATEFULSETS = ("db", "kafka", "redis", "zookeeper")
_CRONJOBS = ("report", "cleanup", "backup", "sync")
_SHORT_LIVED = ("debug-shell", "migrate", "curl-test", "smoke")
_ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
CONTROL_PLANE = "control-plane-0"
CONTAINERD_VERSION = "containerd://1.7.22"


def _image(rng: random.Random, app: str) -> str:
    return rng.choice(_IMAGES).format(app=app, minor=rng.randint(0, 20), patch=rng.randint(0, 9))


def _owner_ref(kind: str, name: str, uid: str, api_version: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True,
            "blockOwnerDeletion": True}


def node_object(name: str, index: int, zone: str, now: float) -> dict[str, Any]:
    """A worker Node as a kubelet registers it (addresses, labels, capacity, nodeInfo, Ready)."""
    ip = node_ip(index)
    ts = rfc3339(now)
    capacity = {"cpu": "8", "memory": "32863052Ki", "pods": "110", "ephemeral-storage": "101430960Ki"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux", "kubernetes.io/hostname": name,
                "node.kubernetes.io/instance-type": "m6i.2xlarge", "topology.kubernetes.io/region": "us-east-1",
                "topology.kubernetes.io/zone": zone, "node-role.kubernetes.io/worker": "",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"],
                 "providerID": f"aws:///{zone}/i-0{index:016x}"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": capacity,
            "allocatable": {**capacity, "cpu": "7910m", "memory": "31711052Ki"},
            "conditions": [
                {"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": ts,
                 "lastTransitionTime": ts}
                for t, r, m in (
                    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                )
            ] + [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                  "message": "kubelet is posting ready status", "lastHeartbeatTime": ts, "lastTransitionTime": ts}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"ec2{index:029x}", "systemUUID": f"ec2{index:05x}-0000-0000-0000-000000000000",
                "bootID": f"{index:08x}-1111-2222-3333-444455556666", "kernelVersion": "6.1.112-124.190.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023.6.20241121", "containerRuntimeVersion": CONTAINERD_VERSION,
                "kubeletVersion": "v1.32.4", "kubeProxyVersion": "v1.32.4", "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def node_ip(index: int) -> str:
    """The InternalIP of the node with this index."""
    return f"10.0.{index // 250}.{index % 250 + 10}"


def namespace_object(name: str, team: str) -> dict[str, Any]:
    """A labelled, annotated Namespace."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"team": team, "environment": "production",
                                                  "istio-injection": "enabled"},
                         "annotations": {"owner": f"{team}@example.com"}}}


def pod_labels(app: str, extra: dict[str, str], count: int) -> dict[str, str]:
    """``count`` labels: the controller's own ones (``extra``), then common recommended ones."""
    generic = {
        "app": app, "app.kubernetes.io/name": app, "app.kubernetes.io/instance": f"{app}-prod",
        "app.kubernetes.io/version": "1.4.2", "app.kubernetes.io/component": "backend",
        "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/managed-by": "helm", "team": "core",
        "environment": "production", "tier": "backend", "release": "stable", "track": "primary",
    }
    labels = dict(extra)
    for key, value in generic.items():
        if len(labels) >= max(count, len(extra)):
            break
        labels.setdefault(key, value)
    return labels


def pod_annotations(rng: random.Random, count: int) -> dict[str, str]:
    """``count`` (at most 7) annotations of the kinds real pods carry."""
    pool = {
        "kubectl.kubernetes.io/restartedAt": "2026-11-20T09:14:03Z",
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "checksum/config": random_hex(rng, 64),
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "true",
        "kubectl.kubernetes.io/default-container": "app",
        "sidecar.istio.io/inject": "false",
    }
    return dict(list(pool.items())[:count])


def pod_spec(app: str, image: str, *, init_image: str | None = None, node: str | None = None,
             service_account: str = "default") -> dict[str, Any]:
    """A Deployment-style pod spec: one app container with probes, resources and env, an
    optional init container, the projected service-account volume and the default tolerations."""
    mounts = [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
               "readOnly": True}, {"name": "config", "mountPath": "/etc/app"}]
    app_container = {
        "name": "app", "image": image,
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "env": [{"name": "APP_ENV", "value": "production"}, {"name": "LOG_FORMAT", "value": "json"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": mounts,
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 10,
                          "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1,
                           "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    spec: dict[str, Any] = {
        "volumes": [
            {"name": "config", "configMap": {"name": f"{app}-config", "defaultMode": 420}},
            {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                             "fieldPath": "metadata.namespace"}}]}},
            ]}},
        ],
        "containers": [app_container],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": service_account, "serviceAccount": service_account,
        "securityContext": {"fsGroup": 2000}, "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
        ],
        "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
    }
    if init_image:
        spec["initContainers"] = [{"name": "init-config", "image": init_image,
                                   "command": ["sh", "-c", "cp /defaults/* /etc/app/"],
                                   "volumeMounts": mounts[1:], "imagePullPolicy": "IfNotPresent",
                                   "terminationMessagePath": "/dev/termination-log",
                                   "terminationMessagePolicy": "File", "resources": {}}]
    if node:
        spec["nodeName"] = node
    return spec


def _condition(kind: str, ts: str, status: str = "True") -> dict[str, Any]:
    return {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": ts}


def running_status(spec: dict[str, Any], *, pod_ip: str, host_ip: str, started: float,
                   container_ids: dict[str, str], image_ids: dict[str, str], restarts: int = 0,
                   crashlooping: bool = False) -> dict[str, Any]:
    """``status`` of a started pod: conditions, IPs and containerStatuses as kubelet reports them."""
    ts = rfc3339(started)
    statuses = []
    for c in spec["containers"]:
        name = c["name"]
        state: dict[str, Any] = {"running": {"startedAt": ts}}
        last: dict[str, Any] = {}
        if crashlooping and restarts:
            state = {"waiting": {"reason": "CrashLoopBackOff",
                                 "message": f"back-off 10s restarting failed container={name} pod="}}
            last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": ts, "finishedAt": ts,
                                   "containerID": f"containerd://{container_ids[name]}"}}
        statuses.append({
            "name": name, "state": state, "lastState": last, "ready": not crashlooping,
            "restartCount": restarts, "image": c["image"], "imageID": image_ids[name],
            "containerID": f"containerd://{container_ids[name]}", "started": not crashlooping,
        })
    ready = "False" if crashlooping else "True"
    status: dict[str, Any] = {
        "phase": "Running",
        "conditions": [_condition("PodReadyToStartContainers", ts), _condition("Initialized", ts),
                       _condition("Ready", ts, ready), _condition("ContainersReady", ts, ready),
                       _condition("PodScheduled", ts)],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": ts, "containerStatuses": statuses, "qosClass": "Burstable",
    }
    if spec.get("initContainers"):
        status["initContainerStatuses"] = [{
            "name": c["name"], "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": ts,
                                                        "finishedAt": ts,
                                                        "containerID": f"containerd://{container_ids[c['name']]}"}},
            "lastState": {}, "ready": True, "restartCount": 0, "image": c["image"], "imageID": image_ids[c["name"]],
            "containerID": f"containerd://{container_ids[c['name']]}", "started": False,
        } for c in spec["initContainers"]]
    return status


def realistic_pod(rng: random.Random, *, namespace: str, name: str, node: str, node_index: int,
                  pod_ip: str, app: str | None = None, labels: int = 10, annotations: int = 5,
                  owner: dict[str, Any] | None = None, now: float | None = None) -> dict[str, Any]:
    """A running pod as the API holds it after kubelet reported it (about 4-5 KB of JSON with the
    default 10 labels and 5 annotations), for bulk population and benchmarks."""
    app = app or rng.choice(_APPS)
    image = _image(rng, app)
    spec = pod_spec(app, image, init_image="busybox:1.36.1", node=node)
    ids = {c["name"]: container_id(rng) for c in (*spec["containers"], *spec["initContainers"])}
    images = {c["name"]: f"{c['image'].rsplit(':', 1)[0]}@{image_digest(rng)}"
              for c in (*spec["containers"], *spec["initContainers"])}
    extra = {"pod-template-hash": pod_template_hash(rng)}
    meta: dict[str, Any] = {"name": name, "namespace": namespace,
                            "labels": pod_labels(app, extra, labels),
                            "annotations": pod_annotations(rng, annotations)}
    if owner is not None:
        meta["ownerReferences"] = [owner]
        meta["generateName"] = name[: name.rfind("-") + 1]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": running_status(spec, pod_ip=pod_ip, host_ip=node_ip(node_index),
                                     started=time.time() if now is None else now,
                                     container_ids=ids, image_ids=images)}


def populate_pods(cluster: ClusterApi, count: int, *, seed: int = 1, nodes: int = 10, namespaces: int = 10,
                  labels: int = 10, annotations: int = 5, prefix: str = "bulk") -> list[str]:
    """Create ``count`` realistic running pods (plus the nodes and namespaces they need);
    returns ``namespace/name`` of each. Existing nodes/namespaces are reused."""
    rng = random.Random(seed)
    now = time.time()
    node_names = [f"{prefix}-node-{i}" for i in range(nodes)]
    ns_names = [f"{prefix}-{_NAMESPACES[i % len(_NAMESPACES)]}-{i}" for i in range(namespaces)]
    for i, node in enumerate(node_names):
        _create_if_absent(cluster, "nodes", node_object(node, i, _ZONES[i % len(_ZONES)], now))
    for i, ns in enumerate(ns_names):
        _create_if_absent(cluster, "namespaces", namespace_object(ns, _NAMESPACES[i % len(_NAMESPACES)]))
    created = []
    for i in range(count):
        ni = i % nodes
        app = _APPS[i % len(_APPS)]
        name = f"{app}-{pod_template_hash(rng)}-{random_suffix(rng)}"
        ns = ns_names[i % namespaces]
        pod = realistic_pod(rng, namespace=ns, name=name, node=node_names[ni], node_index=ni,
                            pod_ip=f"10.{64 + ni // 256}.{ni % 256}.{i // nodes % 250 + 2}", app=app,
                            labels=labels, annotations=annotations, now=now)
        cluster.create("pods", pod)
        created.append(f"{ns}/{name}")
    return created


def _create_if_absent(cluster: ClusterApi, plural: str, obj: dict[str, Any]) -> None:
    try:
        cluster.create(plural, obj)
    except SimApiError as exc:
        if exc.code != 409:
            raise
