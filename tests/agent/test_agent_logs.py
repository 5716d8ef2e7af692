"""The node agent (``logs.enabled``, events off) as a real process against the simulator and its
node log writer: every line written on the node is archived exactly once with its pod's metadata,
across rotation, pod churn and a kill -9; and the control plane sees one node-scoped pod watch,
no GET per pod (one per owner and namespace) and no Events watch."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from tests.agent.harness import REMOVE_AFTER_S, AgentProcess, make_workload, write_config
from tests.logs.logs_source_support import archive_keys, assert_exactly_once, read_archive

from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter
from kubestream.sim.server import SimServer


def test_node_agent_archives_every_line_once(sim: SimServer, tmp_path: Path) -> None:
    workload = make_workload(sim, seed=61, rate=50, pod_churn_per_s=1.0, short_lived_per_s=0.5,
                             delete_grace_s=0.0)
    workload.step()
    node = workload.node_names[0]
    writer = NodeLogWriter(
        NodeLogConfig(root=tmp_path / "pods", containers_dir=tmp_path / "containers", node=node, seed=61,
                      lines_per_s=800, rotate_bytes=256 * 1024, max_files=3, remove_after_s=REMOVE_AFTER_S,
                      sync_every_s=0.3),
        cluster=sim.cluster)
    config = write_config(
        tmp_path, sim,
        events={"enabled": False},
        logs={"enabled": True, "node_name": node, "pods_dir": str(tmp_path / "pods"),
              "containers_dir": str(tmp_path / "containers"), "sweep_interval_s": 1.0},
        batch={"max_records": 200, "max_age_s": 0.5},
    )
    synced_at = time.time()
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    workload.start()
    writer.start()
    try:
        time.sleep(2.0)
        agent.kill()
        time.sleep(0.5)
        agent.start()
        agent.wait_ready()
        time.sleep(2.0)
    finally:
        workload.stop()
        writer.stop()
    expected = writer.ledger.keys()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(archive_keys(read_archive(tmp_path / "archive"))) < len(expected):
        time.sleep(0.3)
    assert agent.terminate() == 0, agent.log()
    records = read_archive(tmp_path / "archive")
    assert len(expected) > 2000
    assert_exactly_once(archive_keys(records), expected)
    # The metadata is the pod's own, looked up by the uid in the path.
    pods = {p["metadata"]["uid"]: p for p in sim.cluster.list("pods")}
    for r in records[:500]:
        k8s = r["kubernetes"]
        pod = pods.get(k8s["pod_uid"])
        if pod is not None:
            assert k8s["pod_name"] == pod["metadata"]["name"]
            assert k8s["node_name"] == node
    # Control-plane cost of a node agent.
    seen = [r for r in sim.requests.records() if r.time >= synced_at]
    assert not [r for r in seen if r.resource == "events"], "a node agent never touches Events"
    # No per-pod GETs: owners and namespaces of the node's pods are one GET per object.
    gets = [r for r in seen if r.verb == "get"]
    assert {r.resource for r in gets} <= {"namespaces", "replicasets.apps", "jobs.batch"}, gets
    fetched = Counter(r.path for r in gets)
    assert not fetched or max(fetched.values()) <= 2, "each object fetched once per agent start"
    wide = [r for r in seen if r.resource in ("replicasets.apps", "jobs.batch", "services", "namespaces")
            and r.verb in ("list", "watch") and r.namespace is None]
    assert not wide, "nothing watched cluster-wide"
    pod_watches = [r for r in seen if r.resource == "pods" and r.verb == "watch"]
    assert pod_watches and all(r.field_selector == f"spec.nodeName={node}" for r in pod_watches)
    assert len(pod_watches) == 2, "one node-scoped pod watch per agent start"
