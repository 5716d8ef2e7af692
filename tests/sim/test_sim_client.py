"""The official Python client (kubernetes==37.0.2, sync and aio) against the simulator:
pagination, Watch.stream with bookmarks, 410 handling, and leader election over Leases."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config
from kubernetes.client.rest import ApiException
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from kubestream.sim.server import SimServer
from kubestream.sim.testing import running_sim


def core_api(kubeconfig: Path) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def make_pods(server: SimServer, n: int) -> None:
    for i in range(n):
        server.cluster.create("pods", {"metadata": {"name": f"p{i}"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})


def test_sync_client_paginates(sim_server: SimServer, sim_kubeconfig: Path) -> None:
    make_pods(sim_server, 5)
    api = core_api(sim_kubeconfig)
    names, token, rvs = [], None, set()
    while True:
        page = api.list_namespaced_pod("default", limit=2, _continue=token)
        names += [p.metadata.name for p in page.items]
        rvs.add(page.metadata.resource_version)
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"p{i}" for i in range(5)] and len(rvs) == 1
    assert api.read_namespaced_pod("p0", "default").status.phase == "Pending"


def test_watch_stream_bookmarks_advance_resource_version(sim_kubeconfig: Path) -> None:
    with running_sim(bookmark_interval_s=0.2) as server:
        kubeconfig = server.write_kubeconfig(sim_kubeconfig.parent / "kc2")
        api = core_api(kubeconfig)
        start_rv = api.list_namespaced_pod("default").metadata.resource_version
        server.cluster.create("leases", {"metadata": {"name": "other", "namespace": "default"}},
                              group="coordination.k8s.io")  # advances the global RV, not pods
        w = watch.Watch()
        seen = []
        for event in w.stream(api.list_namespaced_pod, "default", resource_version=start_rv,
                              allow_watch_bookmarks=True, timeout_seconds=5):
            seen.append(event["type"])
            if event["type"] == "BOOKMARK":
                w.stop()
        assert seen == ["BOOKMARK"]
        assert int(w.resource_version) == server.cluster.resource_version > int(start_rv)


def test_watch_410_retry_once_then_relist_recovers(sim_server: SimServer, sim_kubeconfig: Path) -> None:
    make_pods(sim_server, 2)
    api = core_api(sim_kubeconfig)
    old_rv = api.list_namespaced_pod("default").metadata.resource_version
    make_pods_after = {"metadata": {"name": "later"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    sim_server.cluster.create("pods", make_pods_after)
    sim_server.cluster.compact()
    sim_server.requests.reset()
    with pytest.raises(ApiException) as raised:
        for _ in watch.Watch().stream(api.list_namespaced_pod, "default", resource_version=old_rv):
            pass
    assert raised.value.status == 410
    assert sim_server.requests.count(verb="watch") == 2  # the client retried once with the same RV
    relisted = api.list_namespaced_pod("default")
    assert [p.metadata.name for p in relisted.items] == ["later", "p0", "p1"]
    w = watch.Watch()
    stream = w.stream(api.list_namespaced_pod, "default", resource_version=relisted.metadata.resource_version,
                      timeout_seconds=5)
    sim_server.cluster.delete("pods", "default", "p0")
    event = next(stream)
    w.stop()
    assert (event["type"], event["object"].metadata.name) == ("DELETED", "p0")


async def test_aio_client_lists_and_watches(sim_server: SimServer, sim_kubeconfig: Path) -> None:
    from kubernetes.aio import watch as aio_watch

    make_pods(sim_server, 3)
    api_client = await aio_config.new_client_from_config(config_file=str(sim_kubeconfig))
    async with api_client:
        api = aio_client.CoreV1Api(api_client)
        first = await api.list_namespaced_pod("default", limit=2)
        rest = await api.list_namespaced_pod("default", limit=2, _continue=first.metadata._continue)
        assert [p.metadata.name for p in first.items + rest.items] == ["p0", "p1", "p2"]
        w = aio_watch.Watch()
        types = []
        async for event in w.stream(api.list_namespaced_pod, "default", timeout_seconds=2):
            types.append(event["type"])
            if len(types) == 3:
                w.stop()
        assert types == ["ADDED"] * 3


def test_leader_election_elects_one_then_fails_over(sim_server: SimServer, sim_kubeconfig: Path) -> None:
    config.load_kube_config(config_file=str(sim_kubeconfig))  # the lock uses the default client
    leaders: list[str] = []
    stopped: list[str] = []
    stopped_when_started: list[list[str]] = []
    lock = threading.Lock()

    def candidate(identity: str) -> None:
        def lead() -> None:
            with lock:
                leaders.append(identity)
                stopped_when_started.append(list(stopped))
            time.sleep(1.0)
            raise RuntimeError("stop leading")  # makes the leader stop renewing, like a crash

        cfg = electionconfig.Config(LeaseLock("sim-lock", "default", identity), lease_duration=3, renew_deadline=2,
                                    retry_period=1, onstarted_leading=lead,
                                    onstopped_leading=lambda: stopped.append(identity))
        leaderelection.LeaderElection(cfg).run()

    threads = [threading.Thread(target=candidate, args=(name,), daemon=True) for name in ("alpha", "beta")]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 15
    while len(leaders) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(leaders) == 2 and leaders[0] != leaders[1], leaders
    assert stopped_when_started == [[], [leaders[0]]]  # the second led only after the first stopped
    lease = sim_server.cluster.get("leases", "default", "sim-lock", group="coordination.k8s.io")
    assert lease["spec"]["holderIdentity"] == leaders[1]
    assert lease["spec"]["renewTime"].endswith("Z") and len(lease["spec"]["renewTime"]) == len("2024-01-01T00:00:00.000000Z")
    assert sim_server.requests.count(verb="update", resource="leases.coordination.k8s.io") >= 1
    for t in threads:  # each candidate returns after it stopped leading; don't outlive the server
        t.join(timeout=10)
    assert sorted(stopped) == ["alpha", "beta"]
