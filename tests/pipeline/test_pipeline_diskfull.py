"""A full spool disk pauses the pipeline (the batch stays in memory) instead of losing it.

Mounts a small tmpfs (``small_disk`` in conftest.py: needs root or CAP_SYS_ADMIN); skipped,
saying so, where that is refused. The shutdown bound ends the wait: ``give_up`` fails the waiting
commit without registering anything or moving a position.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubestream.config.settings import BatchSettings, EncodingSettings, Settings
from kubestream.errors import StateError
from kubestream.model import Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.spool import Spool
from kubestream.state.store import StateStore


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


@dataclass(frozen=True)
class Position:
    position: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO applied (position) VALUES (?)", (self.position,))


async def test_give_up_ends_the_wait_for_disk_space_and_commits_nothing(tmp_path: Path, small_disk: Path) -> None:
    (small_disk / "spool").mkdir()
    (small_disk / "filler").write_bytes(b"\0" * (120 * 1024))
    state = StateStore(tmp_path / "state.db")
    try:
        state.register_schema("CREATE TABLE IF NOT EXISTS applied (position INTEGER)")
        spool = Spool(small_disk / "spool", state, max_bytes=1 << 20)
        settings = Settings(batch=BatchSettings(max_records=50), encoding=EncodingSettings(compression="none"))
        pipeline = Pipeline("logs", settings, state, spool)
        noise = "x" * 400

        async def produce() -> None:
            for p in range(1, 61):
                await pipeline.put(Record(data={"p": p, "line": noise}, sort_key=p, position=p,
                                          checkpoint=Position(p)))

        producer = asyncio.create_task(produce())
        await asyncio.sleep(0.4)
        # Shutdown cancels the source while its put() waits for the commit: that alone does not
        # end it (the commit is one atomic step the flush must follow) ...
        producer.cancel()
        await asyncio.sleep(0.3)
        assert not producer.done()
        # ... the shutdown bound running out does.
        pipeline.give_up()
        await asyncio.wait([producer], timeout=10.0)
        assert producer.cancelled()
        with pytest.raises(StateError, match="spool disk stayed full"):
            await pipeline.flush()  # records 51..60: never committed after the failed batch
        assert spool.pending() == []
        assert state.conn.execute("SELECT count(*) FROM applied").fetchone() == (0,)
        assert list((small_disk / "spool").iterdir()) == []
    finally:
        state.close()
