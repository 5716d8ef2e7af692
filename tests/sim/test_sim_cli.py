"""``python -m kubestream.sim``: starts, writes a usable kubeconfig, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

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
