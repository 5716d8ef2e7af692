"""Label and field selectors (spec §4; checklist 20-21)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from kubestream.sim.server import SimServer
from kubestream.sim.testing import http


def add_pod(server: SimServer, name: str, labels: dict[str, str], node: str | None, phase: str,
            ip: str | None = None, host_network: bool = False) -> None:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}], "hostNetwork": host_network}
    if node:
        spec["nodeName"] = node
    status: dict[str, Any] = {"phase": phase}
    if ip:
        status["podIPs"] = [{"ip": ip}]
    server.cluster.create("pods", {"metadata": {"name": name, "labels": labels}, "spec": spec})
    server.cluster.patch("pods", "default", name, {"status": status})


def names(server: SimServer, query: str) -> list[str]:
    reply = http(server, "GET", f"/api/v1/pods?{query}")
    assert reply.status == 200, reply.json
    return [i["metadata"]["name"] for i in reply.json["items"]]


@pytest.fixture
def pods(sim_server: SimServer) -> SimServer:
    add_pod(sim_server, "a", {"app": "a", "tier": "fe", "env": "prod"}, "n1", "Running", "10.0.0.1")
    add_pod(sim_server, "b", {"app": "b", "env": "dev"}, "n2", "Running", "10.0.0.2", host_network=True)
    add_pod(sim_server, "c", {"app": "c", "env": "dev", "rank": "7"}, None, "Pending")
    add_pod(sim_server, "d", {"app": "a", "env": "staging"}, "n2", "Succeeded")
    return sim_server


def test_label_selector_grammar(pods: SimServer) -> None:
    assert names(pods, "labelSelector=" + quote("app in (a,b),!tier,env!=prod")) == ["b", "d"]
    assert names(pods, "labelSelector=" + quote("app notin (a),env")) == ["b", "c"]
    assert names(pods, "labelSelector=" + quote("app==a")) == ["a", "d"]
    assert names(pods, "labelSelector=tier") == ["a"]
    assert names(pods, "labelSelector=" + quote("rank>5")) == ["c"]
    bad = http(pods, "GET", "/api/v1/pods?labelSelector=" + quote("app in a"))
    assert bad.status == 400 and bad.json["message"].startswith("unable to parse requirement")
    assert http(pods, "GET", "/api/v1/pods?labelSelector=" + quote("a b")).status == 400


def test_pod_field_selectors(pods: SimServer) -> None:
    assert names(pods, "fieldSelector=" + quote("status.phase=Running,spec.nodeName!=n1")) == ["b"]
    assert names(pods, "fieldSelector=" + quote("spec.host=n2")) == ["b", "d"]  # legacy alias
    assert names(pods, "fieldSelector=" + quote("status.podIP=10.0.0.2")) == ["b"]
    assert names(pods, "fieldSelector=" + quote("spec.hostNetwork=false")) == ["a", "c", "d"]
    assert names(pods, "fieldSelector=" + quote("spec.nodeName=")) == ["c"]
    assert names(pods, "fieldSelector=" + quote("metadata.name==a")) == ["a"]
    unsupported = http(pods, "GET", "/api/v1/pods?fieldSelector=" + quote("spec.containers=x"))
    assert (unsupported.status, unsupported.json["reason"], unsupported.json["message"]) == (
        400, "BadRequest", "field label not supported: spec.containers")
    garbage = http(pods, "GET", "/api/v1/pods?fieldSelector=nonsense")
    assert garbage.status == 400


def test_event_field_selectors_and_escapes(sim_server: SimServer) -> None:
    def event(name: str, **fields: Any) -> None:
        sim_server.cluster.create("events", {"metadata": {"name": name, "namespace": "default"}, **fields})

    event("e1", involvedObject={"kind": "Pod", "name": "web"}, source={"component": "kubelet"}, reason="Pulled")
    event("e2", involvedObject={"kind": "Node", "name": "n1"}, reportingComponent="ctl", reason="a,b=c")
    core = "/api/v1/events?fieldSelector="
    assert [i["metadata"]["name"] for i in http(sim_server, "GET", core + quote("involvedObject.kind=Pod")).json["items"]] == ["e1"]
    assert [i["metadata"]["name"] for i in http(sim_server, "GET", core + quote("source=ctl")).json["items"]] == ["e2"]
    assert [i["metadata"]["name"] for i in http(sim_server, "GET", core + quote("reportingComponent=ctl")).json["items"]] == ["e2"]
    assert [i["metadata"]["name"] for i in http(sim_server, "GET", core + quote(r"reason=a\,b\=c")).json["items"]] == ["e2"]
    v1 = "/apis/events.k8s.io/v1/events?fieldSelector="
    assert [i["metadata"]["name"] for i in http(sim_server, "GET", v1 + quote("regarding.name=n1")).json["items"]] == ["e2"]
    rejected = http(sim_server, "GET", v1 + quote("involvedObject.name=n1"))
    assert rejected.json["message"] == "field label not supported: involvedObject.name"
