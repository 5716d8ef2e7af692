"""Simulated kubelets: one HTTPS listener per Node, on its own 127.0.0.1 port.

A real kubelet serves on ``https://<node InternalIP>:<status.daemonEndpoints.kubeletEndpoint.Port>``
(default 10250). Here every Node gets a port of its own on the simulator's host, written into the
Node's status exactly where clients look for it (``status.addresses`` InternalIP and
``status.daemonEndpoints.kubeletEndpoint.Port``), so a client finds its kubelet the way it would in
a cluster. Certificates come from the simulator's CA (sim/apiserver/tls.py).

Authentication and authorization follow kubelet's webhook mode (pkg/kubelet/server/server.go
``InstallAuthFilter``, pkg/kubelet/server/auth.go): a bearer token is reviewed against the API
server's token table (no/unknown token → ``401 Unauthorized``), then the request becomes a
SubjectAccessReview for ``verb`` (from the HTTP method) on ``nodes/<subresource>``: ``/stats/*``
→ ``nodes/stats``, ``/metrics/*`` → ``nodes/metrics``, ``/logs/*`` → ``nodes/log``, anything else
(``/containerLogs``, ``/exec``) → ``nodes/proxy``. With the
``KubeletFineGrainedAuthz`` gate (default on since 1.33) ``/pods`` asks for ``nodes/pods`` and
``/healthz`` for ``nodes/healthz``, each falling back to ``nodes/proxy``; a denial answers
``403 Forbidden (user=…, verb=…, resource=nodes, subresource=proxy)``. The simulator's RBAC
stand-in is ``SimConfig.deny`` (DenyRule with ``resource="nodes/pods"`` etc.).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from kubestream.sim.accounting import KubeletRecord, KubeletRequestLog
from kubestream.sim.config import SimConfig
from kubestream.sim.nodes.logfiles import NodeLogWriter
from kubestream.sim.nodes.podlogs import PodLogServer
from kubestream.sim.nodes.staticpods import kubelet_view
from kubestream.sim.nodes.stats import summary
from kubestream.sim.storage.cluster import SimCluster
from kubestream.sim.storage.status import SimApiError

_log = logging.getLogger(__name__)
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
"""HTTP method → authorization verb (auth.go ``GetRequestAttributes``)."""
_FINE_GRAINED = {"/pods": "pods", "/runningpods/": "pods", "/healthz": "healthz", "/configz": "configz"}
"""Paths whose fine-grained subresource falls back to ``nodes/proxy`` (KubeletFineGrainedAuthz)."""
_SUBRESOURCE_PREFIXES = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"), ("/spec", "spec"),
                         ("/checkpoint", "checkpoint"))
"""auth.go ``GetRequestAttributes`` (the table of kubernetes.io "Kubelet authentication/authorization"):
these paths are checked against their own subresource only; every other path (``/containerLogs``,
``/exec``, ...) against ``nodes/proxy``."""


@dataclass(frozen=True, slots=True)
class KubeletEndpoint:
    """Where one node's kubelet listens."""

    node: str
    host: str
    port: int

    @property
    def url(self) -> str:
        """``https://host:port``."""
        return f"https://{self.host}:{self.port}"


