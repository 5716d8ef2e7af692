"""The real agent process with a batch the sink refuses in its spool (no crash loop after a
kill -9), and SIGTERM while the spool disk is full (the shutdown bound holds, nothing is
committed that was not written, and the next start archives every event exactly once)."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.agent.harness import (
    AgentProcess,
    finish_and_assert_exactly_once,
    make_workload,
    read_archive,
    write_config,
)

from kubestream.pipeline.spool import Spool
from kubestream.sim.server import SimServer
from kubestream.state.store import StateStore

SHUTDOWN_BOUND_S = 2.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs; skipped, saying so, where mounting is refused (needs root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; the file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def spool_keys(state_db: Path) -> list[str]:
    with sqlite3.connect(state_db) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM spool_entries ORDER BY seq")]


def wait_for_log(agent: AgentProcess, text: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while text not in agent.log():
        assert agent.proc is not None and agent.proc.poll() is None, agent.log()
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{agent.log()}"
        time.sleep(0.1)


def test_sigterm_while_the_spool_disk_is_full_exits_within_the_bound(
    sim: SimServer, tmp_path: Path, small_disk: Path
) -> None:
    workload = make_workload(sim, seed=5, rate=200)
    spool_dir = small_disk / "spool"
    spool_dir.mkdir()
    config = write_config(tmp_path, sim, spool={"dir": str(spool_dir)}, batch={"max_age_s": 0.3},
                          shutdown={"timeout_s": SHUTDOWN_BOUND_S})
    filler = fill(small_disk)
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    workload.run_for(1.0)
    wait_for_log(agent, "spool disk full")
    started = time.monotonic()
    code = agent.terminate(timeout=60)
    took = time.monotonic() - started
    # Liveness, not a benchmark: without the bound the agent never exits on its own.
    assert took < SHUTDOWN_BOUND_S + 10, f"exit took {took:.1f}s:\n{agent.log()}"
    assert code == 1, agent.log()  # the open batch could not be written: said, not hidden
    assert "could not flush the open events batch" in agent.log()
    assert "Traceback" not in agent.log()
    # Nothing registered, nothing archived: no position moved past what was never written.
    assert spool_keys(tmp_path / "state" / "state.db") == []
    assert read_archive(tmp_path / "archive") == []
    filler.unlink()
    workload.stop()
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    finish_and_assert_exactly_once(agent, workload, tmp_path / "archive")


def test_a_refused_batch_in_the_spool_survives_kill_9_without_a_crash_loop(
    sim: SimServer, tmp_path: Path
) -> None:
    """A registered batch whose key the file sink cannot store (a name over NAME_MAX): before,
    it was retried forever and held every batch behind it; now it is set aside."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state = StateStore(state_dir / "state.db")
    poison_key = f"events/dt=2024-05-01/hour=10/{'p' * 300}-1-1.ndjson.gz"
    try:
        asyncio.run(Spool(state_dir / "spool", state, max_bytes=1 << 20).commit(
            poison_key, b"refused batch", [], stream="events", records=1))
    finally:
        state.close()
    workload = make_workload(sim, seed=9, rate=200)
    config = write_config(tmp_path, sim, batch={"max_age_s": 0.3})
    agent = AgentProcess(config, tmp_path).start()
    time.sleep(0.3)
    agent.kill()  # long before the delivery worker runs: the refused batch is still in the spool
    assert spool_keys(state_dir / "state.db") == [poison_key]
    for _ in range(2):
        agent.start()
        agent.wait_ready()
        workload.run_for(1.0)
        agent.kill()
    workload.stop()
    agent.start()
    agent.wait_ready()
    finish_and_assert_exactly_once(agent, workload, tmp_path / "archive")
    kept = list((state_dir / "spool" / "dead-letter").iterdir())
    assert [p.read_bytes() for p in kept] == [b"refused batch"]
    assert "refused the dead letter" in agent.log()
