"""Two clusters' agents with ``cluster.partition`` on, writing into one archive through the real
batcher and file sink: query and timeline find both clusters' ``cluster=<name>`` folders
without ``--cluster`` (one folder listing per stream), only one cluster's with it, and every
row carries its ``cluster``."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bench.gen_archive import event_record
from tests.query.conftest import run_cli

from kubestream.archive.compact import CompactionReport, compact_archive
from kubestream.archive.store import open_archive
from kubestream.config.settings import LogsSettings, Settings
from kubestream.enrich.block import ContainerMeta
from kubestream.model import LogChunk, Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.encode import make_encoder, make_log_encoder
from kubestream.pipeline.encode.logs_parquet import batch_table
from kubestream.pipeline.spool import Spool
from kubestream.sinks.file import FileSink
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser
from kubestream.state.store import StateStore

START = dt.datetime(2026, 2, 1, 9, 20, tzinfo=dt.UTC)
WINDOW = ("--since", "2026-02-01T09:00:00Z", "--until", "2026-02-01T11:00:00Z")


def _events(cluster: str) -> list[dict[str, Any]]:
    records = []
    for n in range(3):
        record = event_record(n, START + dt.timedelta(minutes=30 * n), tag=cluster)
        record["kubernetes"]["pod_uid"] = record["involved"]["uid"] = f"{cluster}-pod-{n}"
        records.append(record)
    return records


def _log_chunk(cluster: str, n: int) -> LogChunk:
    when = START + dt.timedelta(minutes=30 * n, seconds=1)
    line = b"%s stderr F %s says %d\n" % (when.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode(), cluster.encode(), n)
    meta = ContainerMeta.build({"namespace": "shop", "pod_name": f"web-{n:02d}", "pod_uid": f"{cluster}-pod-{n}",
                                "container_name": "web", "owner_kind": "Deployment", "owner_name": "web"})
    return LogChunk(FileParser(LogFormat.CRI, LogsSettings()).feed(line, 0), meta,
                    f"/var/log/pods/shop_web-{n:02d}_{cluster}-pod-{n}/web/0.log")


async def _agent_writes(root: Path, tmp: Path, cluster: str, log_format: str) -> None:
    """What one cluster's agent writes: its events and logs, a batch per half hour."""
    settings = Settings.model_validate({
        "cluster": {"name": cluster, "partition": True}, "encoding": {"format": log_format},
        "sink": {"file": {"dir": str(root)}, "stream_uid": "agent"}})
    state = StateStore(tmp / f"{cluster}.db")
    sink = FileSink(settings.sink.file)
    try:
        spool = Spool(tmp / f"spool-{cluster}", state, max_bytes=1 << 24)
        events = Pipeline("events", settings, state, spool)
        logs = Pipeline("logs", settings, state, spool, encoder=make_log_encoder(settings))
        for n, record in enumerate(_events(cluster)):
            await events.put(Record(data=record, sort_key=record["timestamp"], position=n + 1))
            await events.flush()
            chunk = _log_chunk(cluster, n)
            await logs.put(Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=n + 1))
            await logs.flush()
        for entry in spool.pending():
            await sink.put(entry.key, entry.path, entry.path.stat().st_size)
    finally:
        await sink.close()
        state.close()


@pytest.fixture
async def shared_archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    root.mkdir()
    await _agent_writes(root, tmp_path, "east", "ndjson")
    await _agent_writes(root, tmp_path, "west", "parquet")
    return root


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_keys_have_the_cluster_level(shared_archive: Path) -> None:
    folders = {p.relative_to(shared_archive).parts[:3] for p in shared_archive.rglob("*") if p.is_file()}
    assert folders == {(stream, f"cluster={c}", "dt=2026-02-01") for stream in ("events", "logs")
                       for c in ("east", "west")}


@pytest.mark.parametrize("window", [WINDOW, ()], ids=["window", "whole archive"])
def test_without_cluster_every_clusters_partitions_are_found(shared_archive: Path, window: tuple[str, ...]) -> None:
    for view in ("events", "logs"):
        done = run_cli("query", "-a", str(shared_archive), *window, "--explain", "-o", "csv",
                       f"select cluster, count(*) n from {view} group by 1 order by 1")
        assert done.returncode == 0, done.stderr
        assert _csv(done.stdout) == [{"cluster": "east", "n": "3"}, {"cluster": "west", "n": "3"}], done.stderr
        if window:
            # One folder listing found both levels; hours 8 (slack), 9, 10 of the plain layout and of each.
            assert f"{view}: 9 prefixes listed, 6 objects listed, 6 read" in done.stderr, done.stderr
            assert "cluster= folders (1 folder listing): east, west" in done.stderr, done.stderr


def test_with_cluster_only_its_folders_are_read(shared_archive: Path) -> None:
    done = run_cli("query", "-a", str(shared_archive), "--cluster", "west", *WINDOW, "--explain", "-o", "csv",
                   "select cluster, message from logs order by time")
    assert done.returncode == 0, done.stderr
    assert _csv(done.stdout) == [{"cluster": "west", "message": f"west says {n}"} for n in range(3)]
    assert "logs: 6 prefixes listed, 3 objects listed, 3 read" in done.stderr, done.stderr


