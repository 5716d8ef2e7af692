"""Every line the simulated node writes reaches the sink exactly once, with its pod uid and
container, across rotation, copytruncate, gzip, short-lived pods, name reuse, deletion with unread
data, P/F partial lines, 1 MiB lines and invalid UTF-8 — and across restarts of the source."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import time
from pathlib import Path

import pytest
from logs_source_support import (
    Rig,
    assert_exactly_once,
    eventually,
    finish_and_assert_exactly_once,
    make_settings,
    make_writer,
    pod,
    read_archive,
    spool_has_entries,
)

from kubestream.sim.nodes.logfiles import extract_seqs
from kubestream.sources.logs import checkpoint
from kubestream.sources.logs.source import LogsSource
from kubestream.state.store import StateStore


@pytest.mark.parametrize("log_format", ["cri", "docker"])
async def test_mixed_lines_of_several_containers_exactly_once_with_path_metadata(tmp_path: Path,
                                                                                 log_format: str) -> None:
    writer = make_writer(tmp_path, format=log_format)
    pods = [pod("web-0", containers=("app", "sidecar")), pod("api-1", namespace="shop")]
    writer.follow(pods)
    writer.write_burst(150)  # before the source starts: read from the beginning
    writer.write_burst(2, kinds=["long"])
    rig = Rig(tmp_path, make_settings(tmp_path))
    await rig.start()
    try:
        writer.write_burst(150)
        writer.write_burst(6, kinds=["invalid_utf8", "stack", "json"])
        got = await rig.wait_for(writer.ledger.keys())
    finally:
        await rig.stop()
        writer.stop()
    assert_exactly_once(got, writer.ledger.keys())
    by_seq = {line.seq: line for line in writer.ledger.lines()}
    records = read_archive(tmp_path / "out")
    for record in records:
        line = by_seq[extract_seqs(record.get("message", ""))[0]]
        k8s = record["kubernetes"]
        assert (k8s["namespace"], k8s["pod_name"], k8s["pod_uid"], k8s["container_name"]) == (
            line.namespace, line.pod, line.pod_uid, line.container)
        assert k8s["enrichment"] == "none" and k8s["node_name"] == "node-a"
        assert record["stream"] == line.stream and record["kind"] == "log"
        if line.kind == "long":  # 1 MiB+ message merged back from its 16 KiB P parts
            assert len(record["message"]) == line.size
    assert sum(1 for r in records if "\ufffd" in r["message"]) >= 1


@pytest.mark.parametrize("log_format", ["cri", "docker"])
async def test_rename_rotation_and_gzip_while_tailing(tmp_path: Path, log_format: str) -> None:
    writer = make_writer(tmp_path, format=log_format, rotate_bytes=8 * 1024, max_files=50,
                         kind_weights={"plain": 1.0})
    writer.follow([pod("web-0"), pod("web-1")])
    for _ in range(10):  # rotated (and gzipped) files exist before the source starts
        writer.write_burst(20)
    rig = Rig(tmp_path, make_settings(tmp_path))
    await rig.start()
    try:
        for _ in range(30):
            writer.write_burst(20)
            await asyncio.sleep(0.01)
        got = await rig.wait_for(writer.ledger.keys())
    finally:
        await rig.stop()
        writer.stop()
    names = [p.name for p in (tmp_path / "pods").rglob("*.gz")]
    assert len(names) >= 4
    assert_exactly_once(got, writer.ledger.keys())


async def test_copytruncate_hands_over_to_the_copy(tmp_path: Path) -> None:
    writer = make_writer(tmp_path, rotation="copytruncate", compress=False, kind_weights={"plain": 1.0})
    p = pod("web-0")
    writer.follow([p])
    uid = p["metadata"]["uid"]
    rig = Rig(tmp_path, make_settings(tmp_path))
    await rig.start()
    try:
        for round_ in range(6):
            writer.write_burst(40)
            if round_ % 2:
                await asyncio.sleep(0.05)  # sometimes the source is at the end, sometimes not
            writer.rotate(uid, "app")
        writer.write_burst(20)
        got = await rig.wait_for(writer.ledger.keys())
    finally:
        await rig.stop()
        writer.stop()
    assert_exactly_once(got, writer.ledger.keys())


async def test_short_lived_pods_and_deleted_directories_with_unread_data(tmp_path: Path) -> None:
    writer = make_writer(tmp_path, remove_after_s=0.0, kind_weights={"plain": 0.5, "long": 0.5})
    rig = Rig(tmp_path, make_settings(tmp_path, read_chunk_bytes=64 * 1024))
    await rig.start()
    try:
        for i in range(6):
            short = pod(f"job-{i}")
            writer.follow([short])
            writer.write_burst(8)  # several MiB: far more than one read
            uid = short["metadata"]["uid"]
            await eventually(lambda uid=uid: any(uid in str(t.path) for t in rig.source.files.tailers())
                             if rig.source else False)
            writer.follow([])  # the pod is gone ...
            writer.collect_garbage()  # ... and so is its directory, with most lines unread
            assert not any((tmp_path / "pods").iterdir())
        got = await rig.wait_for(writer.ledger.keys(), within=40)
    finally:
        await rig.stop()
        writer.stop()
    assert_exactly_once(got, writer.ledger.keys())


async def test_statefulset_name_reuse_never_mixes_the_two_pods(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)
    first, second = pod("web-0"), pod("web-0")
    writer.follow([first])
    writer.write_burst(60)
    writer.follow([])
    writer.follow([second])  # same name, new uid, while the old directory is still there
    writer.write_burst(60)
    rig = Rig(tmp_path, make_settings(tmp_path))
    await rig.start()
    got = await finish_and_assert_exactly_once(rig, writer)  # the key holds the pod uid from the path
    assert {k[0] for k in got} == {first["metadata"]["uid"], second["metadata"]["uid"]}


async def test_restarts_resume_where_the_committed_batches_end(tmp_path: Path) -> None:
    writer = make_writer(tmp_path, rotate_bytes=16 * 1024, max_files=1000, kind_weights={"plain": 0.9, "long": 0.1})
    writer.follow([pod("web-0"), pod("web-1", containers=("a", "b"))])
    settings = make_settings(tmp_path)
    for _ in range(4):
        rig = Rig(tmp_path, settings)
        await rig.start()
        writer.write_burst(120)
        await asyncio.sleep(0.15)
        await rig.stop()  # stops mid-way: some lines read, some not; open batch committed
        writer.write_burst(40)  # written while the source is down (and rotated meanwhile)
    rig = Rig(tmp_path, settings)
    await rig.start()
    await finish_and_assert_exactly_once(rig, writer)


async def test_a_gzipped_file_is_resumed_inside_the_gzip_stream(tmp_path: Path) -> None:
    writer = make_writer(tmp_path, rotate_bytes=1 << 30, kind_weights={"plain": 1.0})
    p = pod("web-0")
    writer.follow([p])
    uid = p["metadata"]["uid"]
    writer.write_burst(400)
    settings = make_settings(tmp_path, batch=10, read_chunk_bytes=4096)
    # A full spool and no delivery: the source pauses after the first batches, mid-file.
    rig = Rig(tmp_path, settings, spool_max_bytes=1, deliver=False)
    await rig.start()
    await eventually(lambda: spool_has_entries(rig))
    await asyncio.sleep(0.2)
    await rig.stop()
    live = next((tmp_path / "pods").rglob("0.log"))
    state = StateStore(settings.state.dir / "state.db")
    committed = list(checkpoint.load(state).offsets.values())
    state.close()
    assert len(committed) == 1 and 0 < committed[0] < live.stat().st_size
    rotated = writer.rotate(uid, "app")
    writer.write_burst(30)
    gz = rotated.with_name(rotated.name + ".gz")
    with rotated.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    rotated.unlink()  # what kubelet's next rotation does to it
    rig = Rig(tmp_path, settings)
    await rig.start()
    await finish_and_assert_exactly_once(rig, writer)


async def _offsets_at_rest(source: LogsSource, within: float) -> int:
    """The sum of the tailers' offsets once it has not moved for 0.3 s."""
    deadline = time.monotonic() + within
    last = -1
    while time.monotonic() < deadline:
        now = sum(t.offset for t in source.files.tailers())
        if now == last:
            return now
        last = now
        await asyncio.sleep(0.3)
    raise AssertionError(f"the source kept reading for {within} s with a full spool")


