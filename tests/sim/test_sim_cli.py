"""``python -m kubestream.sim``: starts, writes a usable kubeconfig, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import urllib3
from kubernetes import client, config


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubestream.sim", "--port", "0", "--token", "cli-token", "--event-ttl", "60",
         "--kubeconfig-out", str(kubeconfig)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first
        assert "kubeconfig written" in proc.stdout.readline()
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
        assert "default" in [ns.metadata.name for ns in api.list_namespace().items]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_cli_serves_kubelets_and_node_logs(tmp_path: Path) -> None:
    kubeconfig, logs = tmp_path / "kc", tmp_path / "node0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubestream.sim", "--port", "0", "--token", "cli-token", "--kubeconfig-out",
         str(kubeconfig), "--workload", "--seed", "1", "--kubelets", "--node-logs", f"sim-worker-0={logs}"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(5)]
        ca = next(line for line in banner if line.startswith("kubelets:")).rsplit(" CA ", 1)[1].strip()
        assert f"node logs of sim-worker-0: {logs / 'pods'}" in "".join(banner)
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))

        def running_pod_with_log() -> tuple[str, str] | None:
            pods = api.list_pod_for_all_namespaces(field_selector="spec.nodeName=sim-worker-0").items
            for pod in pods:
                if pod.status.phase == "Running" and len(pod.spec.containers) == 1:
                    text = api.read_namespaced_pod_log(pod.metadata.name, pod.metadata.namespace)
                    if "seq=" in text:
                        return pod.metadata.namespace, pod.metadata.name
            return None

        _wait_for(running_pod_with_log, "a running pod on sim-worker-0 with log lines")
        node = api.read_node("sim-worker-0")
        port = node.status.daemon_endpoints.kubelet_endpoint.port
        address = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        reply = urllib3.PoolManager(ca_certs=ca).request(
            "GET", f"https://{address}:{port}/pods", headers={"Authorization": "Bearer cli-token"}, timeout=10)
        assert reply.status == 200 and orjson.loads(reply.data)["kind"] == "PodList"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
