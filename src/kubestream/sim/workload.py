"""A deterministic cluster workload for the simulated API server, with a ledger of events.

``Workload(cluster, config, ledger)`` populates a ``SimCluster`` the way a real cluster's
controllers and kubelets would: nodes, namespaces, Deployments → ReplicaSets → Pods,
StatefulSets (same pod names, new uids), DaemonSets, CronJobs → Jobs → Pods, Services with
EndpointSlices, crash-looping and short-lived pods, and the Events every component records
(through ``kubestream.sim.recorder``, so counts and series behave as in client-go).

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

import hashlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from kubestream.sim.cluster import SimApiError
from kubestream.sim.ledger import EventLedger
from kubestream.sim.names import (
    SimClock,
    container_id,
    image_digest,
    pod_template_hash,
    random_hex,
    random_suffix,
    rfc3339,
)
from kubestream.sim.recorder import LegacyRecorder, ObjectRef, Recorder, SeriesRecorder

log = logging.getLogger(__name__)

EventsApiMode = Literal["core", "events.k8s.io", "mixed"]


class ClusterApi(Protocol):
    """The synchronous in-process API of ``kubestream.sim.cluster.SimCluster``."""

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


_UID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RV_RE = re.compile(rb'"(resourceVersion|creationTimestamp)":("[^"]*"|null)')


class _Journal:
    """Hashes each tick's writes with server-assigned values replaced by stable aliases."""

    def __init__(self) -> None:
        self._aliases: dict[bytes, bytes] = {}
        self._hash = hashlib.sha256()

    def note(self, verb: str, plural: str, namespace: str | None, name: str, body: dict[str, Any] | None,
             answer: dict[str, Any] | None) -> None:
        if answer is not None:
            uid = str(answer.get("metadata", {}).get("uid", "")).encode()
            if uid and uid not in self._aliases:
                self._aliases[uid] = b"uid-%d" % len(self._aliases)
        raw = orjson.dumps([verb, plural, namespace, name, body], option=orjson.OPT_SORT_KEYS)
        raw = _RV_RE.sub(rb'"\1":"-"', raw)
        raw = _UID_RE.sub(lambda m: self._aliases.get(m.group(0), b"uid-?"), raw)
        self._hash.update(raw)

    def close_tick(self) -> str:
        digest = self._hash.hexdigest()
        self._hash = hashlib.sha256()
        return digest


class _CountingApi:
    """The cluster, counting and (optionally) journaling every call that writes."""

    def __init__(self, cluster: ClusterApi, stats: WorkloadStats, journal: _Journal | None) -> None:
        self._cluster = cluster
        self._stats = stats
        self._journal = journal

    def _count(self, verb: str, plural: str, namespace: str | None, name: str, body: dict[str, Any] | None,
               answer: dict[str, Any]) -> dict[str, Any]:
        self._stats.writes[verb] = self._stats.writes.get(verb, 0) + 1
        if self._journal is not None:
            self._journal.note(verb, plural, namespace, name, body, answer)
        return answer

    def create(self, plural: str, obj: dict[str, Any], *, group: str = "", version: str = "v1") -> dict[str, Any]:
        meta = obj.get("metadata", {})
        answer = self._cluster.create(plural, obj, group=group, version=version)
        return self._count("create", plural, meta.get("namespace"), meta.get("name", ""), obj, answer)

    def get(self, plural: str, namespace: str | None, name: str, *, group: str = "",
            version: str = "v1") -> dict[str, Any]:
        """A read: neither counted nor journaled."""
        return self._cluster.get(plural, namespace, name, group=group, version=version)

    def patch(self, plural: str, namespace: str | None, name: str, patch: dict[str, Any], *,
              patch_type: Literal["strategic", "merge"] = "strategic", group: str = "",
              version: str = "v1") -> dict[str, Any]:
        answer = self._cluster.patch(plural, namespace, name, patch, patch_type=patch_type, group=group,
                                     version=version)
        return self._count("patch", plural, namespace, name, patch, answer)

    def delete(self, plural: str, namespace: str | None, name: str, *, group: str = "", version: str = "v1",
               grace_period_s: float | None = None) -> dict[str, Any]:
        answer = self._cluster.delete(plural, namespace, name, group=group, version=version,
                                      grace_period_s=grace_period_s)
        return self._count("delete", plural, namespace, name, None, answer)


class Workload:
    """Drives a ``SimCluster`` like a busy real cluster (see the module docstring)."""

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

    # ---- public control -------------------------------------------------------------------

    @property
    def tick(self) -> int:
        """Ticks run so far (the next ``step()`` runs this tick number)."""
        return self.stats.ticks

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

    # ---- services -------------------------------------------------------------------------

    def _dirty_endpoints(self, pod: _Pod) -> None:
        for svc in self._services:
            if svc.namespace == pod.namespace and svc.app == pod.app:
                svc.dirty = True

    def _update_endpoints(self) -> None:
        for svc in self._services:
            if not svc.dirty:
                continue
            svc.dirty = False
            endpoints = [{
                "addresses": [p.ip], "conditions": {"ready": not p.crashloop, "serving": not p.crashloop,
                                                    "terminating": False},
                "nodeName": p.node.name if p.node else "", "zone": _ZONES[p.node.index % len(_ZONES)] if p.node else "",
                "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name, "uid": p.uid},
            } for p in self._pods.values() if p.app == svc.app and p.namespace == svc.namespace and p.ip
                and p.stage == "running"]
            with self._tolerate(f"update endpointslice {svc.namespace}/{svc.slice_name}"):
                self._api.patch("endpointslices", svc.namespace, svc.slice_name, {"endpoints": endpoints},
                                patch_type="merge", group="discovery.k8s.io")

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
