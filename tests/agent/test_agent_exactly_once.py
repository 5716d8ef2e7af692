"""The whole agent against the simulator: the archive equals the simulator's ledger of event
occurrences — through clean restarts, kill -9 at random points, and API faults."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from tests.agent.harness import (
    AgentProcess,
    assert_exactly_once,
    finish_and_assert_exactly_once,
    make_workload,
    read_archive,
    write_config,
)

from kubestream.sim.server import SimServer


@pytest.mark.parametrize("api", ["core", "events.k8s.io"])
def test_summed_count_delta_equals_ledger(sim: SimServer, tmp_path: Path, api: str) -> None:
    """Legacy (count bumps) and series (series.count jumps) recorders alike."""
    workload = make_workload(sim, api=api, rate=400, series_finish_s=2.0)
    agent = AgentProcess(write_config(tmp_path, sim), tmp_path).start()
    agent.wait_ready()
    workload.run_for(3.0)
    workload.stop()  # flush: pending series counts reach the API
    assert workload.ledger.total() > 500
    records = finish_and_assert_exactly_once(agent, workload, tmp_path / "archive")
    if api == "events.k8s.io":
        assert any(r["event"]["count_delta"] > 1 for r in records), "series jumps must show as deltas > 1"
    enriched = [r for r in records if r["kubernetes"].get("enrichment") == "ok"]
    assert len(enriched) > 0.8 * len(records), "most records should be fully enriched"


def test_clean_restarts_export_nothing_twice(sim: SimServer, tmp_path: Path) -> None:
    workload = make_workload(sim, seed=11)
    config = write_config(tmp_path, sim)
    for _ in range(3):
        agent = AgentProcess(config, tmp_path).start()
        agent.wait_ready()
        workload.run_for(1.0)
        assert agent.terminate() == 0, agent.log()
    workload.stop()
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    finish_and_assert_exactly_once(agent, workload, tmp_path / "archive")


def test_kill_9_at_random_points(sim: SimServer, tmp_path: Path) -> None:
    """≥ 10 SIGKILLs at random moments while events keep coming; then one clean run catches up."""
    rng = random.Random(20261121)
    workload = make_workload(sim, seed=3, rate=300)
    config = write_config(tmp_path, sim, batch={"max_records": 50, "max_age_s": 0.3})
    workload.start()
    try:
        for _ in range(10):
            agent = AgentProcess(config, tmp_path).start()
            agent.wait_ready()
            time.sleep(rng.uniform(0.05, 1.5))
            agent.kill()
    finally:
        workload.stop()
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    finish_and_assert_exactly_once(agent, workload, tmp_path / "archive")


def test_sigterm_flushes_the_open_batch_within_the_bound(sim: SimServer, tmp_path: Path) -> None:
    workload = make_workload(sim, seed=5, rate=200)
    config = write_config(tmp_path, sim, batch={"max_records": 100000, "max_age_s": 3600},
                          shutdown={"timeout_s": 5})
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    workload.run_for(1.0)
    workload.stop()
    time.sleep(1.5)  # let the agent read them; the batch stays open (age bound one hour)
    assert read_archive(tmp_path / "archive") == []
    started = time.monotonic()
    assert agent.terminate(timeout=10) == 0, agent.log()
    assert time.monotonic() - started < 5 + 1
    assert_exactly_once(read_archive(tmp_path / "archive"), workload.ledger)
