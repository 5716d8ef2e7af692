"""The node agent as a real process in ``logs.metadata_source: kubelet`` mode against the
simulator's HTTPS kubelets: its log lines are enriched from the kubelet's ``/pods`` (a pod that
appears after start included), the API server sees no pod list or watch, the kubelet sees the
``/pods`` reads, and a 403 from the kubelet is counted and survived."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.agent.harness import AgentProcess, free_port, read_archive, scrape, write_config

from kubestream.sim.config import DenyRule
from kubestream.sim.server import SimServer
from kubestream.sim.testing import running_sim

TOKEN = "logs-agent-token"
NODE = "node-1"


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with running_sim(kubelets=True, kubelet_sync_s=0.05, tokens={TOKEN: "system:serviceaccount:kubestream:logs"},
                     bookmark_interval_s=0.5) as server:
        server.cluster.create("namespaces", {"metadata": {"name": "shop", "labels": {"team": "payments"}}})
        server.cluster.create("nodes", {"metadata": {"name": NODE, "labels": {"zone": "eu-1a"}}})
        server.kubelet(NODE)  # its address is in the Node's status from here on
        yield server


def _pod(server: SimServer, name: str, labels: dict[str, str]) -> dict[str, Any]:
    server.cluster.create("pods", {"metadata": {"name": name, "namespace": "shop", "labels": labels},
                                   "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "shop/web:2.1"}]}})
    return server.cluster.patch("pods", "shop", name, {"status": {"phase": "Running", "podIP": "10.1.2.3"}})


def _write_lines(pods_dir: Path, pod: dict[str, Any], count: int) -> None:
    meta = pod["metadata"]
    directory = pods_dir / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / "app"
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "0.log").open("a") as f:
        for i in range(count):
            f.write(f"2026-12-03T07:00:00.{i:09d}Z stdout F {meta['name']} line {i}\n")


def _records_of(archive: Path, pod: str, want: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        records = [r for r in read_archive(archive) if r["kubernetes"].get("pod_name") == pod]
        if len(records) >= want or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def _config(tmp_path: Path, sim: SimServer, port: int) -> Path:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    kubelet = {"ca_file": str(sim.kubelet_ca_path), "token_file": str(token_file), "refresh_s": 0.5}
    return write_config(tmp_path, sim, events={"enabled": False},
                        logs={"enabled": True, "node_name": NODE, "pods_dir": str(tmp_path / "pods"),
                              "containers_dir": None, "sweep_interval_s": 0.5, "metadata_source": "kubelet",
                              "kubelet": kubelet},
                        batch={"max_records": 50, "max_age_s": 0.3}, server={"host": "127.0.0.1", "port": port})


def test_node_agent_enriches_from_the_kubelet_without_pod_requests_to_the_api(sim: SimServer, tmp_path: Path) -> None:
    web = _pod(sim, "web", {"app": "web"})
    _write_lines(tmp_path / "pods", web, 20)
    port = free_port()
    sim.requests.reset()
    agent = AgentProcess(_config(tmp_path, sim, port), tmp_path).start()
    try:
        agent.wait_ready()
        # A pod created after start: its log directory (an unknown uid) makes the agent ask again.
        late = _pod(sim, "late", {"app": "late"})
        _write_lines(tmp_path / "pods", late, 10)
        early_records = _records_of(tmp_path / "archive", "web", 20)
        late_records = _records_of(tmp_path / "archive", "late", 10)
        # The kubelet refuses from now on: counted, the agent keeps running.
        sim.config.deny = [DenyRule(resource="nodes/pods"), DenyRule(resource="nodes/proxy")]
        deadline = time.monotonic() + 20
        while scrape(port).get(("kubestream_kubelet_errors_total", (("reason", "forbidden"),)), 0.0) < 1:
            assert time.monotonic() < deadline, agent.log()
            time.sleep(0.2)
    finally:
        code = agent.terminate()
    assert code == 0, agent.log()
    assert len(early_records) == 20 and len(late_records) == 10
    for record, labels in ((early_records[0], {"app": "web"}), (late_records[-1], {"app": "late"})):
        k8s = record["kubernetes"]
        assert k8s["enrichment"] == "ok", (k8s, agent.log())
        assert k8s["labels"] == labels and k8s["container_image"] == "shop/web:2.1"
        assert k8s["namespace_labels"]["team"] == "payments" and k8s["node_labels"] == {"zone": "eu-1a"}
    assert sim.requests.count(resource="pods") == 0, sim.requests.counts()
    assert sim.kubelet_requests.count(node=NODE, path="/pods", code=200) >= 2
    assert sim.kubelet_requests.count(node=NODE, path="/pods", code=403) >= 1
    assert agent.log().count("HTTP 403") == 1, "one line per state change, not per retry"
