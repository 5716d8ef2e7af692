"""RBAC of the node agent with ``logs.metadata_source: kubelet``: the chart drops the pod
list/watch grant and adds ``get`` on ``nodes/pods`` (and ``nodes/proxy``, what kubelets before
1.33 check); the real agent, run with the chart's configuration against the simulator's API
server and HTTPS kubelets, asks for nothing the role does not grant and uses every grant except
the ``nodes/proxy`` fallback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.agent.harness import AgentProcess
from tests.deploy.deploy_support import Access, access_of, objects, populate_node, render_chart, rules_of

from kubestream.sim.server import SimServer
from kubestream.sim.testing import running_sim

NAMESPACE = "kubestream"
TOKEN = "logs-token"
NODE = "node-1"
KUBELET_MODE = {"logs": {"config": {"logs": {"metadata_source": "kubelet"}}}}


def _logs_role(values: dict[str, Any] | None) -> dict[str, Any]:
    return next(d for d in objects(render_chart(values, namespace=NAMESPACE), "ClusterRole")
                if d["metadata"]["labels"]["app.kubernetes.io/component"] == "logs-agent")


def _grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {grant for rule in rules_of(role) for grant in rule.grants()}


def test_kubelet_mode_swaps_the_pod_watch_for_the_kubelet_grant() -> None:
    default, kubelet = _grants(_logs_role(None)), _grants(_logs_role(KUBELET_MODE))
    assert ("watch", "", "pods") in default and ("get", "", "nodes/pods") not in default
    assert {("get", "", "nodes/pods"), ("get", "", "nodes/proxy")} <= kubelet
    assert ("list", "", "pods") not in kubelet and ("watch", "", "pods") not in kubelet
    assert kubelet - default == {("get", "", "nodes/pods"), ("get", "", "nodes/proxy")}


def test_a_set_kubelet_url_without_node_enrichment_needs_no_node_grant() -> None:
    values = {"logs": {"config": {"logs": {"metadata_source": "kubelet", "kubelet": {"url": "https://10.0.0.7:10250"}},
                                  "enrich": {"nodes": False}}}}
    assert not {g for g in _grants(_logs_role(values)) if g[2] == "nodes"}


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with running_sim(kubelets=True, kubelet_sync_s=0.05, tokens={TOKEN: "system:serviceaccount:kubestream:logs"},
                     bookmark_interval_s=0.5) as server:
        for name in (NAMESPACE, "shop"):
            server.cluster.create("namespaces", {"metadata": {"name": name}})
        server.cluster.create("nodes", {"metadata": {"name": NODE}})
        server.kubelet(NODE)
        populate_node(server, NODE)  # its pods' owners, namespace and services use every grant
        yield server


def _chart_config(sim: SimServer, tmp: Path) -> Path:
    docs = render_chart(KUBELET_MODE, namespace=NAMESPACE)
    config = yaml.safe_load(next(d for d in objects(docs, "ConfigMap")
                                 if d["metadata"]["name"].endswith("-logs"))["data"]["kubestream.yaml"])
    (tmp / "token").write_text(TOKEN)
    (tmp / "pods").mkdir()
    config["logs"].update(pods_dir=str(tmp / "pods"), containers_dir=None, node_name=NODE,
                          kubelet={"ca_file": str(sim.kubelet_ca_path), "token_file": str(tmp / "token"),
                                   "refresh_s": 0.2})
    config.update(kube={"kubeconfig": str(sim.write_kubeconfig(tmp / "kubeconfig"))},
                  sink={"type": "file", "file": {"dir": str(tmp / "out")}}, state={"dir": str(tmp / "state")},
                  server={"port": 0, "host": "127.0.0.1"}, shutdown={"timeout_s": 5})
    path = tmp / "logs.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_agent_in_kubelet_mode_uses_exactly_the_charts_grants(
        sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"KUBESTREAM_CLUSTER_NAME": "test", "KUBESTREAM_S3_BUCKET": "unused", "NODE_NAME": NODE,
                       "POD_NAME": "kubestream-logs-x", "POD_NAMESPACE": NAMESPACE}.items():
        monkeypatch.setenv(key, value)
    agent = AgentProcess(_chart_config(sim, tmp_path), tmp_path)
    sim.requests.reset()
    agent.start()
    try:
        agent.wait_ready()
        time.sleep(1.0)
    finally:
        code = agent.terminate()
    assert code == 0, agent.log()
    accesses = [a for a in map(access_of, sim.requests.records()) if a is not None]
    # kubelet's authorizer asks "get nodes/pods" (falling back to nodes/proxy) named after its node.
    accesses += [Access("get", "", "nodes/pods", None, r.node) for r in sim.kubelet_requests.records()]
    rules = rules_of(_logs_role(KUBELET_MODE))
    denied = {a for a in accesses if not any(rule.allows(a) for rule in rules)}
    assert denied == set()
    unused = _grants(_logs_role(KUBELET_MODE)) - {a.key for a in accesses}
    assert unused == {("get", "", "nodes/proxy")}, "only the pre-1.33 fallback may go unused"
    assert not [a for a in accesses if a.resource == "pods"], "no pod list/watch on the API server"
