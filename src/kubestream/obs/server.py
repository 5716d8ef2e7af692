"""The observability endpoint: ``/metrics`` (Prometheus), ``/healthz`` (liveness), ``/readyz``.

``/healthz`` answers from the agent's own event loop, so a wedged loop (a blocking call, a
deadlock) shows up as a failing liveness probe rather than as a silently stuck agent.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from kubestream.config.settings import ServerSettings
from kubestream.errors import ConfigError
from kubestream.obs.metrics import Metrics

log = logging.getLogger("kubestream.obs.server")

Readiness = Callable[[], tuple[bool, str]]
"""Returns (ready, reason); the reason is the body of a 503 (and of the 200, if ready)."""


class ObsServer:
    """An aiohttp server for one agent's metrics registry and probes."""

    def __init__(self, settings: ServerSettings, metrics: Metrics, readiness: Readiness) -> None:
        self._settings = settings
        self._metrics = metrics
        self._readiness = readiness
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``server.port: 0``)."""
        if self._port is None:
            raise RuntimeError("ObsServer is not started")
        return self._port

    async def start(self) -> None:
        """Bind and serve. Raises ``ConfigError`` (key ``server.port``) if the address is unusable."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/metrics", self._metrics_handler)
        app.router.add_get("/healthz", self._healthz_handler)
        app.router.add_get("/readyz", self._readyz_handler)
        # Probes hit these every few seconds; an access log line per probe is noise.
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = self._settings.host, self._settings.port
        try:
            await web.TCPSite(runner, host, port, reuse_address=True).start()
        except OSError as exc:
            await runner.cleanup()
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise ConfigError(f"cannot listen on {host}:{port}: {reason}", key="server.port") from None
        self._runner = runner
        self._port = _bound_port(runner)
        log.info("observability server listening", extra={"address": f"{host}:{self._port}"})

    async def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        # Honour "Accept: application/openmetrics-text" (exemplars, _created) like prometheus_client.
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(self._metrics.registry)
        response = web.Response(body=body)
        # Set verbatim: the prometheus content type carries a version parameter aiohttp must keep.
        response.headers["Content-Type"] = content_type
        return response

    async def _healthz_handler(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz_handler(self, request: web.Request) -> web.Response:
        try:
            ready, reason = self._readiness()
        except Exception as exc:  # a broken check means "not ready", never a 500 with a trace
            log.warning("readiness check failed", exc_info=exc)
            ready, reason = False, f"readiness check failed: {exc}"
        return web.Response(status=200 if ready else 503, text=f"{reason or ('ok' if ready else 'not ready')}\n")


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        # IPv4 (host, port) or IPv6 (host, port, flowinfo, scope_id)
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the observability server bound no TCP address")
