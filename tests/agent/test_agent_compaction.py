"""The events collector's periodic compaction (``compaction.interval_s``) in a real agent process:
closed hours are compacted while it runs, every event stays readable exactly once, and the run
is counted; a node agent refuses the option."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.agent.harness import AgentProcess, free_port, scrape, write_config
from tests.query.conftest import run_cli

from kubestream.sim.server import SimServer

EVENTS = 24


def _old_event(n: int, when: dt.datetime) -> dict[str, Any]:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": f"old-{n:03d}", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": f"web-{n}", "uid": f"uid-{n}",
                           "apiVersion": "v1"},
        "reason": "BackOff", "message": f"Back-off restarting failed container {n}", "type": "Warning",
        "count": 1, "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": stamp, "lastTimestamp": stamp,
    }


def _compacted_parts(archive: Path) -> list[Path]:
    return sorted(archive.rglob("~compacted/*/parts/*.parquet"))


def test_the_collector_compacts_closed_hours_while_it_runs(sim: SimServer, tmp_path: Path) -> None:
    three_hours_ago = dt.datetime.now(dt.UTC).replace(minute=10, second=0, microsecond=0) - dt.timedelta(hours=3)
    for n in range(EVENTS):
        sim.cluster.create("events", _old_event(n, three_hours_ago + dt.timedelta(seconds=n)))
    port = free_port()
    config = write_config(tmp_path, sim, events={"since": "retained"}, batch={"max_records": 5, "max_age_s": 0.5},
                          compaction={"interval_s": 10, "grace_s": 0}, server={"port": port})
    agent = AgentProcess(config, tmp_path).start()
    try:
        agent.wait_ready()
        deadline = time.monotonic() + 40
        while not _compacted_parts(tmp_path / "archive"):
            assert time.monotonic() < deadline, agent.log()
            time.sleep(0.5)
        samples = scrape(port)
    finally:
        assert agent.terminate() == 0, agent.log()
    assert samples[("kubestream_compaction_runs_total", (("result", "ok"),))] >= 1
    assert samples[("kubestream_compacted_objects_total", ())] >= 2  # 24 events in batches of 5
    hour = tmp_path / "archive" / "events" / f"dt={three_hours_ago:%Y-%m-%d}" / f"hour={three_hours_ago:%H}"
    assert not [p for p in hour.iterdir() if p.is_file()], "the hour's small objects are gone"
    done = run_cli("query", "-a", str(tmp_path / "archive"), "-o", "csv",
                   "select count(*) n, count(distinct event_uid) uids from events")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == f"{EVENTS},{EVENTS}"


def test_a_node_agent_refuses_periodic_compaction(sim: SimServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, sim, events={"enabled": False},
                          logs={"enabled": True, "node_name": "node-1", "pods_dir": str(tmp_path / "pods")},
                          compaction={"interval_s": 60})
    done = subprocess.run([sys.executable, "-m", "kubestream.cli.main", "validate", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "kubestream: config error: compaction.interval_s: periodic compaction is a task of the events collector (one compactor "
        "per archive); node agents never compact: unset it, or run `kubestream compact`"]
