"""API faults while the agent runs: dropped watches, forced 410s, compaction, 5xx and 429 storms.
No loss, no duplicates, and the simulator's request log shows the agent backing off."""

from __future__ import annotations

import time
from pathlib import Path

from tests.agent.harness import AgentProcess, finish_and_assert_exactly_once, make_workload, write_config

from kubestream.sim.server import SimServer


def _requests_per_resource(server: SimServer, start: float, end: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in server.requests.records():
        if start <= r.time <= end:
            counts[r.resource] = counts.get(r.resource, 0) + 1
    return counts


def test_watch_faults_lose_and_duplicate_nothing(sim: SimServer, tmp_path: Path) -> None:
    workload = make_workload(sim, seed=21, rate=300)
    agent = AgentProcess(write_config(tmp_path, sim), tmp_path).start()
    agent.wait_ready()
    workload.start()
    try:
        time.sleep(0.7)
        sim.faults.drop_watches()
        time.sleep(0.7)
        sim.faults.expire_next_watches(3)
        sim.faults.drop_watches()
        time.sleep(0.7)
        sim.faults.compact()
        sim.faults.drop_watches()
        time.sleep(0.7)
        sim.faults.cut_next_watch_mid_object(2)
        sim.faults.drop_watches()
        time.sleep(1.0)
    finally:
        workload.stop()
    finish_and_assert_exactly_once(agent, workload, tmp_path / "archive")


def test_error_storms_back_off_and_recover(sim: SimServer, tmp_path: Path) -> None:
    workload = make_workload(sim, seed=22, rate=200)
    agent = AgentProcess(write_config(tmp_path, sim, kube={"backoff_initial_s": 0.2, "backoff_max_s": 2.0}),
                         tmp_path).start()
    agent.wait_ready()
    workload.start()
    try:
        for status, retry_after in ((503, None), (429, 1.0)):
            sim.faults.drop_watches()
            start = time.time()
            sim.faults.error_storm(status, 4.0, retry_after=retry_after)
            sim.faults.drop_watches()
            time.sleep(4.0)
            during = _requests_per_resource(sim, start, start + 4.0)
            # Exponential backoff from 0.2 s (doubling to 2 s, full jitter) gives about 6-10
            # attempts per watched kind in 4 s; a retry loop without backoff would make hundreds.
            assert during and max(during.values()) <= 20, f"requests per kind during a 4 s {status} storm: {during}"
            time.sleep(1.0)
    finally:
        workload.stop()
    finish_and_assert_exactly_once(agent, workload, tmp_path / "archive")


def test_control_plane_load_after_sync(sim: SimServer, tmp_path: Path) -> None:
    """After the caches synced: no GET per event, one watch per resource kind."""
    workload = make_workload(sim, seed=23, rate=300)
    workload.step()  # bootstrap objects before the agent starts
    agent = AgentProcess(write_config(tmp_path, sim), tmp_path).start()
    agent.wait_ready()
    synced_at = time.time()
    workload.run_for(2.0)
    workload.stop()
    records = finish_and_assert_exactly_once(agent, workload, tmp_path / "archive")
    assert len(records) > 300
    after = [r for r in sim.requests.records() if r.time > synced_at]
    assert [r for r in after if r.verb == "get"] == [], "no GET per event once the caches synced"
    watches: dict[str, int] = {}
    for r in sim.requests.records():
        if r.verb == "watch":
            watches[r.resource] = watches.get(r.resource, 0) + 1
    assert watches.get("events") == 1, watches
    assert all(n == 1 for n in watches.values()), f"one watch per kind: {watches}"
