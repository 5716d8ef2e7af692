"""What kube-apiserver does to a new object, in its order (spec §9.41):

1. ``scheme_defaults``: the generated defaulters run when the body is decoded
   (pkg/apis/{core,apps,batch}/v1/defaults.go); the field manager sees these fields and files them
   under the writer.
2. ``prepare_for_create``: the registry strategy (pkg/registry/*/strategy.go PrepareForCreate):
   status reset, a Job's generated selector and labels. Not in managedFields.
3. ``admit``: the default admission plugins (ServiceAccount, Priority, DefaultTolerationSeconds)
   on pods. Not in managedFields either (they run after the field manager).

Every step works in place on a plain JSON dict in the API's form.
"""

from __future__ import annotations

from typing import Any

from kubestream.sim.storage.resources import ResourceType

DEFAULTED_KINDS = frozenset({"Pod", "Deployment", "Job", "CronJob", "ReplicaSet", "StatefulSet", "DaemonSet",
                             "Namespace", "Service"})
"""Kinds ``scheme_defaults`` changes."""
_TEMPLATED = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"})
_STATUS_RESET = frozenset({"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                           "Service", "PodDisruptionBudget", "Namespace"})
"""Kinds whose strategy drops a status sent with a create (PrepareForCreate ``obj.Status = ...{}``)."""


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def _image_pull_policy(image: str) -> str:
    # core/v1 defaults.go SetDefaults_Container: ":latest" or no tag → Always.
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def default_container(container: dict[str, Any]) -> None:
    """SetDefaults_Container, SetDefaults_ContainerPort (protocol TCP), probe defaults."""
    container.setdefault("resources", {})
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("imagePullPolicy", _image_pull_policy(str(container.get("image", ""))))
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_key)
        if isinstance(probe, dict):
            # SetDefaults_Probe; SetDefaults_HTTPGetAction scheme HTTP.
            for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                               ("failureThreshold", 3)):
                probe.setdefault(key, value)
            if isinstance(probe.get("httpGet"), dict):
                probe["httpGet"].setdefault("scheme", "HTTP")
    for env in container.get("env") or []:
        ref = env.get("valueFrom", {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")  # SetDefaults_ObjectFieldSelector


def default_pod_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_PodSpec (also for the templates of workloads)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                default_container(container)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            for source, mode in (("configMap", 420), ("secret", 420), ("projected", 420), ("downwardAPI", 420)):
                if isinstance(volume.get(source), dict):
                    key = "defaultMode"
                    volume[source].setdefault(key, mode)


def _default_pod(pod: dict[str, Any]) -> None:
    # SetDefaults_Pod: enableServiceLinks, and requests default to limits.
    spec = _dict(pod, "spec")
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    for container in spec.get("containers") or []:
        resources = container.get("resources") if isinstance(container, dict) else None
        if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
            requests = _dict(resources, "requests")
            for name, quantity in resources["limits"].items():
                requests.setdefault(name, quantity)


def _default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_spec(_dict(template, "spec"))


def _default_deployment(obj: dict[str, Any]) -> None:
    # apps/v1 defaults.go SetDefaults_Deployment.
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = _dict(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)


def _default_job(obj: dict[str, Any]) -> None:
    # batch/v1 defaults.go SetDefaults_Job.
    spec = _dict(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("manualSelector", False)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    _default_template(spec)


def _default_simple_workload(kind: str, obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if kind in ("ReplicaSet", "StatefulSet"):
        spec.setdefault("replicas", 1)
    if kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        update = _dict(spec, "updateStrategy")
        update.setdefault("type", "RollingUpdate")
        if update["type"] == "RollingUpdate":
            _dict(update, "rollingUpdate").setdefault("partition", 0)
        spec.setdefault("revisionHistoryLimit", 10)
    if kind == "DaemonSet":
        update = _dict(spec, "updateStrategy")
        update.setdefault("type", "RollingUpdate")
        if update["type"] == "RollingUpdate":
            rolling = _dict(update, "rollingUpdate")
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)


def _default_cronjob(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    template = spec.get("jobTemplate")
    if isinstance(template, dict):
        _default_job(template)


def scheme_defaults(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Step 1: the defaulters of the served kinds, in place."""
    kind = rtype.kind
    if kind == "Pod":
        _default_pod(obj)
    elif kind == "Deployment":
        _default_deployment(obj)
    elif kind == "Job":
        _default_job(obj)
    elif kind == "CronJob":
        _default_cronjob(obj)
    elif kind in ("ReplicaSet", "StatefulSet", "DaemonSet"):
        _default_simple_workload(kind, obj)
    elif kind == "Namespace":
        _dict(obj, "spec").setdefault("finalizers", ["kubernetes"])
        # SetDefaults_Namespace: the immutable kubernetes.io/metadata.name label.
        _dict(obj["metadata"], "labels")["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif kind == "Service":
        for port in _dict(obj, "spec").get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])


def _job_selector(obj: dict[str, Any]) -> None:
    # registry/batch/job/strategy.go generateSelector: the controller-uid selector and labels
    # (both label spellings since 1.27), unless manualSelector; the Job's own labels default to
    # its template's when empty (as the recorded job-create shows).
    meta, spec = obj["metadata"], _dict(obj, "spec")
    if spec.get("manualSelector"):
        return
    uid, name = meta["uid"], meta["name"]
    template = _dict(spec, "template")
    labels = _dict(_dict(template, "metadata"), "labels")
    labels.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                   "controller-uid": uid, "job-name": name})
    template["metadata"]["labels"] = dict(sorted(labels.items()))
    spec["template"] = {"metadata": template["metadata"], **{k: v for k, v in template.items() if k != "metadata"}}
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    if not meta.get("labels"):
        meta["labels"] = dict(template["metadata"]["labels"])
    ordered: dict[str, Any] = {k: spec[k] for k in ("parallelism", "completions", "activeDeadlineSeconds", "podFailurePolicy",
                                    "successPolicy", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes",
                                    "selector", "manualSelector", "template") if k in spec}
    ordered.update({k: v for k, v in spec.items() if k not in ordered})
    obj["spec"] = ordered  # Go field order, so the reply reads like the recorded one


def prepare_for_create(rtype: ResourceType, obj: dict[str, Any], *, keep_status: bool) -> None:
    """Step 2: the strategy. ``keep_status`` for in-process writers, which stand for a create
    followed by a status write."""
    kind = rtype.kind
    if kind in _STATUS_RESET and not keep_status:
        obj["status"] = {}
    if kind == "Pod":
        status: dict[str, Any] = obj["status"] if isinstance(obj.get("status"), dict) else {}
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", _qos_class(obj.get("spec") or {}))
        obj["status"] = status
    elif kind == "Namespace":
        _dict(obj, "status").setdefault("phase", "Active")
    elif kind == "Job":
        _job_selector(obj)
        obj.setdefault("status", {})
    elif kind in ("Deployment", "CronJob", "Service") or kind in _TEMPLATED:
        obj.setdefault("status", {})


def _qos_class(spec: dict[str, Any]) -> str:
    # pkg/apis/core/helper/qos GetPodQOS, reduced: no requests/limits → BestEffort; limits equal
    # to requests for cpu and memory on every container → Guaranteed; else Burstable.
    containers = [c for c in (spec.get("containers") or []) if isinstance(c, dict)]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        if not all(limits.get(k) and limits.get(k) == requests.get(k, limits.get(k)) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def admit(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Step 3: ServiceAccount, Priority and DefaultTolerationSeconds admission on pods."""
    if rtype.kind != "Pod":
        return
    spec = _dict(obj, "spec")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    # DefaultTolerationSeconds: tolerate not-ready/unreachable nodes for 300 s unless told.
    tolerations: list[Any] = spec["tolerations"] if isinstance(spec.get("tolerations"), list) else []
    keys = {t.get("key") for t in tolerations if isinstance(t, dict)}
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if key not in keys:
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    spec["tolerations"] = tolerations
