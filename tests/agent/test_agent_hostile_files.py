"""The node agent as a real process over a pods directory holding what a hostile pod can leave
there: a FIFO (present at start, and one renamed over a log file mid-run) never freezes it
(/healthz answers, other files are read, SIGTERM exits within the shutdown bound), and a file it
may not read is reported once and read as soon as it can be."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.agent.harness import AgentProcess, ModeBoundAgentProcess, free_port, healthz, scrape, write_config
from tests.logs.logs_source_support import archived_messages, container_log_path, write_cri

from kubestream.sim.server import SimServer

SHUTDOWN_S = 5.0
SKIPPED = "kubestream_files_skipped_total"


def node_agent_config(tmp_path: Path, sim: SimServer, port: int) -> Path:
    return write_config(
        tmp_path, sim,
        events={"enabled": False},
        logs={"enabled": True, "node_name": "node-a", "pods_dir": str(tmp_path / "pods"),
              "containers_dir": str(tmp_path / "containers"), "sweep_interval_s": 0.3},
        batch={"max_records": 100, "max_age_s": 0.2},
        server={"port": port},
        shutdown={"timeout_s": SHUTDOWN_S},
    )


def wait_archived(tmp_path: Path, expected: set[tuple[str, str]], agent: AgentProcess, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not expected <= set(archived_messages(tmp_path / "archive")):
        if time.monotonic() > deadline:
            missing = expected - set(archived_messages(tmp_path / "archive"))
            raise AssertionError(f"{len(missing)} lines not archived (e.g. {sorted(missing)[:3]}):\n{agent.log()}")
        time.sleep(0.1)


def stop(agent: AgentProcess) -> int:
    """SIGTERM; the exit code. The bound is the agent's shutdown timeout plus process start-up
    slack; an agent that does not exit within it is killed (no orphan) and the test fails."""
    try:
        return agent.terminate(timeout=SHUTDOWN_S + 5)
    except subprocess.TimeoutExpired:
        agent.kill()
        raise AssertionError(f"the agent did not exit within the shutdown bound:\n{agent.log()}") from None


def skipped(port: int, reason: str) -> float:
    return scrape(port).get((SKIPPED, (("reason", reason),)), 0.0)


def test_sigterm_exits_in_time_with_fifos_in_the_pods_dir(sim: SimServer, tmp_path: Path) -> None:
    good = container_log_path(tmp_path, "good")
    write_cri(good, *(f"good {i}" for i in range(10)))
    os.mkfifo(container_log_path(tmp_path, "fifo"))  # there before the agent starts
    swapped = container_log_path(tmp_path, "swapped")
    write_cri(swapped, *(f"swapped {i}" for i in range(5)))
    port = free_port()
    agent = AgentProcess(node_agent_config(tmp_path, sim, port), tmp_path).start()
    try:
        agent.wait_ready()
        wait_archived(tmp_path, {("good", f"good {i}") for i in range(10)}
                      | {("swapped", f"swapped {i}") for i in range(5)}, agent)
        fifo = swapped.with_name("0.log.tmp")
        os.mkfifo(fifo)
        os.rename(fifo, swapped)  # a FIFO replaces a log file mid-run
        write_cri(good, *(f"good {i}" for i in range(10, 20)))
        wait_archived(tmp_path, {("good", f"good {i}") for i in range(20)}, agent)
        assert healthz(port) == 200
        assert skipped(port, "not_regular") == 2
    finally:
        code = stop(agent)
    assert code == 0, agent.log()
    assert all(n == 1 for n in archived_messages(tmp_path / "archive").values())


def test_an_unreadable_file_is_reported_once_and_read_once_it_can_be(sim: SimServer, tmp_path: Path) -> None:
    good = container_log_path(tmp_path, "good")
    write_cri(good, *(f"good {i}" for i in range(5)))
    locked = container_log_path(tmp_path, "locked")
    write_cri(locked, *(f"locked {i}" for i in range(5)))
    locked.chmod(0)
    port = free_port()
    # Without the capabilities that let root ignore file modes: open() really answers EACCES.
    agent = ModeBoundAgentProcess(node_agent_config(tmp_path, sim, port), tmp_path).start()
    try:
        agent.wait_ready()
        wait_archived(tmp_path, {("good", f"good {i}") for i in range(5)}, agent)
        deadline = time.monotonic() + 10
        while skipped(port, "unreadable") < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # ~5 sweeps, each trying the file again
        assert skipped(port, "unreadable") == 1
        lines = [line for line in agent.log().splitlines() if str(locked) in line]
        assert len(lines) == 1 and "unreadable" in lines[0], lines
        assert not [m for _, m in archived_messages(tmp_path / "archive") if m.startswith("locked")]
        locked.chmod(0o644)
        wait_archived(tmp_path, {("locked", f"locked {i}") for i in range(5)}, agent)
        assert skipped(port, "unreadable") == 1
    finally:
        code = stop(agent)
    assert code == 0, agent.log()
    assert all(n == 1 for n in archived_messages(tmp_path / "archive").values())
