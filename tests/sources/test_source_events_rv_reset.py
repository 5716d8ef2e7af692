"""resourceVersion going backwards while the agent runs: the simulated API server is stopped and
a new, empty one is started on the same port (what an etcd restore looks like to a client).
Every reflector notices and relists, the new world's events are archived, and nothing archived
before is archived again. Plus the Events source's state across a RESET (watch position moved
back, old-world rows pruned, a restart re-exports nothing)."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from pathlib import Path

from source_events_support import Harness, core_event
from tests.agent.harness import AgentProcess, make_workload, occurrences_by_uid, read_archive, write_config

from kubestream.config.settings import EventsSettings
from kubestream.kube.reflector import EventType
from kubestream.sim.server import SimConfig, SimServer

RESOURCES = ("events", "pods", "nodes", "namespaces", "replicasets", "jobs", "services")


def _scrape(port: int) -> dict[tuple[str, str], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[tuple[str, str], float] = {}
    for line in body.splitlines():
        if line.startswith(("kubestream_resource_version_resets_total{", "kubestream_relists_total{")):
            name, rest = line.split("{", 1)
            labels, value = rest.rsplit(" ", 1)
            out[(name, labels.split('resource="', 1)[1].split('"', 1)[0])] = float(value)
    return out


def _wait(check: object, timeout: float, what: str, agent: AgentProcess) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s:\n{agent.log()}")
        time.sleep(0.2)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_agent_survives_an_api_server_restarted_empty(tmp_path: Path) -> None:
    old = SimServer(SimConfig()).start()
    new: SimServer | None = None
    metrics_port = _free_port()
    agent = AgentProcess(write_config(tmp_path, old, server={"port": metrics_port}), tmp_path)
    archive = tmp_path / "archive"
    try:
        before = make_workload(old, seed=31, rate=300)
        before.run_for(1.5)
        before.flush()
        agent.start().wait_ready()
        old_total = before.ledger.total()
        _wait(lambda: sum(occurrences_by_uid(read_archive(archive)).values()) >= old_total, 30,
              "archiving the old world", agent)
        old_rv = old.cluster.resource_version
        port = old.port
        old.stop()
        new = SimServer(SimConfig(port=port)).start()
        assert new.cluster.resource_version < old_rv

        def all_reset() -> bool:
            got = _scrape(metrics_port)
            return all(got.get(("kubestream_resource_version_resets_total", r), 0) >= 1 for r in RESOURCES)

        _wait(all_reset, 30, "every reflector noticing the reset", agent)
        after = make_workload(new, seed=32, rate=300)
        after.run_for(1.5)
        after.flush()
        truth = {**{u: n for u, n in before.ledger.per_uid().items() if n},
                 **{u: n for u, n in after.ledger.per_uid().items() if n}}
        _wait(lambda: sum(occurrences_by_uid(read_archive(archive)).values()) >= sum(truth.values()), 40,
              "archiving the new world", agent)
        time.sleep(1.5)  # anything duplicated would arrive by now
        counters = _scrape(metrics_port)
        records = read_archive(archive)
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            assert agent.terminate() == 0, agent.log()
        (new or old).stop()
    assert occurrences_by_uid(records) == truth
    seen = Counter((r["event"]["uid"], r["event"]["resource_version"]) for r in records)
    assert [k for k, n in seen.items() if n > 1] == []
    for resource in RESOURCES:
        assert counters[("kubestream_resource_version_resets_total", resource)] == 1, resource
        assert counters[("kubestream_relists_total", resource)] >= 2, resource  # first list + after the reset
    warnings = [line for line in agent.log().splitlines() if "went backwards" in line]
    assert len(warnings) == len(RESOURCES) and all("WARNING" in line for line in warnings), warnings
    assert "Traceback" not in agent.log()


async def test_reset_moves_the_position_back_and_prunes_the_old_world(tmp_path: Path) -> None:
    h = Harness(tmp_path / "state.db", EventsSettings(since="retained"))
    try:
        await h.listing([core_event("a", 22000, 2), core_event("b", 22001, 1)], 22900)
        await h.feed(EventType.ADDED, core_event("c", 22915, 1))
        h.sink.commit()
        assert h.state.conn.execute("SELECT value FROM events_meta WHERE key='watch_rv'").fetchone()[0] == 22915
        # The world is restored from a backup that still holds "a"; "b" and "c" are gone; "d" is new.
        await h.feed(EventType.RESET, None, 40)
        await h.listing([core_event("a", 12, 2), core_event("d", 30, 1)], 40)
        h.sink.commit()
        await h.feed(EventType.BOOKMARK, None, 41)
        assert [uid for uid, _ in h.sink.deltas()] == ["a", "b", "c", "d"]  # "a" not again
        assert h.state.conn.execute("SELECT value FROM events_meta WHERE key='watch_rv'").fetchone()[0] == 41
        assert sorted(h.rows()) == ["a", "d"]  # the old world's rows are pruned, not kept forever
        assert h.state.conn.execute("SELECT max(rv) FROM events_exported").fetchone()[0] <= 41
        # A crash now resumes from RV 41 of the new world and re-exports nothing.
        h.restart()
        assert h.source.resume_rv == 41
        await h.listing([core_event("a", 12, 2), core_event("d", 30, 1)], 45)
        assert h.sink.all() == []
    finally:
        h.close()
