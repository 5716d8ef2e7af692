"""``pods/log`` on the simulated API server, served from the node log writer's CRI files: plain
content, timestamps, container choice, previous instances, tail/since/limit, follow, and the
real error messages; through raw HTTP, the official Python client and kubectl."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter
from kubestream.sim.nodes.staticpods import mirror_of, static_manifest
from kubestream.sim.server import SimServer
from kubestream.sim.storage.names import WallNanos
from kubestream.sim.testing import WatchReader, http, running_sim

NODE = "node-a"
KUBECTL = shutil.which("kubectl")
LOG = "/api/v1/namespaces/default/pods/{}/log"


class ManualClock:
    """Starts ahead of every stamp given so far: stamps are process-wide increasing
    (names.WallNanos), so only a clock ahead of all of them decides its stamps."""

    def __init__(self) -> None:
        self.now = float(int(max(time.time(), WallNanos.latest())) + 1000)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with running_sim() as server:
        yield server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def writer(sim: SimServer, tmp_path: Path, clock: ManualClock) -> Iterator[NodeLogWriter]:
    w = NodeLogWriter(NodeLogConfig(root=tmp_path / "pods", node=NODE), cluster=sim.cluster,
                      clock=clock)
    sim.serve_node_logs(w)
    yield w
    w.stop()


def _status(name: str, restarts: int, last_terminated: bool, waiting: str | None = None) -> dict[str, Any]:
    cid = f"containerd://{(name * 64)[:64]}"
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-11-21T05:00:00Z"}}
    last = {"terminated": {"exitCode": 1, "containerID": cid[:-1] + "0"}} if last_terminated else {}
    return {"name": name, "restartCount": restarts, "ready": True, "image": "nginx:1.27", "imageID": "",
            "containerID": cid, "state": state, "lastState": last}


def _pod(sim: SimServer, name: str, containers: tuple[str, ...] = ("app",), restarts: int = 0,
         waiting: str | None = None) -> dict[str, Any]:
    return sim.cluster.create("pods", {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": NODE, "containers": [{"name": c, "image": "nginx:1.27"} for c in containers]},
        "status": {"phase": "Running",
                   "containerStatuses": [_status(c, restarts, restarts > 0, waiting) for c in containers]}})


def _message_lines(writer: NodeLogWriter, pod: dict[str, Any], container: str, n: int,
                   clock: ManualClock) -> list[bytes]:
    """Write ``n`` plain lines and return the messages as a client reads them (P parts joined)."""
    uid = pod["metadata"]["uid"]
    out = []
    for _ in range(n):
        clock.now += 10
        line = writer.write_line(uid, container, "plain", "stdout")[0]
        out.append(line.seq)
    return [b"seq=%d" % s for s in out]


def _get(sim: SimServer, pod: str, query: str = "") -> Any:
    return http(sim, "GET", LOG.format(pod) + (f"?{query}" if query else ""), headers={"Accept": "*/*"})


def _setup(sim: SimServer, writer: NodeLogWriter, clock: ManualClock, name: str = "web", n: int = 5,
           **kw: Any) -> tuple[dict[str, Any], list[bytes]]:
    pod = _pod(sim, name, **kw)
    writer.sync_pods()
    return pod, _message_lines(writer, pod, kw.get("containers", ("app",))[0], n, clock)


def test_plain_body_is_the_content_without_cri_prefixes(sim: SimServer, writer: NodeLogWriter,
                                                        clock: ManualClock) -> None:
    writer.config.max_line_bytes = 64  # every message becomes P parts and an F part
    _, seqs = _setup(sim, writer, clock)
    reply = _get(sim, "web")
    assert reply.status == 200 and reply.headers["Content-Type"] == "text/plain"
    lines = reply.raw.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 6  # long lines were cut into P/F parts and joined again
    assert [line.rsplit(b" ", 1)[1] for line in lines[:-1]] == seqs
    assert not any(b" stdout " in line[:40] for line in lines)


def test_timestamps_prefix_each_logical_line_once(sim: SimServer, writer: NodeLogWriter, clock: ManualClock) -> None:
    writer.config.max_line_bytes = 64
    _setup(sim, writer, clock, n=3)
    lines = _get(sim, "web", "timestamps=true").raw.splitlines()
    assert len(lines) == 3
    for line in lines:
        stamp, _, rest = line.partition(b" ")
        assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", stamp), stamp
        assert not rest[:4].isdigit()


def test_tail_since_and_limit(sim: SimServer, writer: NodeLogWriter, clock: ManualClock) -> None:
    _, seqs = _setup(sim, writer, clock, n=6)
    assert [x.rsplit(b" ", 1)[1] for x in _get(sim, "web", "tailLines=2").raw.splitlines()] == seqs[-2:]
    assert _get(sim, "web", "tailLines=0").raw == b""
    # Lines were written 10 s apart, the last at the node clock's "now": sinceSeconds counts back
    # from that clock; sinceTime keeps the lines at or after it.
    assert [x.rsplit(b" ", 1)[1] for x in _get(sim, "web", "sinceSeconds=25").raw.splitlines()] == seqs[-3:]
    clock.now += 3600
    assert _get(sim, "web", "sinceSeconds=60").raw == b""
    clock.now -= 3600
    third = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now - 25))
    since = _get(sim, "web", f"sinceTime={third}").raw.splitlines()
    assert [x.rsplit(b" ", 1)[1] for x in since] == seqs[-3:]
    assert len(_get(sim, "web", "limitBytes=7").raw) == 7


@pytest.mark.parametrize(("query", "message"), [
    ("tailLines=-1", 'PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'),
    ("limitBytes=0", 'PodLogOptions "web" is invalid: limitBytes: Invalid value: 0: must be greater than 0'),
    ("sinceSeconds=0", 'PodLogOptions "web" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0'),
])
def test_invalid_options_are_422(sim: SimServer, writer: NodeLogWriter, clock: ManualClock, query: str,
                                 message: str) -> None:
    _setup(sim, writer, clock, n=1)
    reply = _get(sim, "web", query)
    assert (reply.status, reply.json["reason"], reply.json["message"]) == (422, "Invalid", message)


def test_bad_number_is_a_one_line_400(sim: SimServer, writer: NodeLogWriter, clock: ManualClock) -> None:
    _setup(sim, writer, clock, n=1)
    reply = _get(sim, "web", "tailLines=ten")
    assert (reply.status, reply.json["message"]) == (400, 'strconv.ParseInt: parsing "ten": invalid syntax')


def test_several_containers_need_a_name(sim: SimServer, writer: NodeLogWriter, clock: ManualClock) -> None:
    pod, _ = _setup(sim, writer, clock, name="duo", containers=("a", "b"), n=2)
    reply = _get(sim, "duo")
    assert (reply.status, reply.json["message"]) == (
        400, "a container name must be specified for pod duo, choose one of: [a b]")
    seqs = _message_lines(writer, pod, "b", 1, clock)
    assert _get(sim, "duo", "container=b").raw.splitlines()[-1].endswith(seqs[0])
    bad = _get(sim, "duo", "container=zz")
    assert (bad.status, bad.json["message"]) == (400, "container zz is not valid for pod duo")


def test_previous_reads_the_last_instance_or_says_there_is_none(sim: SimServer, writer: NodeLogWriter,
                                                                clock: ManualClock) -> None:
    pod, first = _setup(sim, writer, clock, n=2)
    reply = _get(sim, "web", "previous=true")
    assert (reply.status, reply.json["message"]) == (400, 'previous terminated container "app" in pod "web" not found')
    sim.cluster.patch("pods", "default", "web", {"status": {"containerStatuses": [_status("app", 1, True)]}})
    writer.sync_pods()
    second = _message_lines(writer, pod, "app", 1, clock)
    assert [x.rsplit(b" ", 1)[1] for x in _get(sim, "web", "previous=true").raw.splitlines()] == first
    assert [x.rsplit(b" ", 1)[1] for x in _get(sim, "web").raw.splitlines()] == second


def test_waiting_container_says_why(sim: SimServer, writer: NodeLogWriter) -> None:
    _pod(sim, "pending", waiting="ContainerCreating")
    reply = _get(sim, "pending")
    assert (reply.status, reply.json["message"]) == (
        400, 'container "app" in pod "pending" is waiting to start: ContainerCreating')


def test_follow_streams_new_lines_and_ends_when_the_container_stops(sim: SimServer, writer: NodeLogWriter,
                                                                    clock: ManualClock) -> None:
    pod, seqs = _setup(sim, writer, clock, n=1)
    reader = WatchReader(sim, LOG.format("web") + "?follow=true")
    assert reader.status == 200
    first = reader.next_line()
    assert first is not None and first.rstrip(b"\n").endswith(seqs[0])
    later = _message_lines(writer, pod, "app", 2, clock)
    got = [reader.next_line(), reader.next_line()]
    assert [g.rstrip(b"\n").rsplit(b" ", 1)[1] for g in got if g] == later
    writer.rotate(pod["metadata"]["uid"], "app")
    after_rotation = _message_lines(writer, pod, "app", 1, clock)
    line = reader.next_line()
    assert line is not None and line.rstrip(b"\n").endswith(after_rotation[0])
    writer.pod_deleted(pod["metadata"]["uid"])
    assert reader.next_line() is None  # the stream ended cleanly
    reader.close()


def test_unscheduled_pod_has_an_empty_log(sim: SimServer) -> None:
    sim.cluster.create("pods", {"metadata": {"name": "nowhere"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
    reply = _get(sim, "nowhere")
    assert (reply.status, reply.raw) == (200, b"")


def test_python_client_reads_the_log(sim: SimServer, writer: NodeLogWriter, clock: ManualClock,
                                     tmp_path: Path) -> None:
    _, seqs = _setup(sim, writer, clock, n=3)
    api = client.CoreV1Api(config.new_client_from_config(str(sim.write_kubeconfig(tmp_path / "kc"))))
    text = api.read_namespaced_pod_log("web", "default", tail_lines=2)
    assert [x.rsplit(" ", 1)[1].encode() for x in text.splitlines()] == seqs[-2:]
    _pod(sim, "duo2", containers=("a", "b"))
    with pytest.raises(ApiException) as err:
        api.read_namespaced_pod_log("duo2", "default")
    assert err.value.status == 400 and "choose one of: [a b]" in str(err.value.body)


@pytest.mark.kubectl
@pytest.mark.skipif(KUBECTL is None, reason="kubectl binary not installed")
class TestKubectl:
    def _run(self, sim: SimServer, tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(home),
               "KUBECONFIG": str(sim.write_kubeconfig(tmp_path / "kubeconfig"))}
        return subprocess.run([KUBECTL, f"--cache-dir={home / 'cache'}", *args], env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def test_logs_tail_since_container_previous(self, sim: SimServer, writer: NodeLogWriter, clock: ManualClock,
                                                tmp_path: Path) -> None:
        pod, seqs = _setup(sim, writer, clock, name="duo", containers=("a", "b"), n=3, restarts=1)
        done = self._run(sim, tmp_path, "logs", "duo", "-c", "a", "--tail", "2")
        assert done.returncode == 0, done.stderr
        assert [x.rsplit(" ", 1)[1].encode() for x in done.stdout.splitlines()] == seqs[-2:]
        since = self._run(sim, tmp_path, "logs", "duo", "-c", "a", "--since", "15s").stdout
        assert [x.rsplit(" ", 1)[1].encode() for x in since.splitlines()] == seqs[-2:]
        prev = self._run(sim, tmp_path, "logs", "duo", "-c", "b", "--previous")
        assert prev.returncode == 0 and prev.stdout == ""  # the previous instance wrote nothing
        _pod(sim, "fresh")
        fail = self._run(sim, tmp_path, "logs", "fresh", "--previous")
        assert fail.returncode != 0
        assert 'previous terminated container "app" in pod "fresh" not found' in fail.stderr
        assert pod["metadata"]["name"] == "duo"

    def test_logs_follow_streams_until_the_container_stops(self, sim: SimServer, writer: NodeLogWriter,
                                                           clock: ManualClock, tmp_path: Path) -> None:
        pod, seqs = _setup(sim, writer, clock, n=1)
        stopper = threading.Timer(2.0, lambda: writer.pod_deleted(pod["metadata"]["uid"]))
        stopper.start()
        try:
            done = self._run(sim, tmp_path, "logs", "-f", "web", timeout=30)
        finally:
            stopper.cancel()
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0].endswith(seqs[0].decode())


def test_static_pod_logs_live_under_the_static_uid(sim: SimServer, writer: NodeLogWriter, clock: ManualClock) -> None:
    node_uid = sim.cluster.create("nodes", {"metadata": {"name": NODE}})["metadata"]["uid"]
    static = static_manifest({"metadata": {"name": "etcd", "namespace": "default"},
                              "spec": {"containers": [{"name": "etcd", "image": "etcd:3.5"}]},
                              "status": {"phase": "Running", "containerStatuses": [_status("etcd", 0, False)]}},
                             NODE, "2026-12-03T07:00:00Z")
    mirror = sim.cluster.create("pods", mirror_of(static, node_uid))
    writer.sync_pods()
    static_uid = static["metadata"]["uid"]
    assert writer.pod_dir("default", "etcd-node-a", static_uid).is_dir()
    assert not writer.pod_dir("default", "etcd-node-a", mirror["metadata"]["uid"]).exists()
    seq = writer.write_line(static_uid, "etcd", "plain", "stdout")[0].seq
    assert _get(sim, "etcd-node-a").raw.rstrip(b"\n").endswith(b"seq=%d" % seq)
