"""Real S3-protocol servers for the S3 sink tests: moto in server mode, in a child process, on
127.0.0.1, plus a small fault-injecting reverse proxy (aiohttp) that sits in front of it.

moto runs in its own process (not a thread of the test process) so that its Python CPU does not
share the GIL with the code under test, and so that a server with IAM authentication switched
on (process-global in moto) can run beside a plain one. It runs under the S3 tools' own
interpreter (.venv-s3, see ``s3_tools_python``): moto and boto3 are not installable beside the
agent's pinned kubernetes client. The test process inspects buckets with obstore and plain HTTP
(bucket creation unsigned, which moto accepts while its authentication is off; HEAD presigned);
the few boto3 calls (IAM users, KMS keys) run in ``_moto_admin.py`` under that interpreter.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
import pytest
from _azurite import AzuriteServer, azurite_executable
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from obstore.store import S3Store
from pydantic import SecretStr

from kubestream.config.settings import S3SinkSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_SCRIPT = Path(__file__).with_name("_moto_admin.py")
S3_PYTHON_ENV = "KUBESTREAM_S3_PYTHON"
REGION = "us-east-1"
ADMIN_KEY = "testing"  # any key works while moto's authentication is off


def s3_tools_python() -> Path:
    """The interpreter that has moto and boto3: ``$KUBESTREAM_S3_PYTHON`` or .venv-s3's.

    Fails (never skips) when it is missing: CI must run the S3 tests.
    """
    override = os.environ.get(S3_PYTHON_ENV)
    python = Path(override) if override else REPO_ROOT / ".venv-s3" / "bin" / "python"
    if not python.exists():
        origin = f"{S3_PYTHON_ENV}={override}" if override else f"{python} (set {S3_PYTHON_ENV} to use another)"
        pytest.fail(f"no interpreter with the S3 test server: {origin} does not exist; run `make setup` "
                    "to create .venv-s3 with moto and boto3", pytrace=False)
    return python


class MotoServer:
    """One moto server process; ``stop`` (or the end of the test process) ends it."""

    def __init__(self, python: Path) -> None:
        self.python = python
        # A file, not a pipe: a chatty server must never block on a full pipe nobody reads.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(
            [str(python), str(ADMIN_SCRIPT), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.strip().isdigit():
            errors = self._errors()
            self.stop()
            raise RuntimeError(f"moto server did not start under {python} (is it .venv-s3's? `make setup` "
                               f"creates it): {line!r} {errors}")
        self.port = int(line)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _errors(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    def admin(self, *args: str) -> Any:
        """Run a ``_moto_admin.py`` command against this server; its printed JSON."""
        done = subprocess.run([str(self.python), str(ADMIN_SCRIPT), args[0], self.endpoint, *args[1:]],
                              capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"_moto_admin.py {args[0]} failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def create_bucket(self) -> str:
        name = f"ks-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(f"{self.endpoint}/{name}", data=b"", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
        return name

    def store(self, bucket: str) -> S3Store:
        """An obstore client for inspecting ``bucket`` (not the sink's: built here, independently)."""
        return S3Store(bucket, endpoint=self.endpoint, region=REGION, access_key_id=ADMIN_KEY,
                       secret_access_key=ADMIN_KEY, virtual_hosted_style_request=False,
                       client_options={"allow_http": True})

    def keys(self, bucket: str, prefix: str | None = None) -> list[str]:
        """Every key in ``bucket`` (all pages), sorted."""
        listing = obstore.list(self.store(bucket), prefix=prefix).collect()
        return sorted(str(meta["path"]) for meta in listing)

    def read(self, bucket: str, key: str) -> bytes:
        return bytes(obstore.get(self.store(bucket), key).bytes())

    def head(self, bucket: str, key: str) -> dict[str, str]:
        """The response headers of a HEAD, names lower-cased: the SSE, storage-class and ETag
        headers exactly as the server sends them (obstore's ``head`` keeps none of the first two).

        Presigned by obstore: moto answers unsigned GET/HEAD of a private object with 403 even
        while its authentication is off (anonymous access follows the object's ACL).
        """
        url = obstore.sign(self.store(bucket), "HEAD", key, timedelta(minutes=5))
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return {name.lower(): value for name, value in answer.headers.items()}

    def stop(self) -> None:
        # moto keeps everything in memory: nothing to flush, so no graceful shutdown to wait for.
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()


@dataclass(frozen=True)
class AuthServer:
    """A moto server that checks signatures and IAM policies, with one bucket and two users."""

    server: MotoServer
    bucket: str
    writer: tuple[str, str]
    """(key id, secret) allowed s3:*."""
    reader: tuple[str, str]
    """(key id, secret) allowed only s3:GetObject."""


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer(s3_tools_python())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_auth_server() -> Iterator[AuthServer]:
    server = MotoServer(s3_tools_python())
    bucket = server.create_bucket()
    users = server.admin("auth-users", "writer=s3:*", "reader=s3:GetObject")  # then auth is on
    writer, reader = ((users[name]["access_key_id"], users[name]["secret_access_key"])
                      for name in ("writer", "reader"))
    yield AuthServer(server, bucket, writer, reader)
    server.stop()


@pytest.fixture
def bucket(moto_server: MotoServer) -> str:
    return moto_server.create_bucket()


def s3_settings(endpoint: str, bucket: str, **overrides: Any) -> S3SinkSettings:
    """Sink settings for a local server, static keys unless ``overrides`` say otherwise."""
    values: dict[str, Any] = {
        "bucket": bucket, "endpoint_url": endpoint, "region": REGION,
        "access_key_id": SecretStr(ADMIN_KEY), "secret_access_key": SecretStr(ADMIN_KEY),
        "attempt_timeout_s": 10.0,
    }
    values.update(overrides)
    return S3SinkSettings(**values)


# -- fault-injecting reverse proxy ---------------------------------------------------------

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                         "proxy-authorization", "proxy-authenticate", "content-length"})


