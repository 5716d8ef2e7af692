"""The workload generator against the real in-process SimCluster: determinism, event rate, the
object graph a real cluster has, and a ledger that matches what the API holds."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from kubestream.sim.config import SimConfig
from kubestream.sim.server import SimServer
from kubestream.sim.storage.cluster import SimCluster
from kubestream.sim.testing import WatchReader
from kubestream.sim.workload.bodies import populate_pods, realistic_pod
from kubestream.sim.workload.event_ledger import occurrences
from kubestream.sim.workload.generator import Workload, run_workload_from_cli
from kubestream.sim.workload.scenario import WorkloadConfig

T0 = 1_800_000_000.0
BUSY: dict[str, Any] = {
    # Everything happens often, so a few simulated seconds exercise every path.
    "pod_churn_per_s": 2.0, "rollouts_per_s": 0.3, "statefulset_restarts_per_s": 1.0, "cronjob_period_s": 3.0,
    "job_duration_s": 1.0, "short_lived_per_s": 2.0, "short_lived_lifetime_s": 1.0, "crashloop_fraction": 0.4,
    "crashloop_period_s": 1.0, "ephemeral_fraction": 0.3, "failed_scheduling_fraction": 0.3,
    "series_finish_s": 2.0, "series_refresh_s": 5.0, "delete_grace_s": 0.0, "start_time": T0,
}


@pytest.fixture
def cluster() -> Iterator[SimCluster]:
    c = SimCluster(SimConfig(pod_grace_s=0.0))
    yield c
    c.close()


def _run(config: WorkloadConfig, ticks: int) -> tuple[Workload, SimCluster]:
    cluster = SimCluster(SimConfig(pod_grace_s=0.0))
    workload = Workload(cluster, config)
    for _ in range(ticks):
        workload.step()
    workload.flush()
    return workload, cluster


def _truth(cluster: SimCluster) -> dict[str, int]:
    return {e["metadata"]["uid"]: occurrences(e) for e in cluster.list("events")}


def test_same_seed_same_writes_tick_by_tick() -> None:
    config = dict(BUSY, events_per_s=300.0, journal=True)
    a, ca = _run(WorkloadConfig(seed=7, **config), 80)
    b, cb = _run(WorkloadConfig(seed=7, **config), 80)
    c, cc = _run(WorkloadConfig(seed=8, **config), 80)
    for cl in (ca, cb, cc):
        cl.close()
    assert len(a.tick_digests) == 80
    assert a.tick_digests == b.tick_digests
    assert a.ledger.digest() == b.ledger.digest()
    assert a.tick_digests[-1] != c.tick_digests[-1] and a.ledger.digest() != c.ledger.digest()
    assert not a.stats.errors and not c.stats.errors


def test_a_thousand_event_writes_per_second_in_process(cluster: SimCluster) -> None:
    workload = Workload(cluster, WorkloadConfig(seed=1, events_per_s=1500.0, events_api="core"))
    started = time.perf_counter()
    workload.run_for(1.0)
    elapsed = time.perf_counter() - started
    writes = workload.event_stats()["writes"]
    print(f"paced: {writes} event writes in {elapsed:.2f} s = {writes / elapsed:.0f}/s")
    assert writes >= 1000 and elapsed <= 2.0
    # Unpaced, to report the ceiling.
    before, started = writes, time.perf_counter()
    for _ in range(20):
        workload.step()
    burst = workload.event_stats()["writes"] - before
    print(f"unpaced: {burst / (time.perf_counter() - started):.0f} event writes/s")
    assert not workload.stats.errors


@pytest.mark.parametrize("mode", ["core", "events.k8s.io", "mixed"])
def test_ledger_equals_what_the_api_holds(mode: str) -> None:
    workload, cluster = _run(WorkloadConfig(seed=3, events_per_s=200.0, events_api=mode, **BUSY), 60)
    try:
        assert not workload.stats.errors
        truth = _truth(cluster)
        assert workload.ledger.per_uid() == truth
        assert workload.ledger.total() == sum(truth.values()) > 1000
        apis = {e.api for e in workload.ledger.entries()}
        assert apis == {"core": {"core/v1"}, "events.k8s.io": {"events.k8s.io/v1"},
                        "mixed": {"core/v1", "events.k8s.io/v1"}}[mode]
    finally:
        cluster.close()


def test_an_http_watcher_summing_count_deltas_matches_the_ledger(sim_server: SimServer) -> None:
    cluster = sim_server.cluster
    reader = WatchReader(sim_server, f"/api/v1/events?watch=1&resourceVersion={cluster.resource_version}"
                                     "&timeoutSeconds=10")
    try:
        workload = Workload(cluster, WorkloadConfig(seed=6, events_per_s=200.0, events_api="mixed", **BUSY))
        for _ in range(30):
            workload.step()
        workload.flush()
        truth = workload.ledger.per_uid()
        # What an exporter does (spec §5): per uid, add only new - last seen.
        seen: dict[str, int] = {}
        summed = 0
        while seen != truth:
            event = reader.next_event()
            assert event is not None, "stream ended before the watcher caught up"
            if event["type"] in ("ADDED", "MODIFIED"):
                uid, count = event["object"]["metadata"]["uid"], occurrences(event["object"])
                summed += count - seen.get(uid, 0)
                seen[uid] = count
    finally:
        reader.close()
    assert summed == workload.ledger.total() > 500
    assert not workload.stats.errors


def test_series_counts_jump_in_the_watch(cluster: SimCluster) -> None:
    workload = Workload(cluster, WorkloadConfig(seed=5, events_per_s=200.0, events_api="events.k8s.io", **BUSY))
    rv0 = cluster.resource_version
    for _ in range(60):
        workload.step()
    workload.flush()
    last: dict[str, int] = {}
    jumps = 0
    changes, _ = cluster.store.changes_since("events", rv0)
    for change in changes:
        if change.type == "DELETED":
            continue
        uid, count = change.obj["metadata"]["uid"], occurrences(change.obj)
        if uid in last and count - last[uid] > 1:
            jumps += 1
        last[uid] = count
    assert jumps > 0
    assert workload.ledger.per_uid() == _truth(cluster)


def _owner(obj: dict[str, Any]) -> dict[str, Any]:
    refs = obj["metadata"].get("ownerReferences") or []
    assert len(refs) == 1 and refs[0]["controller"] is True
    return dict(refs[0])


def test_object_graph_looks_like_a_real_cluster(cluster: SimCluster) -> None:
    workload = Workload(cluster, WorkloadConfig(seed=11, events_per_s=100.0, nodes=3, **BUSY))
    seen_sts_uids: dict[str, set[str]] = {}
    short_lived_seen: set[str] = set()
    for _ in range(60):
        workload.step()
        for pod in cluster.list("pods"):
            name = pod["metadata"]["name"]
            if name.startswith("db-"):
                seen_sts_uids.setdefault(name, set()).add(pod["metadata"]["uid"])
            if name.startswith(("debug-shell-", "migrate-", "curl-test-", "smoke-")):
                short_lived_seen.add(name)
    assert not workload.stats.errors

    nodes = cluster.list("nodes")
    assert len(nodes) == 3
    for node in nodes:
        types = {a["type"] for a in node["status"]["addresses"]}
        assert types == {"InternalIP", "Hostname"}
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == node["metadata"]["name"]
        assert "topology.kubernetes.io/zone" in labels and "node-role.kubernetes.io/worker" in labels
    assert cluster.get("namespaces", None, "payments")["metadata"]["labels"]["team"] == "payments"

    pods = cluster.list("pods")
    running = [p for p in pods if p["status"]["phase"] == "Running"]
    assert running
    for pod in running:
        st = pod["status"]
        assert pod["spec"]["nodeName"] and st["podIP"] and st["hostIP"] and st["podIPs"] == [{"ip": st["podIP"]}]
        for cs in st["containerStatuses"]:
            assert cs["containerID"].startswith("containerd://") and cs["imageID"] and cs["image"]
        assert len(pod["metadata"]["labels"]) >= 10 and len(pod["metadata"]["annotations"]) == 5

    # Deployment → ReplicaSet (pod-template-hash) → Pod.
    rs_pods = [p for p in pods if (p["metadata"].get("ownerReferences") or [{}])[0].get("kind") == "ReplicaSet"]
    assert rs_pods
    for pod in rs_pods:
        rs_ref = _owner(pod)
        rs = cluster.get("replicasets", pod["metadata"]["namespace"], rs_ref["name"], group="apps")
        assert rs["metadata"]["uid"] == rs_ref["uid"]
        assert rs_ref["name"].endswith("-" + pod["metadata"]["labels"]["pod-template-hash"])
        assert _owner(rs)["kind"] == "Deployment"
        assert any(p.get("initContainers") for p in [pod["spec"]])
    # CronJob → Job → Pod.
    jobs = cluster.list("jobs", group="batch")
    assert jobs and all(_owner(j)["kind"] == "CronJob" for j in jobs)
    assert any(p["status"]["phase"] == "Succeeded" for p in pods if _kind_of_owner(p) == "Job")
    # DaemonSet: one pod per node.
    ds_nodes = [p["spec"]["nodeName"] for p in pods if _kind_of_owner(p) == "DaemonSet"]
    assert sorted(ds_nodes) == sorted(n["metadata"]["name"] for n in nodes)
    # StatefulSet pod names come back with new uids.
    assert any(len(uids) > 1 for uids in seen_sts_uids.values())
    assert set(seen_sts_uids) <= {"db-0", "db-1", "db-2"}
    # Short-lived pods came and went.
    current = {p["metadata"]["name"] for p in pods}
    assert short_lived_seen - current
    # Crash loops: restarts and BackOff events.
    assert any(cs["restartCount"] > 1 for p in running for cs in p["status"]["containerStatuses"])
    assert workload.ledger.by_reason().get("BackOff", 0) > 0
    assert any(p["spec"].get("ephemeralContainers") for p in running)
    # Services select pods and their EndpointSlices list them.
    slices = cluster.list("endpointslices", group="discovery.k8s.io")
    assert slices and any(s["endpoints"] for s in slices)
    pod_uids = {p["metadata"]["uid"] for p in pods}
    for s in slices:
        assert s["metadata"]["labels"]["kubernetes.io/service-name"]
        assert all(e["targetRef"]["uid"] in pod_uids for e in s["endpoints"])
    reasons = set(workload.ledger.by_reason())
    assert {"Scheduled", "FailedScheduling", "Pulling", "Pulled", "Created", "Started", "BackOff", "Killing",
            "Unhealthy", "OOMKilling", "SuccessfulCreate", "SuccessfulDelete", "ScalingReplicaSet",
            "SawCompletedJob", "Completed", "NodeReady", "RegisteredNode"} <= reasons


def _kind_of_owner(pod: dict[str, Any]) -> str:
    refs = pod["metadata"].get("ownerReferences") or [{}]
    return str(refs[0].get("kind", ""))


def test_container_events_point_at_the_container(cluster: SimCluster) -> None:
    workload = Workload(cluster, WorkloadConfig(seed=2, events_per_s=20.0, events_api="core", start_time=T0))
    for _ in range(5):
        workload.step()
    started = [e for e in cluster.list("events") if e["reason"] == "Started"]
    assert started
    for e in started:
        assert e["source"]["component"] == "kubelet" and e["source"]["host"].startswith("sim-worker-")
        assert e["involvedObject"]["fieldPath"].startswith(("spec.containers{", "spec.initContainers{"))
        assert e["involvedObject"]["kind"] == "Pod" and e["involvedObject"]["uid"]


def test_realistic_pod_size_and_bulk_population(cluster: SimCluster) -> None:
    import random

    pod = realistic_pod(random.Random(1), namespace="default", name="api-5d8f7c9b6-x7k2p", node="n1",
                        node_index=1, pod_ip="10.244.1.7")
    size = len(orjson.dumps(pod))
    assert 4000 <= size <= 5500, size
    assert len(pod["metadata"]["labels"]) == 10 and len(pod["metadata"]["annotations"]) == 5
    started = time.perf_counter()
    names = populate_pods(cluster, 500, seed=4)
    elapsed = time.perf_counter() - started
    print(f"populated 500 pods in {elapsed:.2f} s")
    assert len(names) == len(set(names)) == 500
    stored = cluster.list("pods")
    assert len(stored) == 500
    sizes = sorted(len(orjson.dumps(p)) for p in stored)
    # Stored, a pod carries the managedFields of its writers (controller spec, kubelet status):
    # close to twice its written size, as real pods are (the v1-35 pod-list replay: 1.56-1.77x).
    assert {(m["manager"], m.get("subresource")) for m in stored[0]["metadata"]["managedFields"]} == {
        ("kube-controller-manager", None), ("kubelet", "status")}
    assert 7000 <= sizes[len(sizes) // 2] <= 11000
    assert len(cluster.list("pods", field_selector="spec.nodeName=bulk-node-3")) == 50


def test_background_thread_and_cli_hook(cluster: SimCluster) -> None:
    args = argparse.Namespace(seed=9, events_per_s=100.0, events_api="core", workload=True)
    workload = run_workload_from_cli(cluster, args)
    try:
        deadline = time.monotonic() + 5
        while workload.tick < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        workload.stop()
    assert workload.tick >= 5 and workload.config.seed == 9
    ticks = workload.tick
    time.sleep(0.15)
    assert workload.tick == ticks  # stopped for good
    assert not workload.stats.errors
    assert workload.ledger.per_uid() == _truth(cluster)


def test_duration_ends_the_background_run(cluster: SimCluster) -> None:
    workload = Workload(cluster, WorkloadConfig(seed=1, events_per_s=10.0, tick_s=0.05, duration_s=0.3))
    workload.start()
    time.sleep(0.6)
    ticks = workload.tick
    assert 3 <= ticks <= 8
    workload.stop()
    assert workload.tick == ticks


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="events_api"):
        WorkloadConfig(events_api="both")
    with pytest.raises(ValueError):
        WorkloadConfig(tick_s=0)


def test_statefulset_pods_wait_for_the_old_pod_to_go() -> None:
    cluster = SimCluster(SimConfig(pod_grace_s=0.5))
    try:
        config = {**BUSY, "delete_grace_s": None, "statefulset_restarts_per_s": 4.0, "tick_s": 0.05}
        workload = Workload(cluster, WorkloadConfig(seed=3, **config))
        for _ in range(40):  # 2 simulated s in far less wall time: old pods are still terminating
            workload.step()
        assert not [e for e in workload.stats.errors if "409" in e]
        time.sleep(0.6)
        for _ in range(5):
            workload.step()
        names = {p["metadata"]["name"] for p in cluster.list("pods") if p["metadata"]["name"].startswith("db-")}
        assert names == {"db-0", "db-1", "db-2"}
        assert not workload.stats.errors
    finally:
        cluster.close()
