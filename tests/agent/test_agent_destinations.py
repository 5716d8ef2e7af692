"""Several destinations from one agent process against the simulator: every destination ends
with exactly the records it should have, once, across kill -9; a dead destination delays only
itself and catches up when it is back (``on_full: block``), or drops its own oldest parts,
counted, while the others stay complete (``on_full: drop``)."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from tests.agent.harness import (
    REMOVE_AFTER_S,
    AgentProcess,
    assert_exactly_once,
    free_port,
    make_workload,
    occurrences_by_uid,
    read_archive,
    scrape,
    wait_caught_up,
    write_config,
)

from kubestream.sim.server import SimServer

FILTER = ["pay*", "check*"]


def _namespace(record: dict[str, Any]) -> str:
    # The same order the destination filter reads: the enrichment block, the involved object, the Event.
    return str(record["kubernetes"].get("namespace") or record["involved"].get("namespace")
               or record["event"].get("namespace") or "")


def _wanted(record: dict[str, Any]) -> bool:
    return any(fnmatchcase(_namespace(record), pattern) for pattern in FILTER)


def _identities(records: list[dict[str, Any]]) -> Counter[tuple[str, int]]:
    return Counter((r["event"]["uid"], r["event"]["resource_version"]) for r in records)


def _destinations(tmp_path: Path, **second: Any) -> list[dict[str, Any]]:
    return [
        {"name": "all-events", "type": "file", "stream_uid": "e2e", "streams": ["events"],
         "file": {"dir": str(tmp_path / "all")}},
        {"name": "some-namespaces", "type": "file", "stream_uid": "e2e",
         "file": {"dir": str(tmp_path / "some")}, "streams": ["events"],
         "filter": {"namespaces_include": FILTER}, "max_records": 7, **second},
    ]


def _config(tmp_path: Path, sim: SimServer, **second: Any) -> Path:
    config = write_config(tmp_path, sim, batch={"max_records": 50, "max_age_s": 0.3})
    text = config.read_text()
    import yaml

    document = yaml.safe_load(text)
    del document["sink"]
    document["sinks"] = _destinations(tmp_path, **second)
    config.write_text(yaml.safe_dump(document))
    return config


def _assert_subset_exactly_once(subset: list[dict[str, Any]], complete: list[dict[str, Any]]) -> None:
    """``subset`` holds exactly the records of ``complete`` that pass the filter, each once."""
    got = _identities(subset)
    assert all(n == 1 for n in got.values()), [k for k, n in got.items() if n > 1][:5]
    want = _identities([r for r in complete if _wanted(r)])
    assert got == want, (len(got), len(want), list((got - want).items())[:3], list((want - got).items())[:3])
    assert all(_wanted(r) for r in subset)


def test_two_destinations_survive_repeated_kill_9(sim: SimServer, tmp_path: Path) -> None:
    rng = random.Random(20261203)
    workload = make_workload(sim, seed=9, rate=300)
    config = _config(tmp_path, sim)
    workload.start()
    try:
        for _ in range(8):
            agent = AgentProcess(config, tmp_path).start()
            agent.wait_ready()
            time.sleep(rng.uniform(0.05, 1.2))
            agent.kill()
    finally:
        workload.stop()
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    complete = wait_caught_up(tmp_path / "all", workload.ledger)
    time.sleep(1.0)
    assert agent.terminate() == 0, agent.log()
    complete = read_archive(tmp_path / "all")
    assert_exactly_once(complete, workload.ledger)
    subset = read_archive(tmp_path / "some")
    assert subset, "the filtered destination got nothing"
    assert len(subset) < len(complete), "the filter kept everything"
    _assert_subset_exactly_once(subset, complete)
    # Split parts are named deterministically: <uid>-<first>-<last>.pNNN.<ext>
    names = [p.name for p in (tmp_path / "some").rglob("*.ndjson*") if not p.name.startswith(".")]
    assert any(".p00" in name for name in names), names[:5]


def _kill_destination(directory: Path) -> Path:
    """Make ``directory`` unusable (every path through it answers ELOOP, a retryable error)."""
    moved = directory.with_name(directory.name + ".away")
    os.rename(directory, moved)
    os.symlink(directory.name, directory)  # a link to itself
    return moved


def _revive_destination(directory: Path, moved: Path) -> None:
    directory.unlink()
    os.rename(moved, directory)


def _metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


def test_a_dead_destination_delays_only_itself_and_catches_up(sim: SimServer, tmp_path: Path) -> None:
    port = free_port()
    workload = make_workload(sim, seed=13, rate=200)
    config = _config(tmp_path, sim)
    text = config.read_text().replace("port: 0", f"port: {port}")
    config.write_text(text)
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    moved = _kill_destination(tmp_path / "some")
    workload.run_for(3.0)
    live = wait_caught_up(tmp_path / "all", workload.ledger, timeout=20)
    assert sum(occurrences_by_uid(live).values()) == workload.ledger.total(), "the live destination fell behind"
    time.sleep(1.5)
    samples = scrape(port)
    assert _metric(samples, "kubestream_destination_oldest_pending_seconds", destination="all-events") < 1.0
    assert _metric(samples, "kubestream_destination_oldest_pending_seconds", destination="some-namespaces") > 1.0
    assert _metric(samples, "kubestream_destination_pending_parts", destination="some-namespaces") > 0
    assert _metric(samples, "kubestream_destination_reachable", destination="all-events") == 1
    _revive_destination(tmp_path / "some", moved)
    workload.stop()
    deadline = time.monotonic() + 60
    while _metric(scrape(port), "kubestream_destination_pending_parts", destination="some-namespaces") > 0:
        assert time.monotonic() < deadline, agent.log()
        time.sleep(0.5)
    assert agent.terminate() == 0, agent.log()
    complete = read_archive(tmp_path / "all")
    assert_exactly_once(complete, workload.ledger)
    _assert_subset_exactly_once(read_archive(tmp_path / "some"), complete)


def test_a_dead_destination_with_on_full_drop_drops_only_its_own_parts(sim: SimServer, tmp_path: Path) -> None:
    port = free_port()
    workload = make_workload(sim, seed=17, rate=300)
    config = _config(tmp_path, sim, on_full="drop", max_pending_bytes=4096)
    config.write_text(config.read_text().replace("port: 0", f"port: {port}"))
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    moved = _kill_destination(tmp_path / "some")
    workload.run_for(3.0)
    workload.stop()
    wait_caught_up(tmp_path / "all", workload.ledger, timeout=20)
    time.sleep(1.0)
    samples = scrape(port)
    dropped = _metric(samples, "kubestream_destination_dropped_records_total", destination="some-namespaces",
                      reason="overflow")
    assert dropped > 0
    assert _metric(samples, "kubestream_destination_dropped_records_total", destination="all-events") == 0
    assert _metric(samples, "kubestream_destination_pending_bytes", destination="some-namespaces") <= 4096 * 3
    _revive_destination(tmp_path / "some", moved)
    deadline = time.monotonic() + 30
    while _metric(scrape(port), "kubestream_destination_pending_parts", destination="some-namespaces") > 0:
        assert time.monotonic() < deadline, agent.log()
        time.sleep(0.5)
    assert agent.terminate() == 0, agent.log()
    complete = read_archive(tmp_path / "all")
    assert_exactly_once(complete, workload.ledger)
    subset = read_archive(tmp_path / "some")
    got = _identities(subset)
    assert all(n == 1 for n in got.values())
    assert set(got) <= set(_identities([r for r in complete if _wanted(r)]))
    assert "dropped its oldest parts" in agent.log()


def test_a_removed_destination_s_parts_are_dropped_at_start(sim: SimServer, tmp_path: Path) -> None:
    workload = make_workload(sim, seed=19, rate=200)
    config = _config(tmp_path, sim)
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    moved = _kill_destination(tmp_path / "some")
    workload.run_for(2.0)
    workload.stop()
    wait_caught_up(tmp_path / "all", workload.ledger, timeout=20)
    agent.kill()
    _revive_destination(tmp_path / "some", moved)
    import yaml

    document = yaml.safe_load(config.read_text())
    document["sinks"] = document["sinks"][:1]
    config.write_text(yaml.safe_dump(document))
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    assert agent.terminate() == 0, agent.log()
    assert "destination 'some-namespaces' is no longer configured" in agent.log()
    assert_exactly_once(read_archive(tmp_path / "all"), workload.ledger)
    shutil.rmtree(tmp_path / "state", ignore_errors=True)


def test_events_and_logs_to_three_destinations_survive_kill_9(sim: SimServer, tmp_path: Path) -> None:
    """One agent with both streams: a destination of every log line, one of events only, and one
    of both streams filtered by namespace. Each ends with exactly its records, once."""
    import yaml
    from tests.logs.logs_source_support import archive_keys, record_key
    from tests.logs.logs_source_support import assert_exactly_once as assert_lines_exactly_once

    from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter

    rng = random.Random(61)
    workload = make_workload(sim, seed=23, rate=150, pod_churn_per_s=0.5, delete_grace_s=0.0)
    workload.step()
    node = workload.node_names[0]
    writer = NodeLogWriter(
        NodeLogConfig(root=tmp_path / "pods", containers_dir=tmp_path / "containers", node=node, seed=23,
                      lines_per_s=400, rotate_bytes=256 * 1024, max_files=3, remove_after_s=REMOVE_AFTER_S,
                      sync_every_s=0.3),
        cluster=sim.cluster)
    config = write_config(
        tmp_path, sim,
        logs={"enabled": True, "node_name": node, "pods_dir": str(tmp_path / "pods"),
              "containers_dir": str(tmp_path / "containers"), "sweep_interval_s": 1.0},
        batch={"max_records": 100, "max_age_s": 0.3})
    document = yaml.safe_load(config.read_text())
    del document["sink"]
    document["sinks"] = [
        {"name": "logs", "type": "file", "stream_uid": "e2e", "streams": ["logs"], "file": {"dir": str(tmp_path / "logs")}},
        {"name": "events", "type": "file", "stream_uid": "e2e", "streams": ["events"],
         "file": {"dir": str(tmp_path / "events")}},
        {"name": "mixed", "type": "file", "stream_uid": "e2e", "file": {"dir": str(tmp_path / "mixed")},
         "filter": {"namespaces_include": FILTER}, "max_records": 5},
    ]
    config.write_text(yaml.safe_dump(document))
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    workload.start()
    writer.start()
    try:
        for _ in range(5):
            time.sleep(rng.uniform(0.3, 1.2))
            agent.kill()
            agent.start()
            agent.wait_ready()
        time.sleep(1.0)
    finally:
        workload.stop()
        writer.stop()
    expected_lines = writer.ledger.keys()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(archive_keys(read_archive(tmp_path / "logs"))) < len(expected_lines):
        time.sleep(0.3)
    wait_caught_up(tmp_path / "events", workload.ledger)
    time.sleep(1.0)
    assert agent.terminate() == 0, agent.log()

    lines = read_archive(tmp_path / "logs")
    assert all(r["kind"] == "log" for r in lines)
    assert len(expected_lines) > 500
    assert_lines_exactly_once(archive_keys(lines), expected_lines)
    events = read_archive(tmp_path / "events")
    assert all(r["kind"] == "event" for r in events), "a destination of events only got log lines"
    assert_exactly_once(events, workload.ledger)

    mixed = read_archive(tmp_path / "mixed")
    mixed_events = [r for r in mixed if r["kind"] == "event"]
    mixed_lines = [r for r in mixed if r["kind"] == "log"]
    _assert_subset_exactly_once(mixed_events, events)
    wanted_lines = {record_key(r) for r in lines if any(fnmatchcase(r["kubernetes"]["namespace"], p) for p in FILTER)}
    assert wanted_lines and len(wanted_lines) < len(expected_lines)
    assert_lines_exactly_once(archive_keys(mixed_lines), wanted_lines)
