"""End to end through the real pipeline (Pipeline → Spool → Delivery → S3Sink → proxy → moto)
while the S3 server misbehaves: errors for a while, or down altogether. Afterwards every record
is in the bucket exactly once, the spool drained in commit order, and while the server was
away the spool stayed under its bound because the producer was held back."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Fault, FaultProxy, MotoServer, s3_settings
from kubestream.config.settings import BatchSettings, EncodingSettings, Settings, SinkSettings
from kubestream.model import Record
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.spool import Spool
from kubestream.sinks.s3 import S3Sink
from kubestream.state.store import StateStore

STREAM = "toy"
MAX_RECORDS = 20
SPOOL_MAX_BYTES = 24 * 1024
ENCODING = EncodingSettings(format="ndjson", compression="none")
_NAME = re.compile(r"toy-(\d+)-(\d+)\.ndjson$")


@dataclass(frozen=True, slots=True)
class SetPosition:
    """The toy source's checkpoint, committed with the batch holding record ``n``."""

    n: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO toy_position (id, last) VALUES (1, ?)"
                     " ON CONFLICT(id) DO UPDATE SET last = max(last, excluded.last)", (self.n,))


@dataclass
class Outcome:
    numbers: list[int]
    delivered_order: list[int]
    max_spool_bytes: int
    max_batch_bytes: int
    produced_while_away: int
    backpressure_s: float
    retries: float


def _settings(endpoint: str, bucket: str) -> Settings:
    return Settings(
        batch=BatchSettings(max_records=MAX_RECORDS, max_age_s=0.05),
        encoding=ENCODING,
        sink=SinkSettings(type="s3", prefix="archive", stream_uid=STREAM, retry_initial_s=0.05, retry_max_s=0.3,
                          s3=s3_settings(endpoint, bucket, attempt_timeout_s=2.0)),
    )


async def _run(tmp_path: Path, proxy: FaultProxy, moto: MotoServer, bucket: str, total: int,
               misbehave: Callable[[], Awaitable[None]]) -> Outcome:
    settings = _settings(proxy.endpoint, bucket)
    metrics = Metrics()
    state = StateStore(tmp_path / "state.db")
    state.register_schema("CREATE TABLE IF NOT EXISTS toy_position (id INTEGER PRIMARY KEY, last INTEGER)")
    spool = Spool(tmp_path / "spool", state, max_bytes=SPOOL_MAX_BYTES, metrics=metrics)
    sink = S3Sink(settings.sink.s3, prefix=settings.sink.prefix, metrics=metrics)
    pipeline = Pipeline(STREAM, settings, state, spool, metrics=metrics)
    delivery = Delivery(spool, sink, settings=settings.sink, metrics=metrics)
    produced = 0
    peaks = {"spool": 0, "batch": 0}

    async def produce() -> None:
        nonlocal produced
        for n in range(1, total + 1):
            await pipeline.put(Record(data={"n": n, "pad": "x" * 200}, sort_key=float(n), position=n,
                                      checkpoint=SetPosition(n)))
            produced = n
            await asyncio.sleep(0.001)

    async def watch_spool() -> None:
        while True:
            peaks["spool"] = max(peaks["spool"], spool.size_bytes)
            peaks["batch"] = max([peaks["batch"], *(e.size for e in spool.pending())])
            await asyncio.sleep(0.005)

    tasks = [asyncio.create_task(t) for t in (pipeline.run(), delivery.run(), watch_spool())]
    producer = asyncio.create_task(produce())
    try:
        await asyncio.sleep(0.2)  # some batches flow normally first
        before = produced
        await misbehave()
        produced_while_away = produced - before
        await producer
        await pipeline.flush()
        assert await spool.wait_empty(60.0), "spool not drained"
    finally:
        for task in [*tasks, producer]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await sink.close()
        state.close()
    codec = make_encoder(ENCODING)
    numbers = [r["n"] for key in moto.keys(bucket, prefix="archive/toy") for r in codec.decode(moto.read(bucket, key))]
    order = [int(m[1]) for path in proxy.log.forwarded_puts if (m := _NAME.search(path))]
    return Outcome(
        numbers=numbers, delivered_order=order, max_spool_bytes=peaks["spool"], max_batch_bytes=peaks["batch"],
        produced_while_away=produced_while_away,
        backpressure_s=metrics.registry.get_sample_value("kubestream_backpressure_seconds_total",
                                                         {"source": STREAM}) or 0.0,
        retries=metrics.registry.get_sample_value("kubestream_sink_retries_total", {"sink": "s3"}) or 0.0,
    )


def _assert_exactly_once_in_order(outcome: Outcome, total: int) -> None:
    assert sorted(outcome.numbers) == list(range(1, total + 1)), "loss or duplicates in the bucket"
    assert outcome.delivered_order == sorted(outcome.delivered_order), "delivered out of commit order"
    assert len(set(outcome.delivered_order)) == len(outcome.delivered_order), "a batch was uploaded twice"


async def test_errors_for_a_while_then_everything_once(tmp_path: Path, fault_proxy: FaultProxy,
                                                       moto_server: MotoServer, bucket: str) -> None:
    async def errors() -> None:
        # Throttling waits at least THROTTLE_RETRY_AFTER_S per attempt: few of those keep it quick.
        for status, code, times in ((503, "SlowDown", 1), (500, "InternalError", 3), (503, "ServiceUnavailable", 1)):
            fault = Fault(status, code, remaining=times)
            fault_proxy.fault = fault
            await fault.exhausted.wait()

    outcome = await _run(tmp_path, fault_proxy, moto_server, bucket, 600, errors)
    _assert_exactly_once_in_order(outcome, 600)
    assert fault_proxy.log.faults_served == 5
    assert outcome.retries >= 5


async def _outage(tmp_path: Path, proxy: FaultProxy, moto: MotoServer, bucket: str, seconds: float) -> None:
    async def down() -> None:
        await proxy.go_down()
        await asyncio.sleep(seconds)
        await proxy.start()

    started = time.monotonic()
    outcome = await _run(tmp_path, proxy, moto, bucket, 1500, down)
    _assert_exactly_once_in_order(outcome, 1500)
    # Bounded memory and disk: the spool never exceeds its bound by more than the batch whose
    # commit crossed it, because the producer waits for room (backpressure).
    assert outcome.max_spool_bytes <= SPOOL_MAX_BYTES + outcome.max_batch_bytes
    capacity_records = (SPOOL_MAX_BYTES // outcome.max_batch_bytes + 2) * MAX_RECORDS
    assert outcome.produced_while_away <= capacity_records, outcome
    assert outcome.backpressure_s >= seconds * 0.5
    assert time.monotonic() - started < seconds + 30


async def test_server_down_5s_then_everything_once(tmp_path: Path, fault_proxy: FaultProxy,
                                                   moto_server: MotoServer, bucket: str) -> None:
    await _outage(tmp_path, fault_proxy, moto_server, bucket, 5.0)


@pytest.mark.soak
@pytest.mark.timeout(300)
async def test_server_down_60s_then_everything_once(tmp_path: Path, fault_proxy: FaultProxy,
                                                    moto_server: MotoServer, bucket: str) -> None:
    await _outage(tmp_path, fault_proxy, moto_server, bucket, 60.0)
