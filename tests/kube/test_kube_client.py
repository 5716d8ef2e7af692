"""KubeClient against a real HTTPS server on 127.0.0.1: auth, TLS, error mapping, streams."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from kube_tls import TlsFiles, make_tls

from kubestream.config.settings import KubeSettings
from kubestream.errors import (
    ApiStatusError,
    ConfigError,
    ExpiredError,
    ForbiddenError,
    KubeConnectionError,
    TooLargeResourceVersionError,
    TooManyRequestsError,
    UnauthorizedError,
)
from kubestream.kube.client import KubeClient, WatchFrameError, WatchInactivityError
from kubestream.obs.metrics import Metrics

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiStub:
    """A tiny HTTPS API server: checks bearer tokens, then runs a per-path script."""

    def __init__(self) -> None:
        self.tokens = {"Bearer t1"}
        self.seen_auth: list[str] = []
        self.routes: dict[str, Route] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self, tls: TlsFiles) -> None:
        import ssl

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.server_cert, tls.server_key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"https://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        self.seen_auth.append(auth)
        if auth not in self.tokens:
            return status(401, "Unauthorized", "Unauthorized")
        route = self.routes.get(request.path)
        if route is None:
            return status(404, "NotFound", f"{request.path} not found")
        return await route(request)


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return web.json_response(body, status=code, headers=headers)


def kubeconfig(path: Path, server: str, ca: Path, user: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": user}],
    }))
    return path


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls(tmp_path)


@pytest.fixture
async def stub(tls: TlsFiles) -> AsyncIterator[ApiStub]:
    s = ApiStub()
    await s.start(tls)
    yield s
    await s.stop()


async def make_client(tmp_path: Path, stub: ApiStub, tls: TlsFiles, user: dict[str, Any] | None = None,
                      metrics: Metrics | None = None, **settings: Any) -> KubeClient:
    cfg = kubeconfig(tmp_path / "kubeconfig", stub.url, tls.ca_cert, user or {"token": "t1"})
    return await KubeClient.create(KubeSettings(kubeconfig=str(cfg), **settings), metrics=metrics)


async def test_tls_and_bearer_token_from_kubeconfig(tmp_path: Path, stub: ApiStub, tls: TlsFiles) -> None:
    async def pod(request: web.Request) -> web.Response:
        return web.json_response({"metadata": {"name": "x"}, "query": dict(request.query)})

    stub.routes["/api/v1/namespaces/default/pods/x"] = pod
    metrics = Metrics()
    client = await make_client(tmp_path, stub, tls, metrics=metrics)
    try:
        got = await client.request_json("GET", "/api/v1/namespaces/default/pods/x",
                                        query={"labelSelector": "app in (a,b),!tier"})
    finally:
        await client.close()
    assert got["metadata"]["name"] == "x"
    assert got["query"] == {"labelSelector": "app in (a,b),!tier"}  # encoded and decoded intact
    assert stub.seen_auth == ["Bearer t1"]
    assert metrics.api_requests.labels(verb="get", code="200")._value.get() == 1


async def test_untrusted_server_certificate_is_a_connection_error(tmp_path: Path, stub: ApiStub,
                                                                  tls: TlsFiles) -> None:
    other_ca = make_tls(tmp_path / "other" if (tmp_path / "other").mkdir() is None else tmp_path).ca_cert
    cfg = kubeconfig(tmp_path / "kc", stub.url, other_ca, {"token": "t1"})
    client = await KubeClient.create(KubeSettings(kubeconfig=str(cfg)))
    try:
        with pytest.raises(KubeConnectionError):
            await client.request_json("GET", "/api/v1/pods")
    finally:
        await client.close()
    assert stub.seen_auth == []


@pytest.mark.parametrize(("response", "error", "retry_after"), [
    (lambda: status(429, "TooManyRequests", "slow down", {"retryAfterSeconds": 2}, {"Retry-After": "2"}),
     TooManyRequestsError, 2.0),
    (lambda: web.Response(status=429, text="Too many requests, please try again later.\n",
                          headers={"Retry-After": "1"}), TooManyRequestsError, 1.0),
    (lambda: status(504, "Timeout", "Too large resource version: 99, current: 7",
                    {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                     "retryAfterSeconds": 1}), TooLargeResourceVersionError, 1.0),
    (lambda: status(410, "Expired", "The resourceVersion for the provided list is too old."), ExpiredError, None),
    (lambda: status(403, "Forbidden", 'pods is forbidden: User "u" cannot list resource "pods"'),
     ForbiddenError, None),
    (lambda: web.Response(status=503, text="upstream connect error"), ApiStatusError, None),
])
async def test_status_mapping(tmp_path: Path, stub: ApiStub, tls: TlsFiles, response: Callable[[], web.Response],
                              error: type[ApiStatusError], retry_after: float | None) -> None:
    async def route(request: web.Request) -> web.Response:
        return response()

    stub.routes["/api/v1/pods"] = route
    client = await make_client(tmp_path, stub, tls)
    try:
        with pytest.raises(error) as caught:
            await client.request_json("GET", "/api/v1/pods")
    finally:
        await client.close()
    assert type(caught.value) is error
    assert caught.value.retry_after == retry_after


async def test_rejected_static_token_is_unauthorized(tmp_path: Path, stub: ApiStub, tls: TlsFiles) -> None:
    client = await make_client(tmp_path, stub, tls, user={"token": "wrong"})
    try:
        with pytest.raises(UnauthorizedError) as caught:
            await client.request_json("GET", "/api/v1/pods")
    finally:
        await client.close()
    assert caught.value.code == 401 and caught.value.reason == "Unauthorized"


async def test_unreachable_server_is_a_connection_error(tmp_path: Path, tls: TlsFiles) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{port}", tls.ca_cert, {"token": "t1"})
    metrics = Metrics()
    client = await KubeClient.create(KubeSettings(kubeconfig=str(cfg)), metrics=metrics)
    try:
        with pytest.raises(KubeConnectionError):
            await client.request_json("GET", "/api/v1/pods")
    finally:
        await client.close()
    assert metrics.api_requests.labels(verb="list", code="error")._value.get() == 1


async def test_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        await KubeClient.create(KubeSettings(kubeconfig=str(tmp_path / "nope")))
    assert caught.value.key == "kube.kubeconfig"


async def test_token_file_is_reread_after_rotation(tmp_path: Path, stub: ApiStub, tls: TlsFiles) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"items": []})

    stub.routes["/api/v1/pods"] = ok
    token_file = tmp_path / "token"
    token_file.write_text("t1\n")
    client = await make_client(tmp_path, stub, tls, user={"tokenFile": str(token_file)})
    try:
        await client.request_json("GET", "/api/v1/pods")
        token_file.write_text("t2\n")
        stub.tokens = {"Bearer t2"}  # the old token is revoked
        assert await client.request_json("GET", "/api/v1/pods") == {"items": []}
    finally:
        await client.close()
    assert stub.seen_auth == ["Bearer t1", "Bearer t1", "Bearer t2"]


EXEC_PLUGIN = """
import json, pathlib, sys
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": f"t{n}", "expirationTimestamp": sys.argv[2]}}))
"""


async def test_exec_plugin_token_is_refreshed_on_401(tmp_path: Path, stub: ApiStub, tls: TlsFiles) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"items": []})

    stub.routes["/api/v1/pods"] = ok
    plugin = tmp_path / "plugin.py"
    plugin.write_text(EXEC_PLUGIN)
    counter = tmp_path / "count"
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                     "args": [str(plugin), str(counter), "2099-01-01T00:00:00Z"], "interactiveMode": "Never"}}
    client = await make_client(tmp_path, stub, tls, user=user)
    try:
        await client.request_json("GET", "/api/v1/pods")
        await client.request_json("GET", "/api/v1/pods")
        assert counter.read_text() == "1"  # a valid token is not re-fetched per request
        stub.tokens = {"Bearer t2"}  # rotated server-side before its announced expiry
        await client.request_json("GET", "/api/v1/pods")
    finally:
        await client.close()
    assert stub.seen_auth == ["Bearer t1", "Bearer t1", "Bearer t1", "Bearer t2"]


async def test_exec_plugin_token_is_refreshed_when_expired(tmp_path: Path, stub: ApiStub, tls: TlsFiles) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    stub.routes["/api/v1/pods"] = ok
    stub.tokens = {"Bearer t1", "Bearer t2"}
    plugin = tmp_path / "plugin.py"
    plugin.write_text(EXEC_PLUGIN)
    counter = tmp_path / "count"
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                     "args": [str(plugin), str(counter), "2000-01-01T00:00:00Z"]}}  # always expired
    client = await make_client(tmp_path, stub, tls, user=user)
    try:
        await client.request_json("GET", "/api/v1/pods")
    finally:
        await client.close()
    # Loaded once at start-up (t1), then re-run before the request because it had expired.
    assert stub.seen_auth == ["Bearer t2"]


async def test_stream_splits_lines_across_chunks(tmp_path: Path, stub: ApiStub, tls: TlsFiles) -> None:
    events = [json.dumps({"type": "ADDED", "object": {"metadata": {"name": f"p{i}", "resourceVersion": str(i)}}})
              for i in range(5)]
    payload = ("\n".join(events) + "\n").encode()

    async def watch(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(payload), 7):  # chunks that cut frames anywhere
            await resp.write(payload[i:i + 7])
        await resp.write_eof()
        return resp

    stub.routes["/api/v1/pods"] = watch
    metrics = Metrics()
    client = await make_client(tmp_path, stub, tls, metrics=metrics)
    try:
        async with client.stream("/api/v1/pods", {"watch": "true"}, timeout=5) as lines:
            got = [json.loads(line)["object"]["metadata"]["name"] async for line in lines]
    finally:
        await client.close()
    assert got == [f"p{i}" for i in range(5)]
    assert metrics.api_requests.labels(verb="watch", code="200")._value.get() == 1


async def test_stream_cut_mid_frame_and_inactivity(tmp_path: Path, stub: ApiStub, tls: TlsFiles) -> None:
    release = asyncio.Event()

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b'{"type":"ADDED","object":{}}\n{"type":"ADDED","obj')
        await resp.write_eof()
        return resp

    async def silent(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await release.wait()
        return resp

    stub.routes["/cut"] = cut
    stub.routes["/silent"] = silent
    client = await make_client(tmp_path, stub, tls)
    try:
        got: list[bytes] = []
        with pytest.raises(WatchFrameError):
            async with client.stream("/cut", {}) as lines:
                async for line in lines:
                    got.append(line)
        assert got == [b'{"type":"ADDED","object":{}}']
        with pytest.raises(WatchInactivityError):
            async with client.stream("/silent", {}, timeout=0.2) as lines:
                async for _ in lines:
                    pass
    finally:
        release.set()
        await client.close()


async def test_stream_error_status_raises_before_streaming(tmp_path: Path, stub: ApiStub, tls: TlsFiles) -> None:
    async def throttled(request: web.Request) -> web.Response:
        return status(429, "TooManyRequests", "cache not ready", {"retryAfterSeconds": 1}, {"Retry-After": "1"})

    stub.routes["/api/v1/pods"] = throttled
    client = await make_client(tmp_path, stub, tls)
    try:
        with pytest.raises(TooManyRequestsError):
            async with client.stream("/api/v1/pods", {"watch": "1"}):
                pass
    finally:
        await client.close()