class KubeletFleet:
    """The kubelet listeners of all Nodes; lives on the server's event loop."""

    def __init__(self, config: SimConfig, cluster: SimCluster, requests: KubeletRequestLog,
                 ssl_context: Any, clock: Callable[[], float] = time.time,
                 log_writers: Mapping[str, NodeLogWriter] | None = None) -> None:
        self.config = config
        self._logs = PodLogServer(log_writers if log_writers is not None else {})
        self.cluster = cluster
        self.requests = requests
        self._ssl = ssl_context
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._sites: dict[str, web.TCPSite] = {}
        self._endpoints: dict[str, KubeletEndpoint] = {}
        self._by_port: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle (server loop) --------------------------------------------------------------------

    async def start(self) -> None:
        """Set up the shared application and serve the Nodes that exist now."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5,
                                     handler_cancellation=True)
        await self._runner.setup()
        await self.sync()
        self._task = asyncio.get_running_loop().create_task(self._follow_nodes())

    async def stop(self) -> None:
        """Close every listener."""
        if self._task is not None:
            self._task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        self._sites.clear()

    async def _follow_nodes(self) -> None:
        while True:
            await asyncio.sleep(self.config.kubelet_sync_s)
            try:
                await self.sync()
            except Exception:  # a failed round must not end the loop; the next one retries
                _log.exception("kubelet fleet sync failed")

    async def sync(self) -> dict[str, KubeletEndpoint]:
        """Start a listener for every new Node, stop those of deleted ones; returns the endpoints."""
        nodes = {n["metadata"]["name"]: n for n in self.cluster.list("nodes")}
        for name in [n for n in self._sites if n not in nodes]:
            site = self._sites.pop(name)
            self._by_port.pop(self._endpoints.pop(name).port, None)
            await site.stop()
        for name, node in nodes.items():
            if name not in self._sites:
                await self._serve(name)
            self._publish(node, self._endpoints[name])
        return dict(self._endpoints)

    async def _serve(self, node: str) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.config.host, 0, ssl_context=self._ssl, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        port = int((getattr(server, "sockets", None) or [])[0].getsockname()[1])
        self._sites[node] = site
        self._endpoints[node] = KubeletEndpoint(node, self.config.host, port)
        self._by_port[port] = node

    def _publish(self, node: dict[str, Any], endpoint: KubeletEndpoint) -> None:
        """Write the endpoint into the Node's status, as kubelet's node status setters do
        (pkg/kubelet/nodestatus/setters.go ``NodeAddress``, ``DaemonEndpoints``)."""
        status = node.get("status") or {}
        addresses = [a for a in status.get("addresses") or [] if a.get("type") != "InternalIP"]
        wanted = [{"type": "InternalIP", "address": endpoint.host}, *addresses]
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if status.get("addresses") == wanted and port == endpoint.port:
            return
        self.cluster.patch("nodes", None, endpoint.node, {"status": {
            "addresses": wanted, "daemonEndpoints": {"kubeletEndpoint": {"Port": endpoint.port}}}}, patch_type="merge")

    async def move(self, node: str) -> KubeletEndpoint:
        """Restart a node's kubelet on a new port (as after a restart with another ``--port``, or
        the node coming back with a new address): the old listener closes, the Node's status gets
        the new endpoint at once (kubelet's next status update). KeyError for an unserved node."""
        old = self._endpoints[node]
        site = self._sites.pop(node)
        await self._serve(node)
        self._by_port.pop(old.port, None)
        await site.stop()
        endpoint = self._endpoints[node]
        self._publish(self.cluster.get("nodes", None, node), endpoint)
        return endpoint

    def endpoint(self, node: str) -> KubeletEndpoint | None:
        """The endpoint of a served node."""
        return self._endpoints.get(node)

    # -- requests -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        node = self._by_port.get(int(sockname[1])) if sockname else None
        verb = _VERBS.get(request.method, request.method.lower())
        if node is None:
            # A kept-alive connection to a listener that closed (node deleted, kubelet moved): the
            # kubelet process behind it is gone, so the connection is reset, not answered.
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("kubelet listener closed")
        user, response = await self._route(request, node, verb)
        self.requests.add(KubeletRecord(node=node, verb=verb, path=request.path_qs, code=response.status,
                                        user=user, user_agent=request.headers.get("User-Agent", ""),
                                        time=self._clock(), subresource=_subresource(request.path)))
        return response

    async def _route(self, request: web.Request, node: str, verb: str) -> tuple[str, web.StreamResponse]:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        user = self.config.user_for_token(token)
        if user is None:
            return "", web.Response(status=401, text="Unauthorized")
        path = request.path
        subresource = self._authorize(user, verb, path)
        if subresource is not None:
            # server.go InstallAuthFilter: http.Error text, naming the last attributes checked.
            return user, web.Response(status=403, text=(
                f"Forbidden (user={user}, verb={verb}, resource=nodes, subresource={subresource})"))
        if request.method != "GET":
            return user, web.Response(status=405, text="405: Method Not Allowed")
        if path == "/healthz":
            return user, web.Response(text="ok")
        if path == "/pods":
            return user, self._pods(node)
        if path == "/stats/summary":
            return user, web.Response(body=orjson.dumps(summary(self.cluster, node, self._clock())),
                                      content_type="application/json")
        parts = path.split("/")
        if len(parts) == 5 and parts[1] == "containerLogs" and all(parts[2:]):
            return user, await self._container_logs(request, node, parts[2], parts[3], parts[4])
        return user, web.Response(status=404, text="404 page not found\n")

    def _authorize(self, user: str, verb: str, path: str) -> str | None:
        """None when allowed, else the subresource named in the 403."""
        own = _own_subresource(path)
        fine = _FINE_GRAINED.get(path)
        chain = [own] if own else ([fine] if fine else []) + ["proxy"]
        for sub in chain:
            if not any(rule.matches(verb, f"nodes/{sub}", None, user) or rule.matches(verb, "nodes", None, user)
                       for rule in self.config.deny):
                return None
        return chain[-1]

    async def _container_logs(self, request: web.Request, node: str, namespace: str, name: str,
                              container: str) -> web.StreamResponse:
        """server.go ``getContainerLogs``: the pods/log options from the query, the container from
        the path; kubelet answers its errors as plain text (``response.WriteError``), 404 for a pod
        it does not run."""
        pod = next((p for p in self.cluster.list("pods", field_selector=f"spec.nodeName={node}")
                    if p["metadata"]["namespace"] == namespace and p["metadata"]["name"] == name), None)
        if pod is None:
            return web.Response(status=404, text=f'pod "{name}" of namespace "{namespace}" not found on this node\n')
        try:
            return await self._logs.serve(request, pod, container)
        except SimApiError as err:
            return web.Response(status=err.code, text=str(err) + "\n")

    def _pods(self, node: str) -> web.Response:
        """kubelet server.go ``getPods``: ``encodePods`` of ``GetPods()``, a v1 PodList."""
        pods = self.cluster.list("pods", field_selector=f"spec.nodeName={node}")
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [_item(p) for p in pods]}
        return web.Response(body=orjson.dumps(body), content_type="application/json")


def _item(pod: dict[str, Any]) -> dict[str, Any]:
    # List items carry no kind/apiVersion in Go's encoding (empty TypeMeta is omitted).
    view = kubelet_view(pod)
    return {k: v for k, v in view.items() if k not in ("kind", "apiVersion")}


def _own_subresource(path: str) -> str | None:
    return next((sub for prefix, sub in _SUBRESOURCE_PREFIXES if path == prefix or path.startswith(prefix + "/")),
                None)


def _subresource(path: str) -> str:
    """The subresource a request is accounted under: its own, the fine-grained one, or proxy."""
    return _own_subresource(path) or _FINE_GRAINED.get(path) or "proxy"
