"""The observability server on 127.0.0.1: /metrics scraped and parsed, /healthz, /readyz flipping."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubestream.config.settings import ServerSettings
from kubestream.errors import ConfigError
from kubestream.obs.metrics import Metrics
from kubestream.obs.server import ObsServer


class Readiness:
    """A readiness check the test flips, like the agent's caches syncing."""

    def __init__(self) -> None:
        self.ready = False
        self.reason = "events not synced"

    def __call__(self) -> tuple[bool, str]:
        return self.ready, self.reason


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
async def server(metrics: Metrics, readiness: Readiness) -> AsyncIterator[ObsServer]:
    obs = ObsServer(ServerSettings(host="127.0.0.1", port=0), metrics, readiness)
    await obs.start()
    try:
        yield obs
    finally:
        await obs.stop()


async def _get(server: ObsServer, path: str, accept: str | None = None) -> tuple[int, str, str]:
    headers = {"Accept": accept} if accept else {}
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{server.port}{path}", headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as resp:
        return resp.status, resp.headers["Content-Type"], await resp.text()


async def test_obs_server_metrics_are_scraped_and_parse(server: ObsServer, metrics: Metrics) -> None:
    metrics.records_in.labels(source="events").inc(3)
    metrics.records_out.labels(source="events").inc(2)
    metrics.sink_errors.labels(sink="s3", kind="retryable").inc()
    metrics.spool_bytes.set(4096)
    metrics.lag.labels(source="events").observe(0.3)

    status, content_type, body = await _get(server, "/metrics")

    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body) for s in family.samples}
    assert samples[("kubestream_records_in_total", (("source", "events"),))] == 3.0
    assert samples[("kubestream_records_out_total", (("source", "events"),))] == 2.0
    assert samples[("kubestream_sink_errors_total", (("kind", "retryable"), ("sink", "s3")))] == 1.0
    assert samples[("kubestream_spool_bytes", ())] == 4096.0
    assert samples[("kubestream_end_to_end_lag_seconds_count", (("source", "events"),))] == 1.0
    assert samples[("kubestream_end_to_end_lag_seconds_bucket", (("le", "0.5"), ("source", "events")))] == 1.0
    assert samples[("kubestream_build_info", (("version", "0.1.0"),))] == 1.0
    # The private registry only: no process/platform collectors of the global default registry.
    assert not any(name.startswith(("process_", "python_gc")) for name, _ in samples)


async def test_obs_server_metrics_openmetrics_negotiation(server: ObsServer, metrics: Metrics) -> None:
    metrics.relists.labels(resource="events").inc()
    status, content_type, body = await _get(server, "/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


async def test_obs_server_healthz(server: ObsServer) -> None:
    assert await _get(server, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")


async def test_obs_server_readyz_flips_from_503_to_200(server: ObsServer, readiness: Readiness) -> None:
    status, _, body = await _get(server, "/readyz")
    assert (status, body) == (503, "events not synced\n")

    readiness.ready, readiness.reason = True, "ready"
    status, _, body = await _get(server, "/readyz")
    assert (status, body) == (200, "ready\n")

    readiness.ready, readiness.reason = False, "sink not writable"
    status, _, body = await _get(server, "/readyz")
    assert (status, body) == (503, "sink not writable\n")


async def test_obs_server_readyz_broken_check_is_503(metrics: Metrics) -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("state store closed")

    obs = ObsServer(ServerSettings(host="127.0.0.1", port=0), metrics, broken)
    await obs.start()
    try:
        status, _, body = await _get(obs, "/readyz")
    finally:
        await obs.stop()
    assert (status, body) == (503, "readiness check failed: state store closed\n")


async def test_obs_server_unknown_path_is_404(server: ObsServer) -> None:
    status, _, _ = await _get(server, "/nope")
    assert status == 404


async def test_obs_server_port_in_use_is_a_config_error(metrics: Metrics, readiness: Readiness) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        obs = ObsServer(ServerSettings(host="127.0.0.1", port=port), metrics, readiness)
        with pytest.raises(ConfigError) as caught:
            await obs.start()
    assert str(caught.value) == f"server.port: cannot listen on 127.0.0.1:{port}: address already in use"
    with pytest.raises(RuntimeError):
        _ = obs.port


async def test_obs_server_stop_releases_the_port(metrics: Metrics, readiness: Readiness) -> None:
    first = ObsServer(ServerSettings(host="127.0.0.1", port=0), metrics, readiness)
    await first.start()
    port = first.port
    await first.stop()
    await first.stop()  # idempotent
    second = ObsServer(ServerSettings(host="127.0.0.1", port=port), metrics, readiness)
    await second.start()
    try:
        assert second.port == port
        status, _, _ = await _get(second, "/healthz")
        assert status == 200
    finally:
        await second.stop()
