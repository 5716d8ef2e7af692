"""The real logs source → pipeline (with ``OtlpEncoder``) → spool → delivery → ``OtlpSink``:
every line of a container's log file reaches the receiver with its pod's resource, and reading
the same file again from scratch (a lost spool, a new node agent state) gives the same ids."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from tests.logs.logs_source_support import NODE, container_log_path, make_settings, write_cri
from tests.outputs.outputs_support import Receiver, attrs, decode_request

from kubestream.config.outputs import OtlpSinkSettings
from kubestream.config.settings import StateSettings
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode.otlp import OtlpEncoder
from kubestream.pipeline.spool import Spool
from kubestream.sinks.otlp import OtlpSink
from kubestream.sources.logs.source import LogsSource
from kubestream.state.store import StateStore

LINES = 120


async def _run_agent(tmp: Path, state_dir: Path, receiver: Receiver) -> None:
    settings = make_settings(tmp, batch=50).model_copy(update={"state": StateSettings(dir=state_dir)})
    metrics = Metrics()
    state = StateStore(settings.state.dir / "state.db")
    spool = Spool(settings.state.dir / "spool", state, max_bytes=64 << 20, metrics=metrics)
    otlp = OtlpSinkSettings(endpoint=f"{receiver.url}/v1/logs")
    pipeline = Pipeline("logs", settings, state, spool, metrics=metrics,
                        encoder=OtlpEncoder(otlp, stream="logs", cluster="c1"))
    sink = OtlpSink(otlp, metrics=metrics)
    delivery = Delivery(spool, sink, settings=settings.sink, metrics=metrics)
    source = LogsSource(settings, state, pipeline, None, node_name=NODE, metrics=metrics)
    tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(source.run()),
             asyncio.create_task(delivery.run())]
    try:
        await asyncio.wait_for(source.synced.wait(), 10)
        for _ in range(200):
            if _lines(receiver) >= LINES:
                break
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await sink.close()
        state.close()


def _lines(receiver: Receiver) -> int:
    return sum(len(sl.log_records) for seen in receiver.requests
               for rl in decode_request(seen.body, seen.headers).resource_logs for sl in rl.scope_logs)


def _uids(receiver: Receiver) -> dict[str, str]:
    out: dict[str, str] = {}
    for seen in receiver.requests:
        for rl in decode_request(seen.body, seen.headers).resource_logs:
            resource = attrs(rl.resource)
            assert resource["k8s.pod.name"] == "web-1" and resource["k8s.container.name"] == "app"
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    out[attrs(record)["log.record.uid"]] = record.body.string_value
    return out


async def test_lines_of_the_real_source_keep_their_ids_when_read_again(tmp_path: Path) -> None:
    path = container_log_path(tmp_path, "web-1", uid="3f1c2d3e-0000-4000-8000-000000000001")
    write_cri(path, *(f"request {i}" for i in range(LINES)))
    first, second = Receiver(), Receiver()
    await first.start()
    await second.start()
    try:
        await _run_agent(tmp_path, tmp_path / "state-1", first)
        await _run_agent(tmp_path, tmp_path / "state-2", second)  # no state: the file is read again
    finally:
        await first.stop()
        await second.stop()
    once, again = _uids(first), _uids(second)
    assert sorted(once.values()) == sorted(f"request {i}" for i in range(LINES))
    assert once == again
