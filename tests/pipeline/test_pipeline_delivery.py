"""The delivery worker (order, retries, Retry-After, fatal errors) and backpressure on put."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestream.config.settings import BatchSettings, EncodingSettings, Settings, SinkSettings
from kubestream.errors import SinkFatalError, SinkRetryableError
from kubestream.model import Record
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.spool import Spool
from kubestream.state.store import StateStore

FAST_RETRY = SinkSettings(retry_initial_s=0.01, retry_max_s=0.02)


class MemorySink:
    """A real Sink: keeps objects in memory; fails on demand before storing anything."""

    name = "memory"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.order: list[str] = []
        self.attempts = 0
        self.failures: list[Exception] = []  # raised one per attempt, first to last
        self.gate = asyncio.Event()
        self.gate.set()

    async def check(self) -> None:
        return None

    async def put(self, key: str, source: Path, size: int) -> None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        if not self.gate.is_set():
            raise SinkRetryableError("destination unavailable")
        data = await asyncio.to_thread(source.read_bytes)
        assert len(data) == size
        self.objects[key] = data
        self.order.append(key)

    async def close(self) -> None:
        return None


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.db")
    yield s
    s.close()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_delivers_in_commit_order_and_retries_retryable_errors(tmp_path: Path, state: StateStore) -> None:
    metrics = Metrics()
    spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20, metrics=metrics)
    for i in range(5):
        await spool.commit(f"k{i}", f"payload {i}".encode(), [], stream="s")
    sink = MemorySink()
    sink.failures = [SinkRetryableError("503"), SinkRetryableError("503"), RuntimeError("sink bug")]
    delivery = Delivery(spool, sink, settings=FAST_RETRY, metrics=metrics)
    assert await delivery.drain(5.0)
    assert sink.order == [f"k{i}" for i in range(5)]
    assert sink.objects["k3"] == b"payload 3"
    assert sample(metrics, "kubestream_sink_errors_total", sink="memory", kind="retryable") == 2
    assert sample(metrics, "kubestream_sink_errors_total", sink="memory", kind="unexpected") == 1
    assert sample(metrics, "kubestream_sink_retries_total", sink="memory") == 3
    assert sample(metrics, "kubestream_batches_total", sink="memory", stream="s") == 5
    assert sample(metrics, "kubestream_spool_batches") == 0


async def test_retry_after_is_honoured(tmp_path: Path, state: StateStore) -> None:
    spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
    await spool.commit("k", b"x", [])
    sink = MemorySink()
    sink.failures = [SinkRetryableError("SlowDown", retry_after=0.3)]
    started = time.monotonic()
    assert await Delivery(spool, sink, settings=FAST_RETRY).drain(5.0)
    assert time.monotonic() - started >= 0.3


async def test_fatal_error_stops_the_worker_and_keeps_the_entry(tmp_path: Path, state: StateStore) -> None:
    metrics = Metrics()
    spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
    await spool.commit("k", b"x", [])
    sink = MemorySink()
    sink.failures = [SinkFatalError("AccessDenied")]
    with pytest.raises(SinkFatalError):
        await asyncio.wait_for(Delivery(spool, sink, settings=FAST_RETRY, metrics=metrics).run(), 5.0)
    assert [e.key for e in spool.pending()] == ["k"]
    assert sample(metrics, "kubestream_sink_errors_total", sink="memory", kind="fatal") == 1


async def test_drain_times_out_while_the_sink_keeps_failing(tmp_path: Path, state: StateStore) -> None:
    spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
    await spool.commit("k", b"x", [])
    sink = MemorySink()
    sink.gate.clear()
    assert not await Delivery(spool, sink, settings=FAST_RETRY).drain(0.2)
    assert [e.key for e in spool.pending()] == ["k"]


async def test_full_spool_pauses_put_until_the_sink_recovers_and_nothing_is_lost(
    tmp_path: Path, state: StateStore
) -> None:
    metrics = Metrics()
    settings = Settings(batch=BatchSettings(max_records=2), encoding=EncodingSettings(compression="none"),
                        sink=FAST_RETRY)
    # One batch fills the spool: the next put must wait for a delivery.
    spool = Spool(tmp_path / "spool", state, max_bytes=10, metrics=metrics)
    pipeline = Pipeline("events", settings, state, spool, metrics=metrics)
    sink = MemorySink()
    sink.gate.clear()  # the destination is down
    delivery_task = asyncio.create_task(Delivery(spool, sink, settings=FAST_RETRY, metrics=metrics).run())

    async def produce() -> None:
        for p in range(1, 11):
            await pipeline.put(Record(data={"p": p}, sort_key=p, position=p))

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.3)
    assert not producer.done(), "put did not wait while the spool was full"
    assert spool.is_full and len(spool.pending()) == 1
    assert sink.attempts > 1

    sink.gate.set()  # the destination is back
    await asyncio.wait_for(producer, 5.0)
    await pipeline.flush()
    assert await spool.wait_empty(5.0)
    delivery_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await delivery_task

    codec = make_encoder(settings.encoding)
    delivered = [r["p"] for key in sink.order for r in codec.decode(sink.objects[key])]
    assert delivered == list(range(1, 11))
    assert sample(metrics, "kubestream_backpressure_seconds_total", source="events") >= 0.25
    assert sample(metrics, "kubestream_sink_errors_total", sink="memory", kind="retryable") >= 1
