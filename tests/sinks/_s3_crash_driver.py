"""Crash-test driver for the S3 path: numbered records through Pipeline → Spool → Delivery →
S3Sink into a running S3 server, meant to be SIGKILLed at random moments and restarted.

    python _s3_crash_driver.py STATE_DIR ENDPOINT BUCKET TOTAL

The toy source's position table holds the last number committed; a restart resumes after it.
Prints ``started`` once recovery is done and exits 0 once records 1..TOTAL are all delivered.
Batches are a few tens of KiB so that a random kill often lands in the middle of an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from kubestream.config.settings import BatchSettings, EncodingSettings, S3SinkSettings, Settings, SinkSettings
from kubestream.model import Record
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.spool import Spool
from kubestream.sinks.s3 import S3Sink
from kubestream.state.store import StateStore

STREAM = "toy"
ENCODING = EncodingSettings(format="ndjson", compression="gzip")
TOY_SCHEMA = "CREATE TABLE IF NOT EXISTS toy_position (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)"


@dataclass(frozen=True, slots=True)
class SetPosition:
    n: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO toy_position (id, last) VALUES (1, ?)"
                     " ON CONFLICT(id) DO UPDATE SET last = max(last, excluded.last)", (self.n,))


def make_settings(endpoint: str, bucket: str) -> Settings:
    s3 = S3SinkSettings(bucket=bucket, endpoint_url=endpoint, region="us-east-1",
                        access_key_id=SecretStr("testing"), secret_access_key=SecretStr("testing"))
    return Settings(
        batch=BatchSettings(max_records=25, max_age_s=0.02),
        encoding=ENCODING,
        sink=SinkSettings(type="s3", prefix="archive", stream_uid=STREAM, s3=s3,
                          retry_initial_s=0.01, retry_max_s=0.05),
    )


async def run(state_dir: Path, endpoint: str, bucket: str, total: int) -> bool:
    settings = make_settings(endpoint, bucket)
    state = StateStore(state_dir / "state.db")
    try:
        state.register_schema(TOY_SCHEMA)
        spool = Spool(state_dir / "spool", state, max_bytes=256 * 1024)
        spool.recover()
        sink = S3Sink(settings.sink.s3, prefix=settings.sink.prefix)
        row = state.conn.execute("SELECT last FROM toy_position WHERE id = 1").fetchone()
        start = 0 if row is None else int(row[0])
        print("started", start, flush=True)
        pipeline = Pipeline(STREAM, settings, state, spool)
        delivery = Delivery(spool, sink, settings=settings.sink)
        tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(delivery.run())]
        for n in range(start + 1, total + 1):
            # Random (seeded by n) padding resists gzip: batches of ~25 KiB take a while to upload.
            pad = random.Random(n).randbytes(1000).hex()
            await pipeline.put(Record(data={"n": n, "pad": pad}, sort_key=float(n),
                                      position=n, checkpoint=SetPosition(n)))
        await pipeline.flush()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        drained = await delivery.drain(60.0)
        await sink.close()
        return drained
    finally:
        state.close()


def main() -> int:
    state_dir, endpoint, bucket, total = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    return 0 if asyncio.run(run(state_dir, endpoint, bucket, total)) else 1


if __name__ == "__main__":
    sys.exit(main())
