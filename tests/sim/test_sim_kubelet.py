"""Simulated kubelets: one HTTPS port per Node published in the Node's status, webhook-style
bearer authn/authz, ``/pods`` as kubelet reports it (static pods, not their mirrors), ``/healthz``,
and per-node accounting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import urllib3

from kubestream.sim.config import DenyRule
from kubestream.sim.nodes.staticpods import (
    CONFIG_HASH,
    CONFIG_MIRROR,
    CONFIG_SOURCE,
    mirror_of,
    static_manifest,
)
from kubestream.sim.server import SimServer
from kubestream.sim.testing import running_sim
from kubestream.sim.workload.bodies import node_object

TOKENS = {"admin-token": "admin", "viewer-token": "viewer", "pods-only": "lister"}
DENY = [DenyRule(resource="nodes/pods", user="viewer"), DenyRule(resource="nodes/proxy", user="viewer"),
        DenyRule(resource="nodes/proxy", user="lister")]


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with running_sim(kubelets=True, tokens=TOKENS, deny=DENY, kubelet_sync_s=0.05) as server:
        for i, name in enumerate(("node-a", "node-b")):
            server.cluster.create("nodes", node_object(name, i, "zone-a", time.time()))
        yield server


def _get(server: SimServer, node: str, path: str, token: str | None = "admin-token") -> urllib3.BaseHTTPResponse:
    endpoint = server.kubelet(node)
    pool = urllib3.PoolManager(ca_certs=str(server.kubelet_ca_path))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return pool.request("GET", endpoint.url + path, headers=headers, timeout=10, retries=False)


def _pod(name: str, node: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.27"}]},
            "status": {"phase": "Running"}}


def test_each_node_gets_its_own_port_published_in_its_status(sim: SimServer) -> None:
    a, b = sim.kubelet("node-a"), sim.kubelet("node-b")
    assert a.port != b.port and a.port != sim.port
    status = sim.cluster.get("nodes", None, "node-a")["status"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == a.port
    internal = [x["address"] for x in status["addresses"] if x["type"] == "InternalIP"]
    assert internal == ["127.0.0.1"]
    assert a.url == f"https://127.0.0.1:{a.port}"


def test_pods_lists_only_the_nodes_pods_without_touching_the_api_server(sim: SimServer) -> None:
    sim.cluster.create("pods", _pod("on-a", "node-a"))
    sim.cluster.create("pods", _pod("on-b", "node-b"))
    sim.requests.reset()
    for _ in range(3):
        resp = _get(sim, "node-a", "/pods")
    body = orjson.loads(resp.data)
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert (body["kind"], body["apiVersion"]) == ("PodList", "v1")
    assert [p["metadata"]["name"] for p in body["items"]] == ["on-a"]
    assert "kind" not in body["items"][0]
    assert sim.requests.count(verb="list", resource="pods") == 0
    assert sim.kubelet_requests.count(node="node-a", verb="get", path="/pods") == 3
    assert sim.kubelet_requests.count(node="node-b") == 0


def test_static_pod_is_reported_with_its_own_uid_while_the_api_holds_the_mirror(sim: SimServer) -> None:
    node_uid = sim.cluster.get("nodes", None, "node-a")["metadata"]["uid"]
    static = static_manifest({"metadata": {"name": "etcd", "namespace": "kube-system"},
                              "spec": {"containers": [{"name": "etcd", "image": "etcd:3.5"}]}},
                             "node-a", "2026-12-03T07:00:00.000000000Z")
    mirror = sim.cluster.create("pods", mirror_of(static, node_uid))
    assert mirror["metadata"]["name"] == "etcd-node-a"
    assert mirror["metadata"]["annotations"][CONFIG_MIRROR] == static["metadata"]["uid"]
    assert mirror["metadata"]["ownerReferences"][0]["kind"] == "Node"
    items = orjson.loads(_get(sim, "node-a", "/pods").data)["items"]
    reported = next(p for p in items if p["metadata"]["name"] == "etcd-node-a")
    assert reported["metadata"]["uid"] == static["metadata"]["uid"] != mirror["metadata"]["uid"]
    annotations = reported["metadata"]["annotations"]
    assert CONFIG_MIRROR not in annotations
    assert annotations[CONFIG_HASH] == static["metadata"]["uid"] and annotations[CONFIG_SOURCE] == "file"
    assert "ownerReferences" not in reported["metadata"]


def test_healthz_answers_ok_with_the_token_the_server_hands_out(sim: SimServer) -> None:
    resp = _get(sim, "node-b", "/healthz", sim.kubelet_token())
    assert (resp.status, resp.data) == (200, b"ok")


@pytest.mark.parametrize("path", ["/nope", "/../../etc/passwd", "/pods/%00"])
def test_unknown_paths_are_a_plain_404(sim: SimServer, path: str) -> None:
    resp = _get(sim, "node-a", path)
    assert resp.status == 404 and b"404 page not found" in resp.data


def test_write_methods_are_405(sim: SimServer) -> None:
    pool = urllib3.PoolManager(ca_certs=str(sim.kubelet_ca_path))
    resp = pool.request("POST", sim.kubelet("node-a").url + "/pods", headers={"Authorization": "Bearer admin-token"},
                        timeout=10, retries=False)
    assert resp.status == 405
    assert sim.kubelet_requests.count(node="node-a", verb="create", code=405) == 1


@pytest.mark.parametrize("token", [None, "wrong"])
def test_missing_or_unknown_token_is_401(sim: SimServer, token: str | None) -> None:
    resp = _get(sim, "node-a", "/pods", token)
    assert (resp.status, resp.data) == (401, b"Unauthorized")
    assert sim.kubelet_requests.count(node="node-a", code=401) == 1


def test_identity_without_nodes_pods_or_proxy_is_403(sim: SimServer) -> None:
    resp = _get(sim, "node-a", "/pods", "viewer-token")
    assert resp.status == 403
    assert resp.data == b"Forbidden (user=viewer, verb=get, resource=nodes, subresource=proxy)"


def test_fine_grained_nodes_pods_is_enough_for_pods_but_not_other_paths(sim: SimServer) -> None:
    assert _get(sim, "node-a", "/pods", "pods-only").status == 200
    assert _get(sim, "node-a", "/containerLogs/default/x/app", "pods-only").status == 403  # nodes/proxy


def test_a_node_created_later_gets_a_kubelet_and_a_deleted_one_loses_it(sim: SimServer) -> None:
    sim.cluster.create("nodes", node_object("node-c", 2, "zone-b", time.time()))
    assert _get(sim, "node-c", "/healthz").status == 200
    sim.cluster.delete("nodes", None, "node-c")
    with pytest.raises(KeyError):
        sim.kubelet("node-c")


def test_without_kubelets_asking_for_one_says_how_to_enable_it() -> None:
    with running_sim() as server, pytest.raises(RuntimeError, match="kubelets=True"):
        server.kubelet("node-a")


def _logged_pod(server: SimServer, tmp_path: Any, name: str, lines: int) -> tuple[dict[str, Any], list[bytes]]:
    from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter
    writer = NodeLogWriter(NodeLogConfig(root=tmp_path / "pods", node="node-a"), cluster=server.cluster)
    server.serve_node_logs(writer)
    cid = "containerd://" + "a" * 64
    pod = server.cluster.create("pods", {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "nginx:1.27"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "app", "restartCount": 0, "ready": True, "image": "nginx:1.27", "imageID": "", "containerID": cid,
            "state": {"running": {"startedAt": "2026-12-03T05:00:00Z"}}, "lastState": {}}]}})
    writer.sync_pods()
    seqs = [b"seq=%d" % writer.write_line(pod["metadata"]["uid"], "app", "plain", "stdout")[0].seq
            for _ in range(lines)]
    writer.stop()
    return pod, seqs


def test_container_logs_reads_the_node_log_writers_files_with_kubelets_options(sim: SimServer, tmp_path: Any) -> None:
    _, seqs = _logged_pod(sim, tmp_path, "web", 4)
    reply = _get(sim, "node-a", "/containerLogs/default/web/app")
    assert reply.status == 200 and [x.rsplit(b" ", 1)[1] for x in reply.data.splitlines()] == seqs
    tail = _get(sim, "node-a", "/containerLogs/default/web/app?tailLines=1&timestamps=true").data.splitlines()
    assert len(tail) == 1 and tail[0].endswith(seqs[-1]) and tail[0][:4].isdigit()
    previous = _get(sim, "node-a", "/containerLogs/default/web/app?previous=true")
    assert previous.status == 400 and previous.data == b'previous terminated container "app" in pod "web" not found\n'
    assert _get(sim, "node-a", "/containerLogs/default/web/nope").status == 400
    # Another node's kubelet does not run the pod.
    assert _get(sim, "node-b", "/containerLogs/default/web/app").status == 404
    # containerLogs is authorized as nodes/proxy: the lister (nodes/pods only) is refused.
    denied = _get(sim, "node-a", "/containerLogs/default/web/app", token="pods-only")
    assert denied.status == 403 and b"subresource=proxy" in denied.data


def test_stats_summary_has_the_summary_api_shape_with_stable_plausible_numbers(sim: SimServer) -> None:
    sim.cluster.create("pods", {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "nginx:1.27"}]},
        "status": {"phase": "Running", "startTime": "2026-12-03T05:00:00Z",
                   "containerStatuses": [{"name": "app", "state": {"running": {}}}]}})
    first = orjson.loads(_get(sim, "node-a", "/stats/summary").data)
    assert first["node"]["nodeName"] == "node-a"
    [pod] = first["pods"]
    assert pod["podRef"]["name"] == "web" and [c["name"] for c in pod["containers"]] == ["app"]
    app = pod["containers"][0]
    assert 10_000_000 <= app["cpu"]["usageNanoCores"] <= 500_000_000
    assert 20 << 20 <= app["memory"]["workingSetBytes"] <= 520 << 20
    assert first["node"]["memory"]["workingSetBytes"] > app["memory"]["workingSetBytes"]
    again = orjson.loads(_get(sim, "node-a", "/stats/summary").data)
    assert again["pods"][0]["containers"][0]["memory"] == app["memory"] | {"time": again["node"]["memory"]["time"]}
    assert orjson.loads(_get(sim, "node-b", "/stats/summary").data)["pods"] == []
    # /stats is checked against nodes/stats alone (no proxy fallback): the viewer lacks it.
    sim.config.deny = [*DENY, DenyRule(resource="nodes/stats", user="lister")]
    denied = _get(sim, "node-a", "/stats/summary", token="pods-only")
    assert denied.status == 403 and denied.data == b"Forbidden (user=lister, verb=get, resource=nodes, subresource=stats)"
    assert _get(sim, "node-a", "/stats/summary", token="nope").status == 401


def test_kubelet_requests_show_in_the_api_servers_log_marked_as_kubelets_but_not_in_its_counts(
        sim: SimServer) -> None:
    from kubestream.sim.testing import http
    sim.requests.reset()
    assert _get(sim, "node-a", "/pods").status == 200
    assert _get(sim, "node-a", "/stats/summary", token="viewer-token").status == 200
    kubelet = [r for r in sim.requests.records(server=None) if r.server == "kubelet"]
    assert [(r.node, r.verb, r.resource, r.subresource, r.code, r.user) for r in kubelet] == [
        ("node-a", "get", "nodes", "pods", 200, "admin"), ("node-a", "get", "nodes", "stats", 200, "viewer")]
    assert sim.requests.records(server="kubelet") == kubelet
    assert not any(r.server == "kubelet" for r in sim.requests.records())
    assert sim.requests.count(resource="nodes") == 0 and "get nodes" not in sim.requests.counts()
    document = http(sim, "GET", "/_sim/requests", headers={"Authorization": "Bearer admin-token"}).json
    served = [(r["server"], r["node"], r["path"]) for r in document["records"] if r["server"] == "kubelet"]
    assert served == [("kubelet", "node-a", "/pods"), ("kubelet", "node-a", "/stats/summary")]
