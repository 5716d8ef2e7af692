"""Two events collectors, one Lease: the standby takes over from where the leader stopped —
0 lost, 0 duplicated — within the lease duration (+2 s) after a kill -9, within 2 s after a
SIGTERM (voluntary release); a restarted ex-leader never delivers its stale spool."""

from __future__ import annotations

import time
from pathlib import Path

from tests.agent.harness import AgentProcess, assert_exactly_once, make_workload, wait_caught_up, write_config

from kubestream.sim.server import SimServer

LEASE_S = 3.0


def _replica(tmp_path: Path, sim: SimServer, name: str) -> AgentProcess:
    workdir = tmp_path / name
    workdir.mkdir()
    config = write_config(
        workdir, sim,
        sink={"file": {"dir": str(tmp_path / "archive")}},  # the shared archive
        leader_election={"enabled": True, "identity": name, "lease_duration_s": LEASE_S,
                         "renew_deadline_s": 2.0, "retry_period_s": 0.5},
        batch={"max_records": 200, "max_age_s": 0.5},
    )
    return AgentProcess(config, workdir)


def _wait_ready_since(agent: AgentProcess, since: float, timeout: float) -> float:
    agent.wait_ready(timeout=timeout)
    return agent.ready_file.stat().st_mtime - since


def test_kill_9_of_the_leader(sim: SimServer, tmp_path: Path) -> None:
    workload = make_workload(sim, seed=31, rate=300)
    leader = _replica(tmp_path, sim, "a").start()
    leader.wait_ready()
    standby = _replica(tmp_path, sim, "b").start()
    workload.start()
    try:
        time.sleep(2.0)
        assert not standby.ready_file.exists(), "the standby must not export while the leader holds the lease"
        killed_at = time.time()
        leader.kill()
        takeover = _wait_ready_since(standby, killed_at, timeout=LEASE_S + 15)
        print(f"takeover after kill -9: {takeover:.2f} s")
        assert takeover <= LEASE_S + 2.0, f"takeover took {takeover:.2f} s"
        # The ex-leader comes back as a standby: its undelivered spool must never be delivered.
        restarted = _replica(tmp_path, sim, "a2")
        restarted.config = leader.config
        restarted.workdir = leader.workdir
        restarted.start()
        time.sleep(2.0)
    finally:
        workload.stop()
    records = wait_caught_up(tmp_path / "archive", workload.ledger)
    assert standby.terminate() == 0, standby.log()
    assert restarted.terminate() == 0, restarted.log()
    assert_exactly_once(records, workload.ledger)


def test_sigterm_of_the_leader_hands_over_within_2_s(sim: SimServer, tmp_path: Path) -> None:
    workload = make_workload(sim, seed=32, rate=300)
    leader = _replica(tmp_path, sim, "a").start()
    leader.wait_ready()
    standby = _replica(tmp_path, sim, "b").start()
    workload.start()
    try:
        time.sleep(2.0)
        assert leader.proc is not None
        signalled_at = time.time()
        leader.proc.terminate()  # SIGTERM: flush, drain, release the lease, exit
        takeover = _wait_ready_since(standby, signalled_at, timeout=15)
        assert leader.proc.wait(timeout=20) == 0, leader.log()
        print(f"takeover after SIGTERM: {takeover:.2f} s")
        assert takeover <= 2.0, f"takeover took {takeover:.2f} s after the SIGTERM"
        time.sleep(1.0)
    finally:
        workload.stop()
    records = wait_caught_up(tmp_path / "archive", workload.ledger)
    assert standby.terminate() == 0, standby.log()
    assert_exactly_once(records, workload.ledger)
    leases = sim.cluster.list("leases", "default", group="coordination.k8s.io")
    assert [lease["spec"]["leaseTransitions"] for lease in leases] == [1]