async def test_a_full_spool_pauses_reading_and_loses_nothing(tmp_path: Path) -> None:
    writer = make_writer(tmp_path, kind_weights={"plain": 0.95, "long": 0.05})
    writer.follow([pod("web-0"), pod("web-1")])
    writer.write_burst(600)
    rig = Rig(tmp_path, make_settings(tmp_path, batch=20, read_chunk_bytes=8192), spool_max_bytes=1, deliver=False)
    source = await rig.start()
    try:
        await eventually(lambda: spool_has_entries(rig))
        # The open batch still fills (a long line is read in many chunks, slowly on a loaded
        # machine); once it is full the source must stop reading and stay stopped.
        read_before = await _offsets_at_rest(source, within=15.0)
        await asyncio.sleep(0.5)
        # Paused: nothing more read, at most one open batch held in memory.
        assert sum(t.offset for t in source.files.tailers()) == read_before
        assert rig.pipeline is not None and rig.pipeline.open_records <= 20
        assert not rig.keys()
        rig.start_delivery()
        got = await rig.wait_for(writer.ledger.keys())
    finally:
        await rig.stop()
        writer.stop()
    assert_exactly_once(got, writer.ledger.keys())
    assert (rig.metrics.registry.get_sample_value(
        "kubestream_backpressure_seconds_total", {"source": "logs"}) or 0) > 0.3
