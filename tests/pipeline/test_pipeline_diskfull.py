"""A full spool disk pauses the pipeline (the batch stays in memory) instead of losing it.

Mounts a small tmpfs (needs root or CAP_SYS_ADMIN); skipped, saying so, where that is refused.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestream.config.settings import BatchSettings, EncodingSettings, Settings
from kubestream.model import Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.spool import Spool
from kubestream.state.store import StateStore


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_spool_disk_full_is_waited_out_without_loss(tmp_path: Path, small_disk: Path) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (120 * 1024))
    state = StateStore(tmp_path / "state.db")  # the database stays on a roomy disk
    try:
        spool = Spool(small_disk / "spool", state, max_bytes=1 << 20)
        settings = Settings(batch=BatchSettings(max_records=50), encoding=EncodingSettings(compression="none"))
        pipeline = Pipeline("logs", settings, state, spool)
        noise = "x" * 400  # ~20 KB per batch: more than the disk has left

        async def produce() -> None:
            for p in range(1, 51):
                await pipeline.put(Record(data={"p": p, "line": noise}, sort_key=p, position=p))

        producer = asyncio.create_task(produce())
        await asyncio.sleep(0.4)
        assert not producer.done(), "the pipeline should be waiting for disk space"
        assert spool.pending() == []
        filler.unlink()
        await asyncio.wait_for(producer, 10.0)
        (entry,) = spool.pending()
        decoded = make_encoder(settings.encoding).decode(entry.path.read_bytes())
        assert [r["p"] for r in decoded] == list(range(1, 51))
        assert [p.name for p in (small_disk / "spool").iterdir()] == [entry.path.name]  # no temp left
    finally:
        state.close()
