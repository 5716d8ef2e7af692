"""Shared helpers of the enrichment tests: a small cluster in the simulated API server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kubestream.sim.server import SimServer


def owner_ref(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    api = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    return {"apiVersion": api, "kind": kind, "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def pod_body(name: str, ns: str, *, owner: dict[str, Any] | None = None, node: str = "node-1",
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {}}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {"metadata": meta, "spec": {"nodeName": node,
                                       "initContainers": [{"name": "setup", "image": "busybox:1.36"}],
                                       "containers": [{"name": "app", "image": "shop/web:2.1"}]}}


def make_pod(server: SimServer, name: str, ns: str, **kw: Any) -> dict[str, Any]:
    created = server.cluster.create("pods", pod_body(name, ns, **kw))
    return server.cluster.patch("pods", ns, name, {"status": {
        "phase": "Running", "podIP": "10.1.2.3",
        "containerStatuses": [{"name": "app", "imageID": "shop/web@sha256:aa", "containerID": f"containerd://{name}"}],
        "initContainerStatuses": [{"name": "setup", "imageID": "busybox@sha256:bb", "containerID": "containerd://i"}],
    }}) or created


def template(app: str) -> dict[str, Any]:
    """A pod template the stricter simulator accepts (selector matching its labels, a container)."""
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "app", "image": "shop/web:2.1"}]}}


def controller_spec(app: str) -> dict[str, Any]:
    return {"selector": {"matchLabels": {"app": app}}, "template": template(app)}


def job_spec(app: str) -> dict[str, Any]:
    job_template = template(app)
    job_template["spec"]["restartPolicy"] = "Never"
    return {"template": job_template}


class Cluster:
    """A small shop: namespace, node, Deployment/ReplicaSet, CronJob/Job, StatefulSet, DaemonSet."""

    def __init__(self, server: SimServer) -> None:
        c = server.cluster
        self.server = server
        c.create("namespaces", {"metadata": {"name": "shop", "labels": {"team": "payments"}}})
        self.node = c.create("nodes", {"metadata": {"name": "node-1", "labels": {"zone": "eu-1a"}}, "status": {
            "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.0.10"}]}})
        c.create("nodes", {"metadata": {"name": "node-2"}})
        self.deploy = c.create("deployments", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "shop/web:2.1"}]}}}}, group="apps")
        self.rs = c.create("replicasets", {"metadata": {"name": "web-7d9f", "namespace": "shop", "labels": {"app": "web"},
                                                        "ownerReferences": [owner_ref(self.deploy, "Deployment")]},
                                         "spec": controller_spec("web")},
                           group="apps")
        self.web = make_pod(server, "web-7d9f-x1", "shop", owner=owner_ref(self.rs, "ReplicaSet"),
                            labels={"app": "web", "tier": "front"})
        self.cron = c.create("cronjobs", {"metadata": {"name": "nightly", "namespace": "shop"}, "spec": {
            "schedule": "0 2 * * *", "jobTemplate": {"spec": job_spec("nightly")}}}, group="batch")
        self.job = c.create("jobs", {"metadata": {"name": "nightly-2900", "namespace": "shop",
                                                  "ownerReferences": [owner_ref(self.cron, "CronJob")]},
                                     "spec": job_spec("nightly")}, group="batch")
        self.batch = make_pod(server, "nightly-2900-q", "shop", owner=owner_ref(self.job, "Job"))
        self.sts = c.create("statefulsets", {"metadata": {"name": "db", "namespace": "shop"},
                                             "spec": {**controller_spec("db"), "serviceName": "db"}}, group="apps")
        self.db0 = make_pod(server, "db-0", "shop", owner=owner_ref(self.sts, "StatefulSet"), labels={"app": "db"})
        self.ds = c.create("daemonsets", {"metadata": {"name": "agent", "namespace": "shop"},
                                          "spec": controller_spec("agent")}, group="apps")
        self.agent = make_pod(server, "agent-n2", "shop", owner=owner_ref(self.ds, "DaemonSet"), node="node-2")
        c.create("services", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"selector": {"app": "web"}}})
        c.create("services", {"metadata": {"name": "front", "namespace": "shop"},
                              "spec": {"selector": {"tier": "front"}}})
        c.create("services", {"metadata": {"name": "db", "namespace": "shop"}, "spec": {"selector": {"app": "db"}}})
        c.create("services", {"metadata": {"name": "external", "namespace": "shop"}, "spec": {}})


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Poll until the caches (fed by the simulator's thread) reflect a change."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def uid(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["uid"])
