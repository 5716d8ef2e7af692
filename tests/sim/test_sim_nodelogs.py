"""The node log writer: kubelet/containerd file layout, CRI and Docker json-file framing, kubelet
rotation, copytruncate, removal after deletion, and a ledger that lists every line once."""

from __future__ import annotations

import gzip
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubestream.sim.config import SimConfig
from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter, extract_seqs
from kubestream.sim.storage.cluster import SimCluster
from kubestream.sim.workload.generator import Workload
from kubestream.sim.workload.scenario import WorkloadConfig

NODE = "node-a"
CRI_LINE = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z) (stdout|stderr) ([PF]) (.*)", re.S)
ROTATED = re.compile(r"0\.log\.\d{8}-\d{6}(\.gz)?")

Key = tuple[str, str, str, int]


class ManualClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cluster() -> Iterator[SimCluster]:
    c = SimCluster(SimConfig(pod_grace_s=0.0))
    yield c
    c.close()


def _running_pod(cluster: SimCluster, name: str, node: str = NODE, containers: tuple[str, ...] = ("app",),
                 restarts: int = 0, cid: str = "") -> dict[str, Any]:
    statuses = [{"name": c, "restartCount": restarts, "ready": True, "image": "nginx:1.27", "imageID": "",
                 "containerID": f"containerd://{cid or (c + name).encode().hex().ljust(64, '0')[:64]}",
                 "state": {"running": {"startedAt": "2026-11-21T05:00:00Z"}}} for c in containers]
    return cluster.create("pods", {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": c, "image": "nginx:1.27"} for c in containers]},
        "status": {"phase": "Running", "containerStatuses": statuses}})


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _read(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _messages_cri(data: bytes) -> list[tuple[str, bytes, int]]:
    """(stream, message, physical lines) after merging P parts, checking every line's framing."""
    out: list[tuple[str, bytes, int]] = []
    partial: dict[bytes, list[bytes]] = {}
    assert data.endswith(b"\n") or not data
    for raw in data.split(b"\n")[:-1]:
        m = CRI_LINE.fullmatch(raw)
        assert m, raw[:120]
        parts = partial.setdefault(m[2], [])
        parts.append(m[4])
        if m[3] == b"F":
            out.append((m[2].decode(), b"".join(parts), len(parts)))
            partial[m[2]] = []
    assert not any(partial.values()), "a P line without its F"
    return out


def _messages_docker(data: bytes) -> list[tuple[str, bytes, int]]:
    out: list[tuple[str, bytes, int]] = []
    partial: dict[str, list[str]] = {}
    for raw in data.split(b"\n")[:-1]:
        entry = orjson.loads(raw)
        assert set(entry) == {"log", "stream", "time"}
        parts = partial.setdefault(entry["stream"], [])
        parts.append(entry["log"])
        if entry["log"].endswith("\n"):
            out.append((entry["stream"], "".join(parts)[:-1].encode(), len(parts)))
            partial[entry["stream"]] = []
    return out


def _archive(root: Path, fmt: str = "cri") -> list[tuple[Key, bytes, int]]:
    """Everything on disk as (ledger key, message, physical lines): what a perfect reader gets."""
    found = []
    for path in _files(root):
        uid = path.parent.parent.name.rsplit("_", 1)[1]
        container = path.parent.name
        parse = _messages_cri if fmt == "cri" else _messages_docker
        for stream, message, parts in parse(_read(path)):
            seqs = extract_seqs(message)
            assert len(seqs) == 1, message[:200]
            found.append(((uid, container, stream, seqs[0]), message, parts))
    return found


def _writer(tmp_path: Path, cluster: SimCluster | None, clock: Any = time.time, **kw: Any) -> NodeLogWriter:
    config = NodeLogConfig(root=tmp_path / "pods", containers_dir=tmp_path / "containers", node=NODE, seed=1, **kw)
    return NodeLogWriter(config, cluster=cluster, clock=clock)


def test_cri_files_partial_lines_and_a_complete_ledger(tmp_path: Path, cluster: SimCluster) -> None:
    a = _running_pod(cluster, "web-1", containers=("app", "sidecar"))
    _running_pod(cluster, "api-1")
    _running_pod(cluster, "elsewhere", node="node-b")
    cluster.create("pods", {"metadata": {"name": "pending", "namespace": "default"},
                            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "x"}]}})
    writer = _writer(tmp_path, cluster)
    writer.sync_pods()
    assert len(writer.containers()) == 3  # pending and other-node pods are not written
    writer.write_burst(300)
    writer.write_burst(2, kinds=["long"])
    writer.write_burst(5, kinds=["invalid_utf8", "stack", "json"])
    writer.stop()

    pod_dir = tmp_path / "pods" / f"default_web-1_{a['metadata']['uid']}"
    assert (pod_dir / "app" / "0.log").is_file() and (pod_dir / "sidecar" / "0.log").is_file()
    found = _archive(tmp_path / "pods")
    keys = [k for k, _, _ in found]
    assert len(keys) == len(set(keys)) == len(writer.ledger) >= 307
    assert set(keys) == writer.ledger.keys()
    by_key = {line.key: line for line in writer.ledger.lines()}
    longs = [(m, parts) for k, m, parts in found if by_key[k].kind == "long"]
    assert len(longs) >= 2 and all(len(m) >= 1024 * 1024 and parts >= 64 for m, parts in longs)
    invalid = [m for k, m, _ in found if by_key[k].kind == "invalid_utf8"]
    assert invalid and all(_not_utf8(m) for m in invalid)
    assert all(extract_seqs(m.decode("utf-8", "replace")) for m in invalid)
    assert any(by_key[k].kind == "stack" and by_key[k].stream == "stderr" for k in keys)
    assert all(by_key[k].size == len(m) for k, m, _ in found)
    # Every physical line fits containerd's 16 KiB limit.
    for path in _files(tmp_path / "pods"):
        assert max(len(line) for line in path.read_bytes().split(b"\n")) < 16 * 1024 + 64


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_docker_json_file_splits_at_16_kib(tmp_path: Path, cluster: SimCluster) -> None:
    _running_pod(cluster, "web-1")
    writer = _writer(tmp_path, cluster, format="docker")
    writer.sync_pods()
    writer.write_burst(50)
    writer.write_burst(1, kinds=["long"])
    writer.write_burst(3, kinds=["invalid_utf8"])
    writer.stop()
    data = b"".join(_read(p) for p in _files(tmp_path / "pods"))
    entries = [orjson.loads(raw) for raw in data.split(b"\n")[:-1]]
    partial = [e for e in entries if not e["log"].endswith("\n")]
    assert len(partial) >= 64 and all(len(e["log"].encode()) == 16 * 1024 for e in partial)
    assert b"\\u003c" in data and b"\\u0026" in data  # Docker's HTML-safe escaping of < and &
    assert "\ufffd" in data.decode()  # invalid UTF-8 became U+FFFD
    found = _archive(tmp_path / "pods", "docker")
    assert {k for k, _, _ in found} == writer.ledger.keys() and len(found) == len(writer.ledger)


