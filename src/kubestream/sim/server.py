"""SimServer: the simulated kube-apiserver on 127.0.0.1, running its own event loop in a
background thread so sync clients, kubectl subprocesses and async tests on other loops can all
talk to it."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import tempfile
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from aiohttp import web

from kubestream.sim.accounting import KubeletRequestLog, RequestLog
from kubestream.sim.apiserver import tls
from kubestream.sim.apiserver.faults import Faults
from kubestream.sim.apiserver.handlers import ApiApp
from kubestream.sim.config import DenyRule, SimConfig
from kubestream.sim.nodes.kubelet import KubeletEndpoint, KubeletFleet
from kubestream.sim.nodes.logfiles import NodeLogWriter
from kubestream.sim.storage.cluster import SimCluster

__all__ = ["DenyRule", "SimConfig", "SimServer"]

T = TypeVar("T")


class SimServer:
    """A running simulated API server. ``start()``/``stop()`` or use it as a context manager."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.cluster = SimCluster(self.config)
        self.faults = Faults()
        self.requests = RequestLog()
        self.kubelet_requests = KubeletRequestLog(mirror=self.requests)
        """Requests the simulated kubelets served (``config.kubelets``); also in ``requests`` with
        ``server="kubelet"`` (``requests.records(server=None)``), never in its counts."""
        self._api = ApiApp(self.config, self.cluster, self.faults, self.requests)
        self._kubelets: KubeletFleet | None = None
        self.faults.bind(self._drop_watches, self.cluster.compact)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="kubestream-sim-")
        self._tls: tls.TlsFiles | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> SimServer:
        """Start serving; returns once the socket is listening."""
        if self._thread is not None:
            return self
        if self.config.tls or self.config.kubelets:  # kubelets always serve HTTPS
            self._tls = tls.generate(Path(self._tmp.name) / "tls", self.config.host)
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="kubestream-sim", daemon=True)
        self._thread.start()
        ready.result(timeout=30)
        return self

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # report start-up failures to start()
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        app = self._api.make_app()
        # handler_cancellation: a client hanging up ends its watch handler at once.
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5,
                                     handler_cancellation=True)
        await self._runner.setup()
        ssl_context = self._tls.server_context() if self._tls and self.config.tls else None
        site = web.TCPSite(self._runner, self.config.host, self.config.port, ssl_context=ssl_context,
                           reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])
        if self.config.kubelets:
            assert self._tls is not None
            self._kubelets = KubeletFleet(self.config, self.cluster, self.kubelet_requests, self._tls.server_context(),
                                          log_writers=self._api.log_writers)
            await self._kubelets.start()

    def stop(self) -> None:
        """Stop serving and release the port (open watches are cut)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            try:
                self.run_coro(self._shutdown(), timeout=10)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self.cluster.close()
        self._tmp.cleanup()

    async def _shutdown(self) -> None:
        for watch in list(self._api.watches):
            watch.session.closed.set()
        if self._api.hub is not None:
            self._api.hub.close()
        if self._kubelets is not None:
            await self._kubelets.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- accessors ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port."""
        return self._port

    @property
    def url(self) -> str:
        """``http(s)://host:port``."""
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.host}:{self._port}"

    @property
    def ca_cert_path(self) -> Path | None:
        """PEM of the generated CA (TLS only)."""
        return self._tls.ca_cert if self._tls and self.config.tls else None

    @property
    def kubelet_ca_path(self) -> Path | None:
        """PEM of the CA that signed the kubelets' serving certificate (``config.kubelets`` only)."""
        return self._tls.ca_cert if self._tls and self.config.kubelets else None

    def kubelet(self, node: str) -> KubeletEndpoint:
        """The kubelet endpoint of a Node (looks for new Nodes first); KeyError if there is none."""
        fleet = self._kubelets
        if fleet is None:
            raise RuntimeError("kubelets are not served: SimConfig(kubelets=True)")
        endpoints = self.run_coro(fleet.sync())
        return endpoints[node]

    def move_kubelet(self, node: str) -> KubeletEndpoint:
        """Restart a Node's kubelet on a new port and publish it in the Node's status (the old
        port stops answering): a client must follow the Node to keep reading its kubelet."""
        fleet = self._kubelets
        if fleet is None:
            raise RuntimeError("kubelets are not served: SimConfig(kubelets=True)")
        return self.run_coro(fleet.move(node))

    def kubelet_token(self) -> str | None:
        """A bearer token both the API server and the kubelets accept (None when auth is off)."""
        return next(iter(self.config.tokens)) if self.config.tokens else None

    def serve_node_logs(self, writer: NodeLogWriter) -> None:
        """Serve ``pods/log`` of the pods on ``writer``'s node from the files it writes (the
        last writer registered for a node wins)."""
        self._api.log_writers[writer.config.node] = writer

    def set_tokens(self, tokens: list[str] | dict[str, str] | None) -> None:
        """Replace the accepted bearer tokens at runtime (token rotation tests)."""
        self.config.tokens = tokens

    def write_kubeconfig(self, path: str | Path, token: str | None = None) -> Path:
        """A kubeconfig for kubectl and the Python clients (CA data embedded when TLS)."""
        cluster: dict[str, Any] = {"server": self.url}
        if self._tls is not None and self.config.tls:
            cluster["certificate-authority-data"] = base64.b64encode(self._tls.ca_cert.read_bytes()).decode()
        if token is None and self.config.tokens:
            token = next(iter(self.config.tokens))
        user: dict[str, Any] = {"token": token} if token else {}
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sim", "cluster": cluster}],
            "users": [{"name": "sim", "user": user}],
            "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim", "namespace": "default"}}],
            "current-context": "sim",
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        return target

    # -- running code on the server loop ------------------------------------------------------------

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Schedule ``fn()`` on the server loop."""
        if self._loop is None:
            raise RuntimeError("server not started")
        self._loop.call_soon_threadsafe(fn)

    def run_coro(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30) -> T:
        """Run a coroutine on the server loop and wait for its result (not from that loop)."""
        if self._loop is None:
            raise RuntimeError("server not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _drop_watches(self, resource: str | None) -> int:
        loop = self._loop
        if loop is None:
            return 0
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return self._api.drop_watches(resource)

        async def drop() -> int:
            return self._api.drop_watches(resource)

        return self.run_coro(drop())
