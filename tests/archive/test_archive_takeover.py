"""An HA takeover rebuilds the same export state from a compacted archive as from the original,
and from one caught between "manifest written" and "sources deleted"."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from bench.gen_archive import event_record

from kubestream.agent.takeover import RebuildResult, rebuild_from_archive
from kubestream.archive.compact import compact_archive
from kubestream.archive.store import open_archive
from kubestream.config.settings import Settings
from kubestream.model import Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.naming import batch_key
from kubestream.pipeline.spool import Spool
from kubestream.sinks.file import FileSink
from kubestream.sources.event_state import EventState, Watermark
from kubestream.state.store import StateStore


def _write_archive(root: Path, settings: Settings, now: dt.datetime) -> None:
    """Events of the two last hours; each uid's count grows across batches (and partitions)."""
    codec = make_encoder(settings.encoding)
    hour = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    for batch in range(12):
        when = hour + dt.timedelta(minutes=9 * batch)
        records = [event_record(uid, when, count=batch + 1) for uid in range(batch % 4, 40, 3)]
        for r in records:
            r["event"]["resource_version"] = 1000 * batch + int(r["event"]["uid"][-4:])
        key = batch_key(prefix="", stream="events", stream_uid="kubestream", timestamp=when,
                        first_position=batch * 100, last_position=batch * 100 + 99, extension=codec.extension)
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(codec.encode_dicts(records))
    other = root / f"events/dt={hour:%Y-%m-%d}/hour={hour:%H}/someone-else-1-2.ndjson.gz"
    other.write_bytes(codec.encode_dicts([event_record(999, hour, count=77)]))


async def _rebuild(settings: Settings, tmp: Path, name: str) -> tuple[RebuildResult, dict[str, Watermark]]:
    store = StateStore(tmp / name)
    try:
        result = await rebuild_from_archive(settings, FileSink(settings.sink.file), store)
        return result, EventState(store).load().watermarks
    finally:
        store.close()


class Crash(Exception):
    pass


def _crash_after(step: str):  # type: ignore[no-untyped-def]
    def hook(name: str) -> None:
        if name == step:
            raise Crash(step)
    return hook


@pytest.mark.parametrize("stop_after", [None, "manifest-written", "sources-deleted"])
async def test_a_takeover_after_compaction_rebuilds_the_same_counts(tmp_path: Path, stop_after: str | None) -> None:
    root = tmp_path / "archive"
    settings = Settings.model_validate({"sink": {"file": {"dir": str(root)}}, "state": {"dir": str(tmp_path / "s")},
                                        "compaction": {"grace_s": 0}})
    now = dt.datetime.now(dt.UTC)
    _write_archive(root, settings, now)
    before, marks_before = await _rebuild(settings, tmp_path, "before.db")
    assert before.events == 40 and max(m.occurrences for m in marks_before.values()) == 12

    store = open_archive(settings)
    if stop_after is None:
        report = await compact_archive(store, settings)
        assert report.sources >= 2
    else:
        with pytest.raises(Crash):
            await compact_archive(store, settings, on_step=_crash_after(stop_after))
    after, marks_after = await _rebuild(settings, tmp_path, "after.db")

    assert marks_after == marks_before
    assert (after.records, after.events) == (before.records, before.events)
    if stop_after is None:
        assert after.objects < before.objects


async def _write_through_the_batcher(settings: Settings, tmp: Path, batches: list[list[dict[str, object]]]) -> None:
    """Batches named by the agent's own batcher and stored by the file sink (the keys a takeover
    must find are exactly the ones the pipeline writes)."""
    state = StateStore(tmp / f"writer-{settings.cluster.name}.db")
    sink = FileSink(settings.sink.file)
    try:
        spool = Spool(tmp / f"spool-{settings.cluster.name}", state, max_bytes=1 << 24)
        pipeline = Pipeline("events", settings, state, spool)
        position = 0
        for batch in batches:
            for record in batch:
                position += 1
                await pipeline.put(Record(data=record, sort_key=record["timestamp"], position=position))
            await pipeline.flush()
        for entry in spool.pending():
            await sink.put(entry.key, entry.path, entry.path.stat().st_size)
    finally:
        await sink.close()
        state.close()


async def test_a_takeover_with_the_cluster_level_reads_its_own_cluster(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    now = dt.datetime.now(dt.UTC)
    base = {"sink": {"file": {"dir": str(root)}}, "state": {"dir": str(tmp_path / "s")}}
    east = Settings.model_validate({**base, "cluster": {"name": "east", "partition": True}})
    west = Settings.model_validate({**base, "cluster": {"name": "west", "partition": True}})
    unlevelled = Settings.model_validate({**base, "cluster": {"name": "east"}})
    hour = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    times = [min(hour + dt.timedelta(minutes=25 * b), now) for b in range(4)]
    await _write_through_the_batcher(east, tmp_path, [[event_record(uid, t, count=b + 1) for uid in range(10)]
                                                      for b, t in enumerate(times)])
    # Another cluster in the same bucket, same stream uid, same event uids: not this one's.
    await _write_through_the_batcher(west, tmp_path, [[event_record(uid, times[0], count=50) for uid in range(10)]])
    assert {p.relative_to(root).parts[:2] for p in root.rglob("*.ndjson.gz")} == {
        ("events", "cluster=east"), ("events", "cluster=west")}

    result, marks = await _rebuild(east, tmp_path, "east.db")
    assert (result.objects, result.events) == (4, 10)
    assert {m.occurrences for m in marks.values()} == {4}

    # Without the level in its settings, a replica would find nothing: the layout is shared.
    nothing, _ = await _rebuild(unlevelled, tmp_path, "unlevelled.db")
    assert nothing.objects == 0
