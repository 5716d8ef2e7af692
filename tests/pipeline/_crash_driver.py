"""Crash-test driver: a toy source feeding numbered records through
Pipeline → Spool → Delivery → FileSink, meant to be SIGKILLed and restarted.

    python _crash_driver.py STATE_DIR OUT_DIR TOTAL

The toy source's position table holds the last number committed; a restart resumes after it.
The driver prints ``started`` once recovery is done and exits 0 once records 1..TOTAL are all
delivered.

Test hooks (environment):
  KS_CRASH_POINT  where the driver SIGKILLs itself:
                  ``register``   inside the commit transaction: spool file written, not registered
                  ``before_put`` an entry is registered, its upload has not started
                  ``after_put``  the sink stored the object, the spool entry is not removed yet
  KS_CRASH_AFTER  kill on the N-th time the point is reached (default 1)
  KS_SEED         seed of the pacing (pauses that let the max-age timer close batches)

The hooks live here, in a toy checkpoint and a wrapping Sink, not in the agent's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubestream.config.settings import (
    BatchSettings,
    EncodingSettings,
    FileSinkSettings,
    Settings,
    SinkSettings,
)
from kubestream.model import Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.spool import Spool
from kubestream.sinks.file import FileSink
from kubestream.state.store import StateStore

STREAM = "toy"
STREAM_UID = "toy"
PREFIX = "archive"
BASE_TIME = datetime(2024, 5, 1, 23, 58, 0, tzinfo=UTC)  # the records cross midnight
TOY_SCHEMA = "CREATE TABLE IF NOT EXISTS toy_position (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)"

_hits: dict[str, int] = {}


def crash_hook(point: str) -> None:
    """SIGKILL this process if ``point`` is the configured crash point, at its N-th visit."""
    if os.environ.get("KS_CRASH_POINT") != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] >= int(os.environ.get("KS_CRASH_AFTER", "1")):
        os.kill(os.getpid(), signal.SIGKILL)


def event_time(n: int) -> str:
    """Record n's event time: increasing overall, but locally out of position order."""
    return (BASE_TIME + timedelta(seconds=n - (n % 3) * 1.5)).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SetPosition:
    """The toy source's checkpoint: "record n is committed"."""

    n: int

    def apply(self, conn: sqlite3.Connection) -> None:
        crash_hook("register")
        conn.execute(
            "INSERT INTO toy_position (id, last) VALUES (1, ?)"
            " ON CONFLICT(id) DO UPDATE SET last = max(last, excluded.last)",
            (self.n,),
        )


def last_committed(state: StateStore) -> int:
    state.register_schema(TOY_SCHEMA)
    row = state.conn.execute("SELECT last FROM toy_position WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


class CrashingSink:
    """A real Sink: the FileSink, with crash points around each upload."""

    name = "file"

    def __init__(self, inner: FileSink) -> None:
        self._inner = inner

    async def check(self) -> None:
        await self._inner.check()

    async def put(self, key: str, source: Path, size: int) -> None:
        crash_hook("before_put")
        await self._inner.put(key, source, size)
        crash_hook("after_put")

    async def close(self) -> None:
        await self._inner.close()


def make_settings(out_dir: Path) -> Settings:
    return Settings(
        batch=BatchSettings(max_records=7, max_age_s=0.02),
        encoding=EncodingSettings(format="ndjson", compression="gzip"),
        sink=SinkSettings(
            prefix=PREFIX, stream_uid=STREAM_UID, file=FileSinkSettings(dir=out_dir),
            retry_initial_s=0.01, retry_max_s=0.05,
        ),
    )


async def run(state_dir: Path, out_dir: Path, total: int, rng: random.Random) -> bool:
    settings = make_settings(out_dir)
    state = StateStore(state_dir / "state.db")
    try:
        spool = Spool(state_dir / "spool", state, max_bytes=64 * 1024)
        spool.recover()
        sink = CrashingSink(FileSink(settings.sink.file))
        await sink.check()
        start = last_committed(state)
        print("started", start, flush=True)
        pipeline = Pipeline(STREAM, settings, state, spool)
        delivery = Delivery(spool, sink, settings=settings.sink)
        tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(delivery.run())]
        for n in range(start + 1, total + 1):
            await pipeline.put(Record(data={"n": n, "timestamp": event_time(n)}, sort_key=event_time(n),
                                      position=n, checkpoint=SetPosition(n)))
            if rng.random() < 0.15:
                await asyncio.sleep(rng.uniform(0.0, 0.04))  # lets the timer close odd-sized batches
        await pipeline.flush()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return await delivery.drain(30.0)
    finally:
        state.close()


def main() -> int:
    state_dir, out_dir, total = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(int(os.environ.get("KS_SEED", "0")))
    return 0 if asyncio.run(run(state_dir, out_dir, total, rng)) else 1


if __name__ == "__main__":
    sys.exit(main())
