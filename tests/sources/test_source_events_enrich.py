"""The kubernetes block: from the enricher's caches, waiting (bounded) for them to sync."""

from __future__ import annotations

import asyncio
from pathlib import Path

from source_events_support import CacheEnricher, Harness, core_event

from kubestream.config.settings import EventsSettings
from kubestream.kube.reflector import EventType


async def test_first_records_wait_for_the_enricher_then_are_enriched(tmp_path: Path) -> None:
    enricher = CacheEnricher({"u-a": {"pod_name": "obj-a", "node_name": "node-1"}})
    h = Harness(tmp_path / "s.db", EventsSettings(since="retained"), enricher=enricher)
    listing = asyncio.create_task(h.listing([core_event("a", 10), core_event("b", 11)], list_rv=12))
    await asyncio.sleep(0.05)
    assert not listing.done() and h.sink.all() == []
    enricher.synced.set()
    await asyncio.wait_for(listing, 1)

    first, second = (r.data["kubernetes"] for r in h.sink.all())
    assert first == {"enrichment": "ok", "object_uid": "u-a", "pod_name": "obj-a", "node_name": "node-1"}
    assert enricher.calls[0] == ("Pod", "default", "obj-a", "u-a", "spec.containers{app}")
    assert second["enrichment"] == "none"
    h.close()


async def test_an_enricher_that_never_syncs_delays_records_only_by_the_bound(tmp_path: Path) -> None:
    enricher = CacheEnricher({})
    h = Harness(tmp_path / "s.db", EventsSettings(since="retained"), enricher=enricher, enricher_wait_s=0.05)
    await asyncio.wait_for(h.listing([], list_rv=5), 1)
    await asyncio.wait_for(h.feed(EventType.ADDED, core_event("a", 10)), 1)
    assert h.sink.deltas() == [("a", 1)]
    assert h.sink.all()[0].data["kubernetes"]["enrichment"] == "none"
    h.close()
