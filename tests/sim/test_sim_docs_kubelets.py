"""The shell commands of docs/simulator.md "Kubelets and pods/log" run as written (the port
becomes 0 so parallel runs cannot clash; paths are relative to a scratch directory)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"
KUBECTL = shutil.which("kubectl")
KUBESTREAM = shutil.which("kubestream") or str(Path(sys.executable).parent / "kubestream")


def _commands() -> list[str]:
    section = DOC.read_text().split("## Kubelets and pods/log", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the section has a sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.kubectl
@pytest.mark.skipif(KUBECTL is None, reason="kubectl binary not installed")
def test_kubelet_section_commands_run(tmp_path: Path) -> None:
    sim_line, kubectl_line = _commands()
    argv = shlex.split(sim_line.replace("--port 8001", "--port 0"))
    assert argv[:2] == ["kubestream", "sim"]
    proc = subprocess.Popen([KUBESTREAM, *argv[1:]], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = "".join(proc.stdout.readline() for _ in range(5))
        assert "kubelets: one HTTPS port per Node" in banner and "node logs of sim-worker-0" in banner
        env_part, _, command = kubectl_line.partition(" ")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
               env_part.split("=", 1)[0]: env_part.split("=", 1)[1]}
        deadline = time.monotonic() + 30
        port = ""
        while time.monotonic() < deadline and not port.isdigit():
            done = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=60, check=False)
            port = done.stdout.strip()
            if not port.isdigit() or port == "0":
                port = ""
                time.sleep(0.3)
        assert port.isdigit() and int(port) > 0, done.stderr
        assert (tmp_path / "sim-node0" / "pods").is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
