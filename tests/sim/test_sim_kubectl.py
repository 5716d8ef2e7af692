"""The real kubectl (1.32, through the machine's version dispatcher) against the simulator.

Spec §9 items 30 (cold-cache discovery, aggregated and legacy), 31 (OpenAPI v3 and
``create -f`` with ``fieldValidation=Strict``), 32 (``/version`` makes the dispatcher run 1.32)
and 33 (Table output). Each test gets its own HOME and ``--cache-dir``, so discovery is cold.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kubestream.sim.apiserver.discovery_docs import served_group_versions
from kubestream.sim.config import DenyRule
from kubestream.sim.server import SimServer
from kubestream.sim.testing import running_sim

KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl binary not installed"),
]

POD_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: c
    image: nginx:1.27
"""
BAD_POD_YAML = POD_YAML.replace("spec:\n", "spec:\n  foo: bar\n")


@dataclass
class Kubectl:
    """Runs kubectl with an isolated HOME, kubeconfig and discovery cache."""

    server: SimServer
    home: Path
    kubeconfig: Path

    @property
    def cache_dir(self) -> Path:
        return self.home / "kube-cache"

    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                "KUBECONFIG": str(self.kubeconfig)}

    def argv(self, *args: str) -> list[str]:
        assert KUBECTL is not None
        return [KUBECTL, f"--cache-dir={self.cache_dir}", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout


def _kubectl(server: SimServer, tmp_path: Path) -> Kubectl:
    home = tmp_path / "home"
    home.mkdir()
    return Kubectl(server, home, server.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
def kubectl(sim_server: SimServer, tmp_path: Path) -> Kubectl:
    return _kubectl(sim_server, tmp_path)


def _pod(name: str, namespace: str = "default", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": status}


def _paths(server: SimServer, since: int = 0) -> list[str]:
    return [r.path for r in server.requests.records()[since:]]


def _query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


# --- §9.32 /version and the dispatcher ---------------------------------------------------

def test_dispatcher_asks_version_then_runs_kubectl_1_32(kubectl: Kubectl) -> None:
    kubectl.ok("get", "pods")
    records = kubectl.server.requests.records()
    assert urlsplit(records[0].path).path == "/version"
    assert _query(records[0].path).get("timeout") == ["5s"]
    api_agents = {r.user_agent for r in records[1:]}
    assert api_agents and all(ua.startswith("kubectl/v1.32.") for ua in api_agents), api_agents


# --- §9.33 Table output, §9.30 discovery -------------------------------------------------

def test_get_pods_all_namespaces_prints_the_server_table(kubectl: Kubectl) -> None:
    cluster = kubectl.server.cluster
    cluster.create("namespaces", {"metadata": {"name": "prod"}})
    cluster.create("pods", _pod("alpha"))
    cluster.create("pods", _pod("beta", "prod"))
    rows = _rows(kubectl.ok("get", "pods", "-A"))
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[:4] for r in rows[1:]] == [["default", "alpha", "0/1", "Pending"],
                                         ["prod", "beta", "0/1", "Pending"]]
    list_call = next(p for p in _paths(kubectl.server) if urlsplit(p).path == "/api/v1/pods")
    assert _query(list_call)["limit"] == ["500"]


def test_get_pods_wide_shows_priority_one_columns(kubectl: Kubectl) -> None:
    pod = _pod("alpha")
    pod["spec"]["nodeName"] = "node-1"
    kubectl.server.cluster.create("pods", pod)
    header, row = _rows(kubectl.ok("get", "pods", "-o", "wide"))
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED",
                      "NODE", "READINESS", "GATES"]
    assert row[0] == "alpha" and row[6] == "node-1"


def _discovery_calls(server: SimServer) -> list[str]:
    """Paths of /api, /apis, /api/<v> and /apis/<g>/<v> requests, in order."""
    out = []
    for path in (urlsplit(p).path for p in _paths(server)):
        parts = path.strip("/").split("/")
        if (parts[0] == "api" and len(parts) <= 2) or (parts[0] == "apis" and len(parts) in (1, 3)):
            out.append(path)
    return out


def test_cold_cache_with_aggregated_discovery_needs_no_per_group_requests(kubectl: Kubectl) -> None:
    assert kubectl.server.config.aggregated_discovery
    kubectl.ok("get", "pods", "-A")
    assert _discovery_calls(kubectl.server) == ["/api", "/apis"]
    kubectl.ok("get", "leases", "-A")  # a named-group kind resolves from the same documents
    # The second run found everything in the warm disk cache: no discovery at all.
    assert _discovery_calls(kubectl.server) == ["/api", "/apis"]


def test_cold_cache_with_legacy_discovery_walks_every_group(
        sim_factory: Callable[..., SimServer], tmp_path: Path) -> None:
    server = sim_factory(aggregated_discovery=False)
    kubectl = _kubectl(server, tmp_path)
    server.cluster.create("leases", {"metadata": {"name": "leader", "namespace": "default"},
                                     "spec": {"holderIdentity": "agent-1"}},
                          group="coordination.k8s.io")
    out = kubectl.ok("get", "leases")
    assert _rows(out) == [["NAME", "HOLDER", "AGE"], ["leader", "agent-1", _rows(out)[1][2]]]
    calls = _discovery_calls(server)
    assert calls[:2] == ["/api", "/apis"]
    # Every served group version, the registry's and the review groups'.
    expected = {f"/apis/{g}/{v}" if g else f"/api/{v}" for g, v in served_group_versions()}
    assert "/apis/coordination.k8s.io/v1" in expected
    assert set(calls[2:]) == expected


def test_get_events_all_namespaces(kubectl: Kubectl) -> None:
    kubectl.server.cluster.create("events", {
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Pulled", "message": "image pulled", "type": "Normal",
        "source": {"component": "kubelet"}, "count": 1,
        "firstTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "lastTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    lines = kubectl.ok("get", "events", "-A").strip().splitlines()
    assert lines[0].split() == ["NAMESPACE", "LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert lines[1].split()[0] == "default"
    assert lines[1].split()[2:] == ["Normal", "Pulled", "pod/web", "image", "pulled"]
    assert any(urlsplit(p).path == "/api/v1/events" for p in _paths(kubectl.server))


def test_chunked_listing_pages_through_continue_tokens(kubectl: Kubectl) -> None:
    for i in range(5):
        kubectl.server.cluster.create("pods", _pod(f"p{i}"))
    rows = _rows(kubectl.ok("get", "pods", "--chunk-size=2"))
    assert [r[0] for r in rows[1:]] == [f"p{i}" for i in range(5)]
    lists = [p for p in _paths(kubectl.server) if urlsplit(p).path == "/api/v1/namespaces/default/pods"]
    assert len(lists) == 3
    assert all(_query(p)["limit"] == ["2"] for p in lists)
    assert ["continue" in _query(p) for p in lists] == [False, True, True]


# --- §9.31 OpenAPI v3 and strict field validation ----------------------------------------

def test_create_from_file_uses_openapi_v3_and_strict_validation(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD_YAML)
    assert kubectl.ok("create", "-f", str(manifest)).strip() == "pod/web created"
    paths = _paths(kubectl.server)
    assert "/openapi/v3?timeout=32s" in paths
    assert any(p.startswith("/openapi/v3/api/v1?hash=") for p in paths)
    post = next(p for p in paths if urlsplit(p).path == "/api/v1/namespaces/default/pods")
    assert _query(post)["fieldValidation"] == ["Strict"]
    assert not any(p.startswith("/openapi/v2") for p in paths)
    created = kubectl.server.cluster.get("pods", "default", "web")
    assert created["metadata"]["labels"] == {"app": "web"}


def test_create_with_an_unknown_field_prints_the_strict_decoding_error(
        kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(BAD_POD_YAML)
    done = kubectl.run("create", "-f", str(manifest))
    assert done.returncode == 1
    assert "Error from server (BadRequest)" in done.stderr
    assert 'strict decoding error: unknown field "spec.foo"' in done.stderr
    assert kubectl.server.cluster.list("pods") == []


def test_create_with_validation_off_sends_ignore_and_succeeds(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(BAD_POD_YAML)
    assert kubectl.ok("create", "--validate=false", "-f", str(manifest)).strip() == "pod/web created"
    post = next(p for p in _paths(kubectl.server) if p.startswith("/api/v1/namespaces/default/pods?"))
    assert _query(post)["fieldValidation"] == ["Ignore"]


# --- delete and watch --------------------------------------------------------------------

def test_delete_pod_finishes(kubectl: Kubectl) -> None:
    kubectl.server.cluster.create("pods", _pod("doomed"))
    started = time.monotonic()
    assert kubectl.ok("delete", "pod", "doomed").strip() == 'pod "doomed" deleted'
    assert time.monotonic() - started < 30
    assert [p["metadata"]["name"] for p in kubectl.server.cluster.list("pods")] == []


def test_delete_scheduled_pod_waits_for_the_graceful_deletion(kubectl: Kubectl) -> None:
    pod = _pod("bound", phase="Running")
    pod["spec"]["nodeName"] = "node-1"
    pod["spec"]["terminationGracePeriodSeconds"] = 2  # kubectl waits out the pod's own grace period
    kubectl.server.cluster.create("pods", pod)
    assert kubectl.ok("delete", "pod", "bound").strip() == 'pod "bound" deleted'
    assert kubectl.server.cluster.list("pods") == []


class _LineReader:
    """Reads a child's stdout lines with a deadline (no thread, no blocking past the timeout)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._selector = selectors.DefaultSelector()
        self._selector.register(proc.stdout, selectors.EVENT_READ)
        self.text = ""

    def until(self, predicate: Callable[[str], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self.text):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                return predicate(self.text)
            chunk = os.read(self._stdout.fileno(), 65536)
            if not chunk:
                return predicate(self.text)
            self.text += chunk.decode(errors="replace")
        return True


@pytest.fixture
def spawn() -> Iterator[Callable[[list[str], dict[str, str]], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_get_pods_watch_sees_a_new_pod(kubectl: Kubectl, spawn: Any) -> None:
    kubectl.server.cluster.create("pods", _pod("first"))
    proc = spawn(kubectl.argv("get", "pods", "-w"), kubectl.env())
    out = _LineReader(proc)
    assert out.until(lambda text: "first" in text, timeout=30), out.text
    # Create only once the watch is open, so the pod can only arrive through it.
    deadline = time.monotonic() + 30
    while kubectl.server.requests.count(verb="watch", resource="pods") == 0:
        assert time.monotonic() < deadline, "kubectl never opened its watch"
        time.sleep(0.05)
    kubectl.server.cluster.create("pods", _pod("second"))
    # Wait for the whole row (kubectl may flush it in pieces), not just the name.
    complete_row = re.compile(r"^second\s+\S+\s+\S+.*\n", re.M)
    assert out.until(lambda text: complete_row.search(text) is not None, timeout=30), out.text
    second = next(line for line in out.text.splitlines() if line.startswith("second"))
    assert second.split()[1:3] == ["0/1", "Pending"]
    assert out.text.splitlines()[0].split()[:3] == ["NAME", "READY", "STATUS"]
    watch = next(p for p in _paths(kubectl.server) if _query(p).get("watch") == ["true"])
    assert "resourceVersion" in _query(watch)


def test_explain_reads_the_generated_schemas(kubectl: Kubectl) -> None:
    out = kubectl.ok("explain", "pod.spec.containers.ports")
    assert "KIND:       Pod" in out and "FIELD: ports <[]ContainerPort>" in out
    assert "containerPort\t<integer> -required-" in out


# --- spec §11 server-side apply ---------------------------------------------------------------

CM_YAML = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  a: "1"
"""


def test_apply_server_side_dry_run_conflicts_and_force(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(CM_YAML)
    assert kubectl.ok("apply", "--server-side", "--dry-run=server", "-f", str(manifest)).strip() == (
        "configmap/cfg serverside-applied (server dry run)")
    assert kubectl.run("get", "configmap", "cfg").returncode == 1  # nothing was stored
    assert kubectl.ok("apply", "--server-side", "-f", str(manifest)).strip() == "configmap/cfg serverside-applied"
    kubectl.ok("patch", "configmap", "cfg", "-p", '{"data":{"a":"2"}}')
    conflict = kubectl.run("apply", "--server-side", "-f", str(manifest))
    assert conflict.returncode == 1
    assert conflict.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .data.a\n')
    kubectl.ok("apply", "--server-side", "--force-conflicts", "-f", str(manifest))
    stored = kubectl.server.cluster.get("configmaps", "default", "cfg")
    assert stored["data"] == {"a": "1"}
    assert [(e["manager"], e["operation"]) for e in stored["metadata"]["managedFields"]] == [("kubectl", "Apply")]


# --- issue 13 item 10: auth whoami / can-i ---------------------------------------------------

def test_auth_whoami_and_can_i_answer_from_the_deny_rules(tmp_path: Path) -> None:
    with running_sim(deny=[DenyRule(verb="delete", resource="pods", namespace="default")]) as server:
        kubectl = _kubectl(server, tmp_path)
        # kubectl sends these reviews as protobuf; the simulator reads their attributes.
        assert _rows(kubectl.ok("auth", "whoami")) == [
            ["ATTRIBUTE", "VALUE"], ["Username", "system:anonymous"], ["Groups", "[system:unauthenticated]"]]
        assert kubectl.ok("auth", "can-i", "get", "pods").strip() == "yes"
        denied = kubectl.run("auth", "can-i", "delete", "pods")
        assert (denied.returncode, denied.stdout.strip()) == (1, "no")
        assert kubectl.ok("auth", "can-i", "delete", "pods", "-n", "kube-system").strip() == "yes"