def test_symlinks_and_restarts(tmp_path: Path, cluster: SimCluster) -> None:
    pod = _running_pod(cluster, "web-1", cid="a" * 64)
    uid = pod["metadata"]["uid"]
    writer = _writer(tmp_path, cluster)
    writer.sync_pods()
    link = tmp_path / "containers" / f"web-1_default_app-{'a' * 64}.log"
    assert link.is_symlink() and link.resolve() == (tmp_path / "pods" / f"default_web-1_{uid}" / "app" / "0.log")
    writer.write_burst(5)
    for restart, cid in ((1, "b" * 64), (2, "c" * 64)):
        cluster.patch("pods", "default", "web-1", {"status": {"containerStatuses": [{
            "name": "app", "restartCount": restart, "containerID": f"containerd://{cid}", "image": "nginx:1.27",
            "imageID": "", "ready": True}]}})
        writer.sync_pods()
        writer.write_burst(5)
    app_dir = tmp_path / "pods" / f"default_web-1_{uid}" / "app"
    # kubelet keeps the previous instance's log, not older ones.
    assert sorted(p.name for p in app_dir.iterdir()) == ["1.log", "2.log"]
    links = sorted(p.name for p in (tmp_path / "containers").iterdir())
    assert links == [f"web-1_default_app-{'b' * 64}.log", f"web-1_default_app-{'c' * 64}.log"]
    assert writer.symlink(uid, "app").resolve() == app_dir / "2.log"
    writer.stop()


