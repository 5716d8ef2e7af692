"""Compaction on a real file archive: the reader sees the ledger before, during and after."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from archive_support import LATER, assert_reader_sees_the_ledger, build_archive, file_settings

from kubestream.archive import catalog
from kubestream.archive.compact import compact_archive
from kubestream.archive.schema import EVENTS_SCHEMA, LOG_SCHEMA
from kubestream.archive.store import open_archive
from kubestream.pipeline.encode.logs_parquet import batch_table


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_compaction_keeps_every_record_once_and_cuts_the_object_count(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    ledger = build_archive(root)
    settings = file_settings(root, tmp_path / "state")
    store = open_archive(settings)
    await assert_reader_sees_the_ledger(store, ledger)
    before = len(_files(root))

    report = await compact_archive(store, settings, now=LATER)

    await assert_reader_sees_the_ledger(store, ledger)
    after = _files(root)
    assert report.sources == before and report.rows == len(ledger.events) + len(ledger.logs)
    # Per partition and stream: one Parquet file and its manifest, nothing else left.
    assert len(after) == 2 * report.parts and all(catalog.COMPACTED_DIR in p.parts for p in after)
    assert {p.suffix for p in after} == {".parquet", ".json"}

    again = await compact_archive(store, settings, now=LATER)
    assert again.sources == 0 and _files(root) == after
    await assert_reader_sees_the_ledger(store, ledger)


async def test_compacted_files_have_the_documented_schemas(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    build_archive(root, hours=1)
    originals = {p.name: p.read_bytes() for p in root.rglob("kubestream-*.ndjson.gz")}
    settings = file_settings(root, tmp_path / "state")
    await compact_archive(open_archive(settings), settings, now=LATER)

    parts = sorted(root.rglob("*-compacted-*.parquet"))
    logs = [pq.read_table(p) for p in parts if "logs" in p.parts]
    events = [pq.read_table(p) for p in parts if "events" in p.parts]
    agent_columns = batch_table([]).schema.names
    assert logs and all(t.schema.names == agent_columns for t in logs)
    assert events and all(t.schema.equals(EVENTS_SCHEMA, check_metadata=False) for t in events)
    # The record column is the record as it was written, typed columns parsed from it.
    written = [orjson.loads(line) for data in originals.values() for line in gzip.decompress(data).splitlines()]
    table = pq.read_table(next(p for p in parts if p.name.startswith("kubestream-")))
    assert sorted(map(orjson.loads, table.column("record").to_pylist()), key=str) == sorted(written, key=str)
    row = table.slice(0, 1).to_pylist()[0]
    record = orjson.loads(row["record"])
    assert row["event"]["reason"] == record["event"]["reason"]
    assert row["involved"]["name"] == record["involved"]["name"]
    assert row["kubernetes"]["owner_name"] == record["kubernetes"]["owner_name"]
    assert row["timestamp"].isoformat().startswith(record["timestamp"][:19])


def test_the_log_columns_are_the_agents_own() -> None:
    agent = batch_table([]).schema
    assert [(f.name, f.type) for f in LOG_SCHEMA] == [(f.name, f.type) for f in agent]


async def test_a_target_size_splits_a_partition_into_several_files(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    ledger = build_archive(root, hours=1, objects_per_hour=16, records=60)
    settings = file_settings(root, tmp_path / "state", target_file_bytes=64 * 1024, row_group_bytes=64 * 1024)
    store = open_archive(settings)
    report = await compact_archive(store, settings, now=LATER)
    assert report.parts > len({g.partition + g.stream_uid for g in report.groups})
    for part in root.rglob("*-compacted-*.parquet"):
        # Row groups of about row_group_bytes: memory is bounded by the settings, not the partition.
        assert pq.ParquetFile(part).metadata.num_row_groups >= 1
    await assert_reader_sees_the_ledger(store, ledger)


STEPS = ["source-read", "parts-written", "markers-written", "manifest-written", "sources-deleted",
         "markers-deleted", "finish-sources", "finish-markers"]


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", STEPS[:6])
async def test_a_crash_after_any_step_leaves_the_ledger_and_a_rerun_finishes(tmp_path: Path, step: str) -> None:
    root = tmp_path / "archive"
    ledger = build_archive(root, hours=1, objects_per_hour=4, records=5)
    settings = file_settings(root, tmp_path / "state")
    store = open_archive(settings)
    seen = 0

    def crash(name: str) -> None:
        nonlocal seen
        if name == step:
            seen += 1
            if seen == 2:  # the second time: in the middle of the run, not at its first partition
                raise Crash(name)

    with pytest.raises(Crash):
        await compact_archive(store, settings, now=LATER, on_step=crash)
    await assert_reader_sees_the_ledger(store, ledger)
    await compact_archive(store, settings, now=LATER)
    await assert_reader_sees_the_ledger(store, ledger)
    assert not [p for p in root.rglob("*") if p.is_file() and catalog.COMPACTED_DIR not in p.parts]


async def test_an_unreadable_object_stays_as_it_is_and_the_rest_is_compacted(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "archive"
    build_archive(root, hours=1, objects_per_hour=4, records=5)
    victim = sorted(root.rglob("kubestream-*.ndjson.gz"))[1]
    victim.write_bytes(b"\x1f\x8b not gzip at all")
    settings = file_settings(root, tmp_path / "state")
    report = await compact_archive(open_archive(settings), settings, now=LATER)
    assert report.unreadable == [victim.relative_to(root).as_posix()]
    assert victim.exists() and report.sources > 0
    assert sum(f"{victim.relative_to(root).as_posix()} is not readable" in r.getMessage() for r in caplog.records) == 1
    live = catalog.live_keys([p.relative_to(root).as_posix() for p in _files(root)])
    assert victim.relative_to(root).as_posix() in live


async def test_late_objects_after_a_compaction_are_compacted_by_the_next_run(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    first = tmp_path / "first"
    ledger = build_archive(first, hours=1, objects_per_hour=4, records=5)
    keys = sorted(ledger.keys)
    late = keys[len(keys) // 2:]
    for key in keys:
        if key not in late:
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(first / key, root / key)
    settings = file_settings(root, tmp_path / "state")
    store = open_archive(settings)
    await compact_archive(store, settings, now=LATER)
    for key in late:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(first / key, root / key)
    await assert_reader_sees_the_ledger(store, ledger)
    report = await compact_archive(store, settings, now=LATER)
    # The late ones (and a stream left alone the first time: one object is below min_objects).
    assert report.sources >= len(late)
    assert not [p for p in _files(root) if catalog.COMPACTED_DIR not in p.parts]
    await assert_reader_sees_the_ledger(store, ledger)
    assert len({m.parent for m in root.rglob(catalog.MANIFEST_NAME)}) > report.parts / 2


async def test_the_documented_query_of_compacted_events_runs(tmp_path: Path) -> None:
    import re

    import duckdb

    root = tmp_path / "archive"
    ledger = build_archive(root, hours=1, objects_per_hour=4, records=5)
    settings = file_settings(root, tmp_path / "state")
    await compact_archive(open_archive(settings), settings, now=LATER)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "schema.md").read_text()  # noqa: ASYNC240
    [query] = [q for q in re.findall(r"```sql\n(.*?)```", doc, re.S) if "archive/events/" in q]
    rows = duckdb.connect().sql(query.replace("'archive/", f"'{root}/").strip().rstrip(";")).fetchall()
    warnings = sum(1 for uid, _ in ledger.events if int(uid.rsplit("-", 1)[1]) % 3 == 0)
    assert sum(r[1] for r in rows) == warnings and {r[2] for r in rows} == {"web"}


async def test_log_lines_of_containers_with_different_metadata_compact_together(tmp_path: Path) -> None:
    """A batch mixing containers whose ``kubernetes`` blocks have different keys (one pod's
    namespace has annotations, another's not) compacts, and reads back with each line's own."""
    root = tmp_path / "archive"
    folder = root / "logs" / "dt=2024-05-01" / "hour=10"
    folder.mkdir(parents=True)
    written = []
    for n in range(3):
        lines = []
        for i in range(4):
            kube: dict[str, object] = {"namespace": "shop", "pod_name": f"p{i % 2}", "pod_uid": f"u{i % 2}"}
            if i % 2:
                kube["namespace_annotations"] = {"owner": "team@example.com"}
            lines.append({"kind": "log", "timestamp": f"2024-05-01T10:0{n}:0{i}.000000000Z", "stream": "stdout",
                          "message": f"line {n}-{i}", "file": {"path": f"/var/log/p{i % 2}.log", "offset": n * 10 + i},
                          "kubernetes": kube})
        written += lines
        (folder / f"node-0-{n * 4}-{n * 4 + 3}.ndjson.gz").write_bytes(
            gzip.compress(b"".join(orjson.dumps(line) + b"\n" for line in lines)))
    settings = file_settings(root, tmp_path / "state")
    report = await compact_archive(open_archive(settings), settings, now=LATER)
    assert report.sources == 3 and report.parts == 1 and not report.unreadable
    (part,) = root.rglob("*-compacted-*.parquet")
    rows = sorted(pq.read_table(part).to_pylist(), key=lambda r: r["file"]["offset"])
    assert [r["message"] for r in rows] == [w["message"] for w in sorted(written, key=lambda w: w["file"]["offset"])]
    annotations = {r["kubernetes"]["pod_uid"]: r["kubernetes"]["namespace_annotations"] for r in rows}
    assert annotations == {"u0": None, "u1": '{"owner":"team@example.com"}'}
