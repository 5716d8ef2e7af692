"""The Events source against the simulated API server and workload: the committed output's
summed count_delta per uid equals the ledger of occurrences written, through faults and crashes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from source_events_support import LiveSource, fast_kube_settings, small_workload

from kubestream.config.settings import EventsSettings
from kubestream.sim.server import SimServer
from kubestream.sim.testing import running_sim
from kubestream.sim.workload.event_ledger import EventLedger


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with running_sim() as server:
        yield server


@pytest.fixture(autouse=True)
async def _stop_live_sources() -> AsyncIterator[None]:
    yield
    while LiveSource.running:
        await LiveSource.running[-1].crash()


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {uid: n for uid, n in counts.items() if n}


async def _run_workload(server: SimServer, events_api: str, seconds: float, **overrides: object) -> EventLedger:
    workload = small_workload(server, events_api, **overrides)  # type: ignore[arg-type]
    await asyncio.to_thread(workload.run_for, seconds)
    await asyncio.to_thread(workload.flush)
    assert not workload.stats.errors or all("409" in e or "404" in e for e in workload.stats.errors)
    return workload.ledger


async def test_legacy_recorder_counts_match_the_ledger(sim: SimServer, tmp_path: Path) -> None:
    live = LiveSource(sim, tmp_path, EventsSettings(since="retained"))
    source = await live.start()
    await asyncio.wait_for(source.synced.wait(), 10)
    ledger = await _run_workload(sim, "core", 1.5)

    sums = await live.caught_up(ledger.per_uid)
    await live.stop()
    assert sums == ledger.per_uid()
    assert max(ledger.per_uid().values()) > 1, "the workload should repeat events"
    assert all(r.data["event"]["api"] == "core/v1" for r in live.exported)


async def test_series_recorder_jumps_match_the_ledger_via_events_v1(sim: SimServer, tmp_path: Path) -> None:
    live = LiveSource(sim, tmp_path, EventsSettings(since="retained", api="events.k8s.io/v1"))
    source = await live.start()
    await asyncio.wait_for(source.synced.wait(), 10)
    ledger = await _run_workload(sim, "events.k8s.io", 2.0)

    sums = await live.caught_up(ledger.per_uid)
    await live.stop()
    assert sums == ledger.per_uid()
    assert any(r.data["event"]["count_delta"] > 1 for r in live.exported), "series counts should jump"
    assert any(r.data["event"]["series_count"] for r in live.exported)


async def test_faults_and_crashes_lose_nothing_and_duplicate_nothing(sim: SimServer, tmp_path: Path) -> None:
    faults = sim.faults
    live = LiveSource(sim, tmp_path, EventsSettings(since="retained"), commit_every_s=0.2)
    source = await live.start()
    await asyncio.wait_for(source.synced.wait(), 10)
    workload = small_workload(sim, "mixed")
    workload.start()
    try:
        await asyncio.sleep(0.4)
        faults.drop_watches()
        await asyncio.sleep(0.3)
        faults.expire_next_watches(1)  # the next watch gets ERROR 410: relist
        faults.drop_watches()
        await asyncio.sleep(0.4)
        faults.error_storm(500, 0.5)
        faults.drop_watches()
        await asyncio.sleep(0.8)
        faults.error_storm(429, 0.4, retry_after=1)
        faults.drop_watches()
        await asyncio.sleep(1.5)
        faults.cut_next_watch_mid_object(1)
        faults.drop_watches()
        await asyncio.sleep(0.3)
        await live.crash()  # uncommitted records are lost; the watch resumes from the saved RV
        await asyncio.sleep(0.3)
        await live.start()
        await asyncio.sleep(0.5)
        await live.crash()
        faults.compact()  # the saved RV is gone: the restart relists
        await asyncio.sleep(0.3)
        await live.start()
        await asyncio.sleep(0.5)
    finally:
        await asyncio.to_thread(workload.stop)

    ledger = workload.ledger
    sums = await live.caught_up(ledger.per_uid, within_s=20)
    await live.stop()
    assert live.lost > 0, "the crashes should have dropped uncommitted records"
    missing = {u: n - sums.get(u, 0) for u, n in ledger.per_uid().items() if sums.get(u, 0) != n}
    assert missing == {}
    assert sums == ledger.per_uid()
    relists = live.metrics.registry.get_sample_value("kubestream_relists_total", {"resource": "events"})
    assert relists is not None and relists >= 3  # first list, after the 410, after the compaction


async def test_since_now_exports_only_what_happens_after_the_first_start(sim: SimServer, tmp_path: Path) -> None:
    workload = small_workload(sim, "mixed")
    await asyncio.to_thread(workload.run_for, 0.8)
    await asyncio.to_thread(workload.flush)
    before = workload.ledger.per_uid()

    live = LiveSource(sim, tmp_path, EventsSettings(since="now"))
    source = await live.start()
    await asyncio.wait_for(source.synced.wait(), 10)
    await asyncio.to_thread(workload.run_for, 1.0)
    await asyncio.to_thread(workload.flush)

    def expected() -> dict[str, int]:
        return _nonzero({u: n - before.get(u, 0) for u, n in workload.ledger.per_uid().items()})

    sums = await live.caught_up(expected)
    await live.stop()
    assert sums == expected()
    assert set(before) & set(sums), "some events present at the start should have grown"


async def test_after_sync_only_one_watch_and_no_reads(sim: SimServer, tmp_path: Path) -> None:
    kubeconfig = sim.write_kubeconfig(tmp_path / "kc")
    kube = fast_kube_settings(kubeconfig, watch_timeout_s=(300.0, 600.0), inactivity_timeout_s=90.0)
    live = LiveSource(sim, tmp_path, EventsSettings(since="retained"), kube=kube)
    workload = small_workload(sim, "core")
    await asyncio.to_thread(workload.run_for, 0.3)
    source = await live.start()
    await asyncio.wait_for(source.synced.wait(), 10)
    await asyncio.sleep(0.2)
    synced_at = len(sim.requests.records())
    await asyncio.to_thread(workload.run_for, 1.0)
    sums = await live.caught_up(workload.ledger.per_uid)

    after = [r for r in sim.requests.records()[synced_at:] if r.resource == "events"]
    await live.stop()
    assert sums == workload.ledger.per_uid()
    assert [r for r in after if r.verb in ("get", "list")] == []
    event_requests = [r for r in sim.requests.records() if r.resource == "events"]
    assert [r.verb for r in event_requests if r.watch] == ["watch"]
    # One list, read in pages of kube.list_page_size, all before the sync.
    lists = [r for r in event_requests if r.verb == "list"]
    assert 1 <= len(lists) <= -(-len(sim.cluster.list("events")) // kube.list_page_size) + 1


async def test_filters_reach_the_server_and_the_output(sim: SimServer, tmp_path: Path) -> None:
    events = EventsSettings(since="retained", namespaces_include=["payments"], types=["Warning"],
                            reasons_exclude=["FailedScheduling"])
    live = LiveSource(sim, tmp_path, events)
    source = await live.start()
    await asyncio.wait_for(source.synced.wait(), 10)
    workload = small_workload(sim, "core", crashloop_fraction=0.6)
    await asyncio.to_thread(workload.run_for, 1.5)
    await asyncio.to_thread(workload.flush)

    def expected() -> dict[str, int]:
        return {e.uid: e.occurrences for e in workload.ledger.entries()
                if e.namespace == "payments" and e.type == "Warning" and e.reason != "FailedScheduling"}

    sums = await live.caught_up(expected)
    await live.stop()
    assert sums == expected() and sums
    requests = [r for r in sim.requests.records() if r.resource == "events"]
    assert requests and all(r.namespace == "payments" for r in requests)
    assert {r.field_selector for r in requests} == {"type=Warning,reason!=FailedScheduling"}


async def test_ttl_deletions_are_never_counted_and_get_pruned(tmp_path: Path) -> None:
    with running_sim(event_ttl_s=0.5) as sim:
        live = LiveSource(sim, tmp_path, EventsSettings(since="retained"))
        source = await live.start()
        await asyncio.wait_for(source.synced.wait(), 10)
        ledger = await _run_workload(sim, "core", 1.5)
        sums = await live.caught_up(ledger.per_uid)
        await asyncio.sleep(1.0)  # let the last events expire; bookmarks/records then prune
        rows = live.state.conn.execute("SELECT count(*) FROM events_exported").fetchone()[0]
        await live.stop()
    assert sums == ledger.per_uid()
    assert rows < len(ledger), "rows of expired events should have been pruned"