def test_rotation_renames_gzips_and_keeps_max_files(tmp_path: Path, cluster: SimCluster) -> None:
    clock = ManualClock()
    _running_pod(cluster, "web-1")
    writer = _writer(tmp_path, cluster, clock=clock, rotate_bytes=8 * 1024, max_files=3,
                     kind_weights={"plain": 1.0})
    writer.sync_pods()
    ((_, _, live),) = writer.containers()
    seen_rotated: set[str] = set()
    for _ in range(40):
        writer.write_burst(10)
        clock.now += 1
        seen_rotated |= {p.name for p in live.parent.iterdir() if p.name != "0.log"}
    names = sorted(p.name for p in live.parent.iterdir())
    assert "0.log" in names and len(names) <= 3
    rotated = [n for n in names if n != "0.log"]
    assert all(ROTATED.fullmatch(n) for n in rotated)
    # The newest rotated file stays plain (a reader may still be on it); older ones are gzipped.
    assert not rotated[-1].endswith(".gz") and all(n.endswith(".gz") for n in rotated[:-1])
    assert len(seen_rotated) > 5  # many rotations happened, the oldest files were deleted
    found = _archive(tmp_path / "pods")
    keys = [k for k, _, _ in found]
    assert len(keys) == len(set(keys)) and set(keys) < writer.ledger.keys()
    # What is still on disk is the newest part of the ledger, without gaps.
    seqs = sorted(k[3] for k in keys)
    assert seqs == list(range(seqs[0], max(writer.ledger.seqs()) + 1))
    writer.stop()


def test_rotation_loses_nothing_while_files_are_kept(tmp_path: Path, cluster: SimCluster) -> None:
    clock = ManualClock()
    _running_pod(cluster, "web-1")
    writer = _writer(tmp_path, cluster, clock=clock, rotate_bytes=16 * 1024, max_files=100)
    writer.sync_pods()
    for _ in range(30):
        writer.write_burst(20)
    rotated = [p for p in _files(tmp_path / "pods") if p.name != "0.log"]
    assert len(rotated) >= 3 and any(p.suffix == ".gz" for p in rotated)
    found = _archive(tmp_path / "pods")
    assert sorted(k for k, _, _ in found) == sorted(writer.ledger.keys())
    writer.stop()


def test_copytruncate_keeps_the_inode(tmp_path: Path, cluster: SimCluster) -> None:
    pod = _running_pod(cluster, "web-1")
    writer = _writer(tmp_path, cluster, rotation="copytruncate", compress=False)
    writer.sync_pods()
    writer.write_burst(20)
    ((uid, name, live),) = writer.containers()
    inode, before = live.stat().st_ino, live.read_bytes()
    copy = writer.rotate(uid, name)
    assert copy.read_bytes() == before and live.stat().st_size == 0 and live.stat().st_ino == inode
    writer.write_burst(5)
    assert live.stat().st_ino == inode and 0 < live.stat().st_size < len(before)
    assert live.read_bytes().startswith(b"20")  # writing restarted at offset 0 (O_APPEND)
    found = _archive(tmp_path / "pods")
    assert sorted(k for k, _, _ in found) == sorted(writer.ledger.keys())
    assert pod["metadata"]["uid"] == uid
    writer.stop()


