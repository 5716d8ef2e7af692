"""One SQL on every archive form: the agent's records re-encoded by the project's own codecs as
NDJSON+zstd, kubestream protobuf and k8stream protobuf, compacted by the real compactor, and
served from S3 (moto); ``--since/--until`` prune partitions before listing; a damaged object
costs one warning line, not the query."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import obstore
import orjson
from bench.gen_archive import Ledger, write_logs
from tests.query.conftest import AgentArchive, MotoServer, run_cli

from kubestream.archive.compact import compact_archive
from kubestream.archive.store import open_archive
from kubestream.config.settings import EncodingSettings, FileSinkSettings, Settings, SinkSettings
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.naming import batch_key

EVENTS_SQL = ("select event_uid, resource_version, time, namespace, reason, type, message, count, count_delta, "
              "involved_kind, involved_name, involved_uid, pod, pod_uid, container, node, workload_kind, "
              "workload_name, owner_chain, labels from events order by event_uid, resource_version")
LOGS_SQL = ("select time, pod_uid, pod, container, stream, message, file_path, file_offset, workload_name, labels "
            "from logs order by file_path, file_offset")


def _query(archive: str, sql: str, *extra: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    done = run_cli("query", "--archive", archive, "-o", "jsonl", *extra, sql, env=env)
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def _reencode(archive: AgentArchive, target: Path, encoding: EncodingSettings, *, per_object: int = 50) -> None:
    """The agent's event records, re-encoded with ``encoding`` in the agent's key layout."""
    codec = make_encoder(encoding)
    events = archive.events
    for start in range(0, len(events), per_object):
        batch = events[start:start + per_object]
        key = batch_key(prefix="", stream="events", stream_uid="re", first_position=start,
                        last_position=start + len(batch) - 1, extension=codec.extension,
                        timestamp=dt.datetime.fromisoformat(batch[0]["timestamp"].replace("Z", "+00:00")))
        path = target / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(codec.encode_dicts(batch))


def test_ndjson_zstd_and_kubestream_protobuf_give_the_same_rows(agent_archive: AgentArchive, tmp_path: Path) -> None:
    want = _query(str(agent_archive.root), EVENTS_SQL)
    assert len(want) == len(agent_archive.events)
    for name, encoding in (("zstd", EncodingSettings(compression="zstd")),
                           ("pb", EncodingSettings(format="protobuf", compression="gzip")),
                           ("pb-plain", EncodingSettings(format="protobuf", compression="none"))):
        _reencode(agent_archive, tmp_path / name, encoding)
        assert _query(str(tmp_path / name), EVENTS_SQL) == want, name


def test_k8stream_protobuf_fills_what_l9event_carries(agent_archive: AgentArchive, tmp_path: Path) -> None:
    _reencode(agent_archive, tmp_path / "k8s", EncodingSettings(format="protobuf", protobuf_message="k8stream"))
    got = _query(str(tmp_path / "k8s"), "select event_uid, time, namespace, reason, message, involved_kind, "
                                        "involved_name, pod, pod_uid, type, count_delta, labels['app'] app from events")
    assert len(got) == len(agent_archive.events)
    by_uid = Counter((r["event_uid"], r["reason"], r["involved_name"]) for r in got)
    assert by_uid == Counter((r["event"]["uid"], r["event"]["reason"], r["involved"]["name"]) for r in agent_archive.events)
    pods = [r for r in got if r["involved_kind"] == "Pod"]
    assert pods and all(r["pod"] == r["involved_name"] and r["pod_uid"] for r in pods)
    # L9Event has no type nor counts: NULL, not invented.
    assert all(r["type"] is None and r["count_delta"] is None for r in got)
    # Unix seconds: the time is the record's, to the second.
    first = agent_archive.events[0]
    match = next(r for r in got if r["event_uid"] == first["event"]["uid"])
    assert match["time"][:19] == first["timestamp"][:19]


def test_compacted_archive_answers_the_same_from_fewer_objects(agent_archive: AgentArchive, archive_copy: Path) -> None:
    before_events, before_logs = _query(str(archive_copy), EVENTS_SQL), _query(str(archive_copy), LOGS_SQL)
    settings = Settings(sink=SinkSettings(file=FileSinkSettings(dir=archive_copy)))
    store = open_archive(settings)
    report = asyncio.run(compact_archive(store, settings, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2)))
    assert report.parts and report.sources > report.parts
    assert list(archive_copy.rglob("*.parquet"))
    assert _query(str(archive_copy), EVENTS_SQL) == before_events
    assert _query(str(archive_copy), LOGS_SQL) == before_logs
    done = run_cli("query", "-a", str(archive_copy), "--explain", "-o", "csv", "select count(*) from logs")
    read = int(done.stderr.split("objects listed, ")[1].split(" read")[0])
    assert read < sum(1 for p in agent_archive.root.rglob("logs/**/*.ndjson.gz"))


def _hour_archive(root: Path, start: dt.datetime, hours: int) -> list[dict[str, Any]]:
    """One NDJSON.gz events object per hour, one record at hh:30."""
    codec = make_encoder(EncodingSettings())
    records = []
    for i in range(hours):
        when = start + dt.timedelta(hours=i, minutes=30)
        record = {"kind": "event", "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                  "event": {"uid": f"u{i}", "reason": "Tick", "count_delta": 1, "namespace": "ns"},
                  "involved": {"kind": "Pod", "name": f"p{i}", "uid": f"pod-{i}"}, "kubernetes": {}}
        key = batch_key(prefix="", stream="events", stream_uid="t", timestamp=when, first_position=i,
                        last_position=i, extension=codec.extension)
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(codec.encode_dicts([record]))
        records.append(record)
    return records


def test_since_until_prune_partitions_before_listing(tmp_path: Path) -> None:
    start = dt.datetime(2026, 1, 1, 0, tzinfo=dt.UTC)
    _hour_archive(tmp_path, start, 24)
    # Damage every object outside 10:00-12:00: reading any of them would log a warning.
    for path in tmp_path.rglob("*.ndjson.gz"):
        if not any(f"hour={h}" in str(path) for h in ("10", "11")):
            path.write_bytes(b"not gzip")
    done = run_cli("query", "-a", str(tmp_path), "--since", "2026-01-01T10:00:00Z", "--until",
                   "2026-01-01T12:00:00Z", "--explain", "-o", "csv", "select event_uid from events order by 1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["event_uid", "u10", "u11"]
    # Hours 09 (the batching slack before --since), 10 and 11: three prefixes, three objects.
    assert "events: 3 prefixes listed, 3 objects listed, 2 read" in done.stderr, done.stderr
    assert "skipped 1 undecodable" in done.stderr and "does not decode" in done.stderr
    # A window inside one hour lists that hour only and keeps only its rows.
    done = run_cli("query", "-a", str(tmp_path), "--since", "2026-01-01T10:20:00Z", "--until",
                   "2026-01-01T10:40:00Z", "--explain", "-o", "csv", "select event_uid from events")
    assert done.stdout.split() == ["event_uid", "u10"] and "1 prefixes listed" in done.stderr, done.stderr


def test_damaged_object_is_one_warning(tmp_path: Path) -> None:
    _hour_archive(tmp_path, dt.datetime(2026, 1, 1, 0, tzinfo=dt.UTC), 3)
    victim = sorted(tmp_path.rglob("*.ndjson.gz"))[1]
    victim.write_bytes(gzip.compress(b'{"kind": "event", "timestamp": 12, "event": "x"}\n{not json\n'))
    done = run_cli("query", "-a", str(tmp_path), "-o", "csv", "select count(*) n from events")
    assert done.returncode == 0 and done.stdout.split() == ["n", "2"]
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and victim.name in warnings[0] and "Traceback" not in done.stderr


def test_s3_archive_reads_like_the_directory(agent_archive: AgentArchive, moto: MotoServer) -> None:
    bucket = moto.create_bucket()
    store = moto.store(bucket)
    for path in agent_archive.root.rglob("*"):
        if path.is_file():
            obstore.put(store, f"prod/eu/{path.relative_to(agent_archive.root).as_posix()}", path.read_bytes())
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PATH": "/usr/bin:/bin",
           "HOME": str(agent_archive.root.parent)}
    url = f"s3://{bucket}/prod/eu"
    for sql in (EVENTS_SQL, LOGS_SQL):
        assert _query(url, sql, "--endpoint", moto.endpoint, "--region", "us-east-1", env=env) == \
            _query(str(agent_archive.root), sql)
    namespace = agent_archive.logs[0]["kubernetes"]["namespace"]
    from_s3 = run_cli("timeline", "-n", namespace, "-a", url, "--endpoint", moto.endpoint, "--since", "1d",
                      "-o", "csv", env=env)
    assert from_s3.returncode == 0, from_s3.stderr
    local = run_cli("timeline", "-n", namespace, "-a", str(agent_archive.root), "--since", "1d", "-o", "csv")
    assert from_s3.stdout == local.stdout and len(local.stdout.splitlines()) > 100


def test_the_agents_log_parquet_gives_the_rows_of_its_ndjson(tmp_path: Path) -> None:
    start = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    sql = ("select time, namespace, pod, pod_uid, container, node, stream, message, truncated, workload_kind, "
           "workload_name, labels, image, file_path, file_offset from logs order by file_path, file_offset")
    answers = []
    for parquet in (False, True):
        root = tmp_path / ("parquet" if parquet else "ndjson")
        ledger = Ledger()
        write_logs(root, ledger, start=start, hours=2, objects_per_hour=3, lines_per_object=10, parquet=parquet)
        assert bool(list(root.rglob("*.parquet"))) == parquet
        rows = _query(str(root), sql)
        assert {(r["file_path"], r["file_offset"]) for r in rows} == ledger.logs and len(rows) == len(ledger.logs)
        answers.append(rows)
    assert answers[0] == answers[1]
