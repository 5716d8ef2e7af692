"""Memory under load. ``make soak`` runs the 30-minute soak of bench/bench_soak.py (the real agent
against 10,000 pods with churn and a steady event stream; RSS must stay within 10 % of its
post-warm-up figure). The regular test checks the bounded structures behind that: with event TTL
expiry and pod churn, the Events source's per-uid state mirrors what the server still retains
and the caches hold only live objects plus deletions younger than the delay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.sources.source_events_support import LiveSource, small_workload

from kubestream.config.settings import EventsSettings
from kubestream.sim.testing import running_sim


@pytest.mark.soak
def test_thirty_minute_soak_keeps_rss_flat() -> None:
    from bench.bench_soak import FLAT_TOLERANCE, soak_agent

    result = soak_agent(30.0, 10_000, ttl_s=300.0, delete_delay_s=300.0)
    assert result["growth_after_warmup"] <= FLAT_TOLERANCE, result


async def test_event_state_mirrors_what_the_server_retains(tmp_path: Path) -> None:
    with running_sim(event_ttl_s=0.5) as sim:
        live = LiveSource(sim, tmp_path, EventsSettings(since="retained"))
        source = await live.start()
        await asyncio.wait_for(source.synced.wait(), 10)
        workload = small_workload(sim, "core", events_per_s=300.0)
        await asyncio.to_thread(workload.run_for, 1.5)
        await asyncio.to_thread(workload.flush)
        # Every event expires (TTL 0.5 s) and the watch delivers its DELETED.
        async with asyncio.timeout(20):
            while sim.cluster.list("events") or source._watermarks:  # noqa: ASYNC110 - sim thread state
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        live._commit()
        rows = live.state.conn.execute("SELECT count(*) FROM events_exported WHERE deleted_rv IS NULL").fetchone()[0]
        exported = len(live.per_uid())
        await live.stop()
    assert exported > 100  # the stream really ran
    assert source._watermarks == {} and source._listed == set()
    assert rows == 0  # no row of a gone event is kept as if it were live