def test_a_deleted_pods_logs_go_after_the_delay(tmp_path: Path, cluster: SimCluster) -> None:
    clock = ManualClock()
    pod = _running_pod(cluster, "web-1")
    _running_pod(cluster, "api-1")
    writer = _writer(tmp_path, cluster, clock=clock, remove_after_s=30)
    writer.sync_pods()
    writer.write_burst(20)
    pod_dir = tmp_path / "pods" / f"default_web-1_{pod['metadata']['uid']}"
    written = len(writer.ledger.seqs(pod["metadata"]["uid"]))
    cluster.delete("pods", "default", "web-1", grace_period_s=0)
    writer.sync_pods()
    writer.write_burst(20)  # only api-1 is written now
    assert len(writer.ledger.seqs(pod["metadata"]["uid"])) == written
    clock.now += 29
    assert writer.collect_garbage() == [] and pod_dir.is_dir()
    clock.now += 2
    assert writer.collect_garbage() == [pod_dir]
    assert not pod_dir.exists()
    links = list((tmp_path / "containers").iterdir())
    assert len(links) == 1 and links[0].name.startswith("api-1_default_app-")
    writer.stop()


def test_a_terminating_pod_stops_writing(tmp_path: Path) -> None:
    c = SimCluster(SimConfig(pod_grace_s=5.0))
    try:
        _running_pod(c, "web-1")
        writer = _writer(tmp_path, c)
        writer.sync_pods()
        writer.write_burst(3)
        c.delete("pods", "default", "web-1")  # graceful: deletionTimestamp set, pod still listed
        writer.sync_pods()
        assert writer.containers() == [] and writer.write_burst(3) == []
        writer.stop()
    finally:
        c.close()


def test_same_seed_same_lines(tmp_path: Path) -> None:
    digests = []
    for run in ("a", "b"):
        c = SimCluster(SimConfig())
        try:
            _running_pod(c, "web-1", containers=("app", "sidecar"))
            _running_pod(c, "api-1")
            writer = _writer(tmp_path / run, c)
            writer.sync_pods()
            writer.write_burst(200)
            writer.stop()
            digests.append(writer.ledger.digest())
        finally:
            c.close()
    assert digests[0] == digests[1]


def test_background_mode_follows_the_workload(tmp_path: Path, cluster: SimCluster) -> None:
    workload = Workload(cluster, WorkloadConfig(seed=4, nodes=2, events_per_s=20.0, delete_grace_s=0.0))
    for _ in range(5):
        workload.step()
    config = NodeLogConfig(root=tmp_path / "pods", containers_dir=tmp_path / "containers", node="sim-worker-0",
                           lines_per_s=2000, sync_every_s=0.1)
    writer = NodeLogWriter(config, cluster=cluster)
    writer.start()
    try:
        deadline = time.monotonic() + 5
        while len(writer.ledger) < 300 and time.monotonic() < deadline:
            workload.step()
            time.sleep(0.05)
    finally:
        writer.stop()
    assert len(writer.ledger) >= 300
    changes, _ = cluster.store.changes_since("pods", 0)
    ever_on_node = {c.obj["metadata"]["uid"] for c in changes if c.obj["spec"].get("nodeName") == "sim-worker-0"}
    written_uids = {line.pod_uid for line in writer.ledger.lines()}
    assert len(written_uids) >= 2 and written_uids <= ever_on_node
    assert {d.name.rsplit("_", 1)[1] for d in (tmp_path / "pods").iterdir()} <= ever_on_node
    assert {k for k, _, _ in _archive(tmp_path / "pods")} == writer.ledger.keys()
    assert os.listdir(tmp_path / "containers")