@dataclass
class Fault:
    """Answer matching requests with an S3 error document instead of forwarding them."""

    status: int
    code: str
    remaining: int | None = None
    """How many requests to fail (None: until cleared)."""
    retry_after: str | None = None
    only_part_uploads: bool = False
    json_body: bool = False
    """A GCS JSON-API error document instead of the XML one (S3, GCS XML API, Azure)."""
    exhausted: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once ``remaining`` requests have been failed."""


@dataclass
class ProxyLog:
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path with query) of every request that reached the proxy."""
    arrivals: list[float] = field(default_factory=list)
    """``time.monotonic()`` at which each of those requests arrived."""
    forwarded_puts: list[str] = field(default_factory=list)
    """Paths of PUTs moto acknowledged with 200, in order."""
    headers: list[dict[str, str]] = field(default_factory=list)
    faults_served: int = 0


def _error_document(fault: Fault) -> bytes:
    if fault.json_body:
        return json.dumps({"error": {"code": fault.status, "message": f"injected {fault.code}",
                                     "errors": [{"reason": fault.code, "message": f"injected {fault.code}"}]}}).encode()
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
            f"<Message>injected {fault.code}</Message></Error>").encode()


class FaultProxy:
    """An HTTP reverse proxy to ``upstream`` that can fail, hang, or stop listening ("down")."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = 0
        self.fault: Fault | None = None
        self.hang_s = 0.0
        self.log = ProxyLog()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        # Set when the proxy goes down, so hanging handlers end instead of delaying teardown.
        self._released = asyncio.Event()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (again) on the same port; the first start picks a free one."""
        self._released = asyncio.Event()
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=60), auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def go_down(self) -> None:
        """Stop listening: clients get "connection refused" until ``start`` is called again."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close(self) -> None:
        await self.go_down()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _take_fault(self, request: web.Request) -> Fault | None:
        fault = self.fault
        if fault is None or (fault.only_part_uploads and "partNumber=" not in request.query_string):
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.fault = None
                fault.exhausted.set()
        return fault

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.log.requests.append((request.method, request.path_qs))
        self.log.arrivals.append(time.monotonic())
        self.log.headers.append({k.lower(): v for k, v in request.headers.items()})
        body = await request.read()
        if self.hang_s:
            try:
                await asyncio.wait_for(self._released.wait(), self.hang_s)
            except TimeoutError:
                pass
        fault = self._take_fault(request)
        if fault is not None:
            self.log.faults_served += 1
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.Response(status=fault.status, headers=headers, body=_error_document(fault),
                                content_type="application/json" if fault.json_body else "application/xml")
        return await self._forward(request, body)

    async def _forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        assert self._session is not None
        # The Host header is kept: it is part of the SigV4 signature.
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            # No invented Content-Type: Azure's Shared Key signature covers it.
            async with self._session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                             data=body, skip_auto_headers=("Content-Type",)) as upstream:
                payload = await upstream.read()
                status = upstream.status
                answer_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        except ClientError:
            return web.Response(status=502)
        if request.method == "PUT" and status == 200 and "partNumber=" not in request.query_string:
            self.log.forwarded_puts.append(request.path)
        return web.Response(status=status, headers=answer_headers, body=payload)


@pytest.fixture
async def fault_proxy(moto_server: MotoServer) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(moto_server.endpoint)
    await proxy.start()
    yield proxy
    await proxy.close()



# -- Azurite (Azure Blob) and a proxy with nothing behind it (GCS) ------------------------------


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    server = AzuriteServer(azurite_executable())
    yield server
    server.stop()


@pytest.fixture
def container(azurite: AzuriteServer) -> str:
    return azurite.create_container()


@pytest.fixture
async def azure_proxy(azurite: AzuriteServer) -> AsyncIterator[FaultProxy]:
    """The fault proxy in front of Azurite (Shared Key signatures do not cover the host)."""
    proxy = FaultProxy(azurite.url)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def fault_only_proxy() -> AsyncIterator[FaultProxy]:
    """A fault proxy whose upstream refuses connections: only injected answers succeed or fail."""
    proxy = FaultProxy("http://127.0.0.1:9")
    await proxy.start()
    yield proxy
    await proxy.close()
