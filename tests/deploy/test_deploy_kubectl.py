"""`kubectl apply -f deploy/kubernetes/` against the simulator, as an operator would run it, then
every object read back through kubectl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.deploy.deploy_support import COMPAT, MAIN_MANIFEST_DOCS, MANIFESTS, load_docs, manifest_files

from kubestream.sim.server import SimServer

KUBECTL = shutil.which("kubectl")
pytestmark = [pytest.mark.kubectl, pytest.mark.skipif(KUBECTL is None, reason="kubectl binary not installed")]


class Kubectl:
    """kubectl with its own HOME, kubeconfig and a cold discovery cache."""

    def __init__(self, server: SimServer, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")

    def run(self, *args: str) -> str:
        assert KUBECTL is not None
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
               "KUBECONFIG": str(self.kubeconfig)}
        done = subprocess.run([KUBECTL, f"--cache-dir={self.home / 'cache'}", *args], env=env,
                              capture_output=True, text=True, timeout=90, check=False)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout


@pytest.fixture
def kubectl(tmp_path: Path) -> object:
    with SimServer() as server:
        yield Kubectl(server, tmp_path)


def _plural(kind: str) -> str:
    return {"PodDisruptionBudget": "poddisruptionbudgets", "ClusterRole": "clusterroles.rbac.authorization.k8s.io",
            "ClusterRoleBinding": "clusterrolebindings.rbac.authorization.k8s.io",
            "Role": "roles.rbac.authorization.k8s.io", "RoleBinding": "rolebindings.rbac.authorization.k8s.io",
            }.get(kind, kind.lower() + "s")


# kubectl's ~7 KB Deployment body (with its last-applied annotation) arrives in several TCP
# segments: this test caught the simulator reading only the first one.
def test_apply_manifests_then_read_every_object(kubectl: Kubectl) -> None:
    out = kubectl.run("apply", "-f", str(MANIFESTS), "--server-side=false")
    assert out.count("created") == len(MAIN_MANIFEST_DOCS)
    for doc in MAIN_MANIFEST_DOCS:
        meta = doc["metadata"]
        args = ["get", _plural(doc["kind"]), meta["name"], "-o", "json"]
        if "namespace" in meta:
            args += ["-n", meta["namespace"]]
        got = json.loads(kubectl.run(*args))
        assert got["kind"] == doc["kind"] and got["metadata"]["name"] == meta["name"]
        # The server may add labels (kubernetes.io/metadata.name on namespaces), never drop any.
        assert meta["labels"].items() <= got["metadata"]["labels"].items()
        if doc["kind"] in ("ClusterRole", "Role"):
            assert got["rules"] == doc["rules"]
    config = json.loads(kubectl.run("get", "configmap", "kubestream-events", "-n", "kubestream", "-o", "json"))
    assert "leader_election" in config["data"]["kubestream.yaml"]
    # A second apply is a no-op: the manifests are stable under kubectl's three-way merge.
    again = kubectl.run("apply", "-f", str(MANIFESTS), "--server-side=false")
    assert "configured" not in again and again.count("unchanged") == len(MAIN_MANIFEST_DOCS)


def test_apply_k8stream_compat_example(kubectl: Kubectl) -> None:
    docs = [d for f in manifest_files(COMPAT) for d in load_docs(f)]
    out = kubectl.run("apply", "-f", str(COMPAT), "--server-side=false")
    assert out.count("created") == len(docs)
    names = kubectl.run("get", "deployments,configmaps,serviceaccounts", "-n", "last9", "-o", "name").split()
    assert {"deployment.apps/k8stream", "configmap/k8stream-config", "serviceaccount/k8stream"} <= set(names)
