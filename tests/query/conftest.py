"""Archives for the query tests, made by the real agent (or the demo) against the simulator.

``agent_archive``: one agent process with events AND logs on, one simulated node (so every pod's
logs are written: StatefulSet pods re-created under the same name included), a few seconds of
workload. Made once per session: the tests only read it (a test that changes an archive copies it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.agent.harness import AgentProcess, make_workload, read_archive, write_config

from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter
from kubestream.sim.testing import running_sim

# tests/sinks/conftest.py imports its sibling helpers as top-level modules.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sinks"))
from tests.sinks.conftest import MotoServer, s3_tools_python


@dataclass
class AgentArchive:
    root: Path
    """The archive directory (``--archive``)."""
    config: Path
    """The agent's configuration (``--config``)."""
    records: list[dict[str, Any]]
    """Every record of the archive, read independently (tests.agent.harness.read_archive)."""

    @property
    def events(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "event"]

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "log"]


def _make_agent_archive(base: Path) -> AgentArchive:
    with running_sim() as sim:
        workload = make_workload(sim, seed=11, rate=120, nodes=1, statefulset_restarts_per_s=1.5,
                                 pod_churn_per_s=0.5, delete_grace_s=0.0)
        workload.step()
        node = workload.node_names[0]
        writer = NodeLogWriter(NodeLogConfig(root=base / "pods", containers_dir=base / "containers", node=node,
                                             seed=11, lines_per_s=300, remove_after_s=30.0, sync_every_s=0.2,
                                             kind_weights={"plain": 0.7, "json": 0.3}),
                               cluster=sim.cluster)
        config = write_config(
            base, sim,
            logs={"enabled": True, "node_name": node, "pods_dir": str(base / "pods"),
                  "containers_dir": str(base / "containers"), "sweep_interval_s": 0.5},
            batch={"max_records": 300, "max_age_s": 0.5},
        )
        agent = AgentProcess(config, base).start()
        agent.wait_ready()
        workload.start()
        writer.start()
        try:
            time.sleep(4.0)
        finally:
            workload.stop()
            writer.stop()
        expected_lines = len(writer.ledger.keys())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            records = read_archive(base / "archive")
            logs = sum(1 for r in records if r["kind"] == "log")
            events = sum(int(r["event"]["count_delta"]) for r in records if r["kind"] == "event")
            if logs >= expected_lines and events >= workload.ledger.total():
                break
            time.sleep(0.3)
        assert agent.terminate() == 0, agent.log()
    return AgentArchive(base / "archive", config, read_archive(base / "archive"))


@pytest.fixture(scope="session")
def agent_archive(tmp_path_factory: pytest.TempPathFactory) -> AgentArchive:
    return _make_agent_archive(tmp_path_factory.mktemp("agent"))


@pytest.fixture
def archive_copy(agent_archive: AgentArchive, tmp_path: Path) -> Path:
    """A private copy of the agent's archive, for tests that compact or damage it."""
    target = tmp_path / "archive"
    shutil.copytree(agent_archive.root, target)
    return target


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``kubestream demo`` run as tests/cli/test_cli_demo.py runs it; its output folder."""
    cwd = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "kubestream.cli.main", "demo", "--duration", "3", "--rate", "150"],
        capture_output=True, text=True, timeout=120, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (cwd / "demo-output.txt").write_text(proc.stdout)
    return cwd


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer(s3_tools_python())
    yield server
    server.stop()


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``kubestream ARGS`` as a real process."""
    return subprocess.run([sys.executable, "-m", "kubestream.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)
