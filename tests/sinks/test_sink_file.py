"""The file sink: atomic, durable, idempotent puts; errors classified; disk full is retryable.

The disk-full and read-only cases mount a small tmpfs (needs root or CAP_SYS_ADMIN); they are
skipped, saying so, where mounting is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestream.config.settings import FileSinkSettings, SinkSettings
from kubestream.errors import SinkFatalError, SinkRetryableError
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.spool import Spool
from kubestream.sinks.base import Sink
from kubestream.sinks.file import FileSink
from kubestream.state.store import StateStore


def spool_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "spool" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def files_under(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


@contextlib.contextmanager
def tmpfs(mountpoint: Path, options: str) -> Iterator[Path]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_file_sink_implements_the_sink_protocol(tmp_path: Path) -> None:
    assert isinstance(FileSink(FileSinkSettings(dir=tmp_path)), Sink)


async def test_put_stores_the_object_under_its_key(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sink = FileSink(FileSinkSettings(dir=out))
    await sink.check()
    source = spool_file(tmp_path, "a.batch", b"hello")
    await sink.put("p/events/dt=2024-05-01/hour=10/u-1-2.ndjson", source, 5)
    assert files_under(out) == ["p/events/dt=2024-05-01/hour=10/u-1-2.ndjson"]
    assert (out / "p/events/dt=2024-05-01/hour=10/u-1-2.ndjson").read_bytes() == b"hello"
    assert source.read_bytes() == b"hello"  # the spool's copy is untouched until the spool removes it


async def test_replaying_a_put_overwrites_itself(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sink = FileSink(FileSinkSettings(dir=out))
    source = spool_file(tmp_path, "a.batch", b"batch")
    for _ in range(3):
        await sink.put("k/obj", source, 5)
    assert files_under(out) == ["k/obj"]  # one object, no temporary files left behind
    replacement = spool_file(tmp_path, "b.batch", b"other bytes")
    await sink.put("k/obj", replacement, 11)
    assert files_under(out) == ["k/obj"]
    assert (out / "k/obj").read_bytes() == b"other bytes"


async def test_keys_escaping_the_directory_are_refused(tmp_path: Path) -> None:
    sink = FileSink(FileSinkSettings(dir=tmp_path / "out"))
    source = spool_file(tmp_path, "a.batch", b"x")
    for key in ("../escape", "/abs", "a/../../b", ""):
        with pytest.raises(SinkFatalError):
            await sink.put(key, source, 1)


async def test_size_mismatch_is_fatal(tmp_path: Path) -> None:
    sink = FileSink(FileSinkSettings(dir=tmp_path / "out"))
    with pytest.raises(SinkFatalError, match="expected 99"):
        await sink.put("k", spool_file(tmp_path, "a.batch", b"x"), 99)
    assert files_under(tmp_path / "out") == []


async def test_check_fails_with_one_clear_line_when_the_directory_cannot_exist(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    sink = FileSink(FileSinkSettings(dir=tmp_path / "a-file" / "out"))
    with pytest.raises(SinkFatalError, match="not writable") as info:
        await sink.check()
    assert "\n" not in str(info.value)


async def test_sinks_in_one_process_over_one_directory_check_in_parallel(tmp_path: Path) -> None:
    # The demo runs the events collector and the node agent in one process on one archive
    # folder; a probe name shared by the two checks let one delete the other's probe (ENOENT).
    sinks = [FileSink(FileSinkSettings(dir=tmp_path / "out")) for _ in range(8)]
    for _ in range(25):
        await asyncio.gather(*(sink.check() for sink in sinks))
    assert files_under(tmp_path / "out") == []


async def test_read_only_destination_is_fatal(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=1m") as mount:
        sink = FileSink(FileSinkSettings(dir=mount / "out"))
        with pytest.raises(SinkFatalError, match="Read-only"):
            await sink.check()
        with pytest.raises(SinkFatalError):
            await sink.put("k", spool_file(tmp_path, "a.batch", b"x"), 1)


async def test_disk_full_is_retryable_and_delivery_completes_once_space_frees(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=256k") as mount:
        filler = mount / "filler"
        filler.write_bytes(b"\0" * (200 * 1024))
        sink = FileSink(FileSinkSettings(dir=mount / "out"))
        big = spool_file(tmp_path, "big.batch", b"z" * (100 * 1024))
        with pytest.raises(SinkRetryableError, match="No space left"):
            await sink.put("k/big", big, big.stat().st_size)
        assert files_under(mount / "out") == []  # the partial copy was cleaned up

        # Through the delivery worker: it keeps retrying, and delivers once space is freed.
        state = StateStore(tmp_path / "state.db")
        try:
            metrics = Metrics()
            spool = Spool(tmp_path / "spool2", state, max_bytes=1 << 20, metrics=metrics)
            entry = await spool.commit("k/big", big.read_bytes(), [], stream="events")
            delivery = Delivery(spool, sink, settings=SinkSettings(retry_initial_s=0.01, retry_max_s=0.05),
                                metrics=metrics)
            worker = asyncio.create_task(delivery.run())
            await asyncio.sleep(0.3)
            assert not worker.done() and spool.pending() == [entry]
            errors = metrics.registry.get_sample_value(
                "kubestream_sink_errors_total", {"sink": "file", "kind": "retryable"})
            assert errors is not None and errors >= 2
            filler.unlink()
            assert await spool.wait_empty(5.0)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            assert (mount / "out" / "k/big").read_bytes() == big.read_bytes()
            assert files_under(mount / "out") == ["k/big"]
        finally:
            state.close()
