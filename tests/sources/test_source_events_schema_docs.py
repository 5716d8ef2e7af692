"""docs/schema.md stays true: its DuckDB queries run against NDJSON.gz files of real records."""

from __future__ import annotations

import datetime as dt
import gzip
import re
from pathlib import Path
from typing import Any

import duckdb
import orjson
from source_events_support import CacheEnricher, Harness, core_event

from kubestream.config.settings import EventsSettings
from kubestream.kube.reflector import EventType
from kubestream.model import Record

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def _queries() -> list[str]:
    """The documented queries over event records (log queries are tested in tests/logs)."""
    return [q for q in re.findall(r"```sql\n(.*?)```", SCHEMA_DOC.read_text(), re.S) if "out/events/" in q]


def _write_batch(root: Path, records: list[Record]) -> None:
    # The pipeline's layout: events/dt=YYYY-MM-DD/hour=HH/<uid>-<first>-<last>.ndjson.gz
    folder = root / "events" / f"dt={dt.date.today():%Y-%m-%d}" / "hour=22"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"kubestream-{records[0].position}-{records[-1].position}.ndjson.gz"
    with gzip.open(folder / name, "wb") as f:
        for record in records:
            f.write(orjson.dumps(record.data) + b"\n")


async def _records(tmp_path: Path) -> list[Record]:
    enricher = CacheEnricher({"u-web": {"owner_kind": "StatefulSet", "owner_name": "web",
                                        "labels": {"app": "web"}}})
    enricher.synced.set()
    h = Harness(tmp_path / "state.db", EventsSettings(since="retained"), enricher=enricher)
    web = {"namespace": "shop", "type_": "Warning", "reason": "BackOff", "obj_name": "web-0"}
    await h.listing([core_event("web", 10, count=2, last="2023-11-14T22:00:00Z", **web),
                     core_event("pull", 11, count=1, reason="Pulled", last="2023-11-14T21:30:00Z")], list_rv=12)
    await h.feed(EventType.MODIFIED, core_event("web", 13, count=5, last="2023-11-14T22:10:00Z", **web))
    await h.feed(EventType.ADDED, core_event("oom", 14, count=None, type_="Warning", reason="OOMKilling",
                                             series={"count": 4, "lastObservedTime": "2023-11-14T22:20:00Z"}))
    h.close()
    return h.sink.all()


async def test_documented_queries_run_and_answer_correctly(tmp_path: Path) -> None:
    records = await _records(tmp_path)
    out = tmp_path / "out"
    _write_batch(out, records[:2])
    _write_batch(out, records[2:])
    queries = _queries()
    assert len(queries) == 4
    con = duckdb.connect()
    results: list[list[tuple[Any, ...]]] = []
    for query in queries:
        query = query.replace("'out/events/", f"'{out}/events/").strip().rstrip(";")
        # As text: fetching TIMESTAMPTZ into Python would need pytz, and strings compare plainly.
        results.append(con.sql(f"SELECT COLUMNS(*)::VARCHAR FROM ({query})").fetchall())
    by_reason, pod_story, per_workload, mismatches = results

    assert by_reason == [("BackOff", "5", "1"), ("OOMKilling", "4", "1")]
    # Legacy repeats: a first record of 2 then +3, in order; named by involved object.
    assert [(row[1], row[2]) for row in pod_story] == [("BackOff", "2"), ("BackOff", "3")]
    assert ("StatefulSet", "web", "5") in [row[1:] for row in per_workload]
    assert mismatches == []
