"""The node agent as a real process with a pod whose multi-line start pattern annotation is
catastrophic for a backtracking engine (``(a+)+$`` against 34 ``a`` and a ``!``): its lines are
archived unjoined, another pod's lines keep flowing, and SIGTERM is honoured (issue 9 item 3)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.agent.harness import AgentProcess, write_config
from tests.logs.logs_source_support import NODE, pod, read_archive

from kubestream.sim.server import SimServer

GREEDY = "a" * 34 + "!"


def write_log(root: Path, created: dict[str, object], lines: list[str]) -> None:
    meta = created["metadata"]
    assert isinstance(meta, dict)
    path = root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / "app" / "0.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        for line in lines:
            f.write(b"2026-01-01T00:00:00.5Z stdout F " + line.encode() + b"\n")


def test_a_catastrophic_annotation_pattern_stalls_nothing_and_sigterm_is_honoured(
        sim: SimServer, tmp_path: Path) -> None:
    bodies = [pod("greedy-0", annotations={"kubestream.io/multiline-start": "(a+)+$"}), pod("plain-0")]
    created = []
    for body in bodies:
        body["metadata"].pop("uid")
        created.append(sim.cluster.create("pods", body))
    pods_dir = tmp_path / "pods"
    write_log(pods_dir, created[0], [GREEDY] * 5)
    write_log(pods_dir, created[1], ["before"])
    config = write_config(
        tmp_path, sim,
        events={"enabled": False},
        logs={"enabled": True, "node_name": NODE, "pods_dir": str(pods_dir), "containers_dir": None,
              "sweep_interval_s": 0.5, "multiline_timeout_s": 0.3},
        batch={"max_records": 50, "max_age_s": 0.3},
    )
    agent = AgentProcess(config, tmp_path).start()
    try:
        agent.wait_ready()
        write_log(pods_dir, created[1], ["after"])  # written while the greedy pod's lines are parsed
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(read_archive(tmp_path / "archive")) < 7:
            time.sleep(0.2)
    finally:
        try:
            code = agent.terminate()
        except subprocess.TimeoutExpired:
            agent.kill()  # a stalled agent must not outlive the test
            code = None
    assert code == 0, f"SIGTERM not honoured (exit {code}):\n{agent.log()}"
    by_pod: dict[str, list[str]] = {}
    for r in read_archive(tmp_path / "archive"):
        by_pod.setdefault(r["kubernetes"]["pod_name"], []).append(r["message"])
        # The agent knew the pod (so its annotation was in force), not just the path.
        assert r["kubernetes"]["enrichment"] != "none" and r["kubernetes"]["pod_ip"] == "10.1.2.3", r
    assert by_pod == {"greedy-0": [GREEDY] * 5, "plain-0": ["before", "after"]}, agent.log()
