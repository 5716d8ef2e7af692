"""The delivery worker drives ``OtlpSink`` and ``HttpSink`` by their error classes: a 503 is
retried (after its Retry-After), a 400 sets the payload aside in the spool's ``dead-letter/``
directory without sending it again, and the next one goes on."""

from __future__ import annotations

from pathlib import Path

from tests.outputs.outputs_support import JOB_KUBE, KUBE, Receiver, Reply, attrs, decode_request, log_record

from kubestream.config.outputs import HttpSinkSettings, OtlpSinkSettings
from kubestream.config.settings import SinkSettings
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode.otlp import OtlpEncoder
from kubestream.pipeline.encode.webhook import WebhookEncoder
from kubestream.pipeline.spool import Spool
from kubestream.sinks.http import HttpSink
from kubestream.sinks.otlp import OtlpSink
from kubestream.state.store import StateStore

FAST_RETRY = {"retry_initial_s": 0.01, "retry_max_s": 0.02}


async def test_otlp_through_the_spool_and_the_delivery_worker(receiver: Receiver, tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    try:
        metrics = Metrics()
        spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20, metrics=metrics)
        settings = OtlpSinkSettings(endpoint=f"{receiver.url}/v1/logs")
        encoder = OtlpEncoder(settings, stream="logs", cluster="c1")
        first = encoder.encode([log_record(KUBE)])
        second = encoder.encode([log_record(JOB_KUBE, file_key="2049:78")])
        third = encoder.encode([log_record(KUBE, offset=4096)])
        for key, payload in (("a", first), ("b", second), ("c", third)):
            await spool.commit(key, payload, [], stream="logs")
        # a: 503, then accepted; b: 400 (set aside, not sent again); c: accepted.
        receiver.replies += [Reply(503, {"Retry-After": "0"}), Reply(200), Reply(400, body=b"bad"), Reply(200)]
        sink = OtlpSink(settings, metrics=metrics)
        delivery = Delivery(spool, sink, settings=SinkSettings(type="otlp", otlp=settings, **FAST_RETRY),
                            metrics=metrics)
        assert await delivery.drain(10.0)
        await sink.close()
        kept = sorted((tmp_path / "spool" / "dead-letter").iterdir())
        assert [path.read_bytes() for path in kept] == [second]
        assert spool.pending() == []
    finally:
        state.close()
    pods = [attrs(decode_request(seen.body, seen.headers).resource_logs[0].resource)["k8s.pod.name"]
            for seen in receiver.requests]
    # The 503 was retried; the 400 was sent once, set aside, and the next payload went on.
    assert pods == ["web-7d9f8-abcde", "web-7d9f8-abcde", "backup-28000-x1", "web-7d9f8-abcde"]
    assert metrics.registry.get_sample_value("kubestream_sink_errors_total", {"sink": "otlp", "kind": "rejected"}) == 1
    assert metrics.registry.get_sample_value("kubestream_dead_letters_total", {"stream": "logs", "reason": "sink"}) == 1
    assert metrics.registry.get_sample_value("kubestream_destination_dropped_parts_total",
                                             {"destination": "archive", "reason": "rejected"}) == 1
    assert metrics.registry.get_sample_value("kubestream_sink_errors_total",
                                             {"sink": "otlp", "kind": "retryable"}) == 1


async def test_webhook_through_the_delivery_worker(receiver: Receiver, tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    try:
        metrics = Metrics()
        spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20, metrics=metrics)
        settings = HttpSinkSettings(url=f"{receiver.url}/hook", compression="gzip")
        payload = WebhookEncoder(settings, stream="logs", cluster="c1").encode([log_record(KUBE)])
        await spool.commit("a", payload, [], stream="logs")
        receiver.replies += [Reply(500), Reply(429, {"Retry-After": "0"})]
        sink = HttpSink(settings, metrics=metrics)
        delivery = Delivery(spool, sink, settings=SinkSettings(type="http", http=settings, **FAST_RETRY),
                            metrics=metrics)
        assert await delivery.drain(10.0)
        await sink.close()
    finally:
        state.close()
    assert len(receiver.requests) == 3
    assert len({seen.body for seen in receiver.requests}) == 1  # the same payload each time


async def test_webhook_refusal_is_set_aside_once(receiver: Receiver, tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    try:
        metrics = Metrics()
        spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20, metrics=metrics)
        settings = HttpSinkSettings(url=f"{receiver.url}/hook")
        encoder = WebhookEncoder(settings, stream="logs", cluster="c1")
        refused, accepted = encoder.encode([log_record(KUBE)]), encoder.encode([log_record(KUBE, offset=4096)])
        await spool.commit("a", refused, [], stream="logs")
        await spool.commit("b", accepted, [], stream="logs")
        receiver.replies += [Reply(413), Reply(200)]
        sink = HttpSink(settings, metrics=metrics)
        delivery = Delivery(spool, sink, settings=SinkSettings(type="http", http=settings, **FAST_RETRY),
                            metrics=metrics)
        assert await delivery.drain(10.0)
        await sink.close()
        assert [path.read_bytes() for path in (tmp_path / "spool" / "dead-letter").iterdir()] == [refused]
    finally:
        state.close()
    assert [seen.body for seen in receiver.requests] == [refused, accepted]
    assert metrics.registry.get_sample_value("kubestream_dead_letters_total", {"stream": "logs", "reason": "sink"}) == 1