@pytest.mark.parametrize("cluster", [None, "east"])
def test_timeline_finds_partitioned_archives(shared_archive: Path, cluster: str | None) -> None:
    args = ["--cluster", cluster] if cluster else []
    done = run_cli("timeline", "deploy/web", "-n", "shop", "-a", str(shared_archive), *args, *WINDOW, "-o", "csv")
    assert done.returncode == 0, done.stderr
    rows = _csv(done.stdout)
    clusters = ["east"] if cluster else ["east", "west"]
    assert sorted({(r["cluster"], r["source"]) for r in rows}) == sorted(
        (c, s) for c in clusters for s in ("event", "log"))
    assert len(rows) == 6 * len(clusters)
    assert all(r["pod_uid"].startswith(f"{r['cluster']}-pod-") for r in rows)


async def _compact(settings: Settings) -> CompactionReport:
    store = open_archive(settings)
    try:
        return await compact_archive(store, settings, now=START + dt.timedelta(days=1))
    finally:
        await store.close()


def test_compaction_keeps_the_level_and_the_cluster_column(shared_archive: Path) -> None:
    settings = Settings.model_validate({"sink": {"file": {"dir": str(shared_archive)}},
                                        "state": {"dir": str(shared_archive.parent / "compactor")}})
    report = asyncio.run(_compact(settings))
    # Hour 9 of each cluster and stream holds two batches (compacted); hour 10's single one stays.
    assert report.sources == 8 and report.parts == 4
    assert {p.relative_to(shared_archive).parts[:2] for p in shared_archive.rglob("*.parquet") if "~compacted" in p.parts} \
        == {(s, f"cluster={c}") for s in ("events", "logs") for c in ("east", "west")}
    for view in ("events", "logs"):
        done = run_cli("query", "-a", str(shared_archive), *WINDOW, "-o", "csv",
                       f"select cluster, count(*) n from {view} group by 1 order by 1")
        assert _csv(done.stdout) == [{"cluster": "east", "n": "3"}, {"cluster": "west", "n": "3"}], done.stderr


def test_archives_from_before_the_field_have_a_null_cluster(tmp_path: Path) -> None:
    """Objects written without a name (events NDJSON, logs NDJSON, logs Parquet without the
    column, as earlier versions wrote it) are read with ``cluster`` NULL, beside named ones."""
    root = tmp_path / "archive"
    hour = "dt=2026-02-01/hour=09"
    old = Settings()
    chunks = [_log_chunk("old", 0)]
    objects = {
        f"events/{hour}/old-1-3.ndjson.gz": make_encoder(old.encoding).encode_dicts(_events("old")),
        f"events/{hour}/new-1-3.ndjson.gz": make_encoder(old.encoding, cluster="east").encode_dicts(_events("new")),
        f"logs/{hour}/old-1-1.ndjson.gz": make_log_encoder(old).encode(
            [Record(data={}, chunk=chunks[0], sort_key=chunks[0].sort_key, position=1)]),
    }
    table = batch_table(chunks).drop_columns(["cluster"])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    objects[f"logs/{hour}/older-1-1.parquet"] = sink.getvalue().to_pybytes()
    for key, payload in objects.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(payload)
    events = run_cli("query", "-a", str(root), "-o", "csv",
                     "select coalesce(cluster, 'NULL') cluster, count(*) n from events group by 1 order by 1")
    assert _csv(events.stdout) == [{"cluster": "NULL", "n": "3"}, {"cluster": "east", "n": "3"}], events.stderr
    logs = run_cli("query", "-a", str(root), "-o", "csv", "select count(*) n from logs where cluster is null")
    assert _csv(logs.stdout) == [{"n": "2"}], logs.stderr


def _agent_config(tmp_path: Path, archive: Path, cluster: dict[str, Any]) -> Path:
    config = tmp_path / "agent.yaml"
    config.write_text(json.dumps(  # YAML is a superset of JSON
        {"cluster": cluster, "sink": {"file": {"dir": str(archive)}}}))
    return config


def test_config_of_a_partitioned_agent_reads_its_own_cluster(shared_archive: Path, tmp_path: Path) -> None:
    config = _agent_config(tmp_path, shared_archive, {"name": "west", "partition": True})
    sql = "select cluster, count(*) n from events group by 1 order by 1"
    own = run_cli("query", "-c", str(config), *WINDOW, "--explain", "-o", "csv", sql)
    assert own.returncode == 0, own.stderr
    assert _csv(own.stdout) == [{"cluster": "west", "n": "3"}]
    assert "cluster: west" in own.stderr, own.stderr
    other = run_cli("query", "-c", str(config), "--cluster", "east", *WINDOW, "-o", "csv", sql)
    assert _csv(other.stdout) == [{"cluster": "east", "n": "3"}], other.stderr
    every = run_cli("query", "-c", str(config), "--all-clusters", *WINDOW, "-o", "csv", sql)
    assert _csv(every.stdout) == [{"cluster": "east", "n": "3"}, {"cluster": "west", "n": "3"}], every.stderr
    both = run_cli("query", "-c", str(config), "--all-clusters", "--cluster", "east", "-o", "csv", sql)
    assert both.returncode == 2 and "not both" in both.stderr


def test_config_without_the_partition_level_reads_every_row(shared_archive: Path, tmp_path: Path) -> None:
    """No default filter then: an archive one cluster writes keeps its pre-field (NULL) rows."""
    config = _agent_config(tmp_path, shared_archive, {"name": "west"})
    done = run_cli("query", "-c", str(config), *WINDOW, "-o", "csv",
                   "select cluster, count(*) n from events group by 1 order by 1")
    assert _csv(done.stdout) == [{"cluster": "east", "n": "3"}, {"cluster": "west", "n": "3"}], done.stderr
