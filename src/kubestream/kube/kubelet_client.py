"""A minimal client of the kubelet's read-only pod list: ``GET https://<node>:<port>/pods``.

The kubelet serves ``/pods`` (pkg/kubelet/server/server.go ``getPods``) as a v1 ``PodList`` of
the pods it runs, static pods under their own (hash) UID. It authenticates a bearer token and
authorizes ``get`` on ``nodes/pods`` (falling back to ``nodes/proxy``) through the API server
(webhook mode, pkg/kubelet/server/auth.go); 401 and 403 are its answers to a bad token or a
missing grant.

Its address is the Node's: ``status.addresses`` InternalIP and
``status.daemonEndpoints.kubeletEndpoint.Port`` (what ``kubectl get --raw
/api/v1/nodes/<node>/proxy/pods`` resolves too). Kubelet writes both on every node status
update (pkg/kubelet/nodestatus/setters.go ``NodeAddress``, ``DaemonEndpoints``), so they can
change while the agent runs (a new InternalIP after a NIC or DHCP change, a kubelet restarted with
another ``--port``): ``KubeletClient.retarget`` switches to the new address. Every failure is a ``KubeletError`` with a short
``reason`` (the ``kubestream_kubelet_errors_total`` label) and a one-line message.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

import kubestream
from kubestream.config.settings import KubeletSettings
from kubestream.errors import KubeError
from kubestream.kube.client import KubeClient, decode_json
from kubestream.kube.objects import NodeInfo

_TOKEN_REREAD_S = 60.0
"""Projected service-account tokens rotate; client-go re-reads token files about once a minute."""

DEFAULT_KUBELET_PORT = 10250
"""The kubelet's default ``--port`` (used when a Node publishes no ``kubeletEndpoint``)."""


class KubeletError(KubeError):
    """A kubelet read failed; ``reason`` is one of unauthorized, forbidden, tls, connection,
    timeout, server_error, client_error, bad_response, no_address, credentials."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def kubelet_ssl_context(settings: KubeletSettings) -> ssl.SSLContext:
    """Verify against ``ca_file`` (hostname included) unless ``insecure_skip_tls_verify``."""
    if settings.insecure_skip_tls_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    except (OSError, ssl.SSLError) as e:
        raise KubeletError("credentials", f"cannot load logs.kubelet.ca_file {settings.ca_file}: {e}") from e


def _read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise KubeletError("credentials", f"cannot read logs.kubelet.token_file {path}: {e}") from e


def kubelet_url(ip: str, port: int) -> str:
    """``https://<ip>:<port>`` (IPv6 bracketed; port 0 or out of range: the default 10250)."""
    port = port if 0 < port < 65536 else DEFAULT_KUBELET_PORT
    host = f"[{ip}]" if ":" in ip else ip
    return f"https://{host}:{port}"


def node_kubelet_url(node: dict[str, Any]) -> str | None:
    """``https://<InternalIP>:<kubeletEndpoint.Port>`` of a Node object, or None without an InternalIP."""
    status = node.get("status") if isinstance(node.get("status"), dict) else {}
    assert isinstance(status, dict)
    addresses = status.get("addresses") if isinstance(status.get("addresses"), list) else []
    assert isinstance(addresses, list)
    ip = next((a.get("address") for a in addresses
               if isinstance(a, dict) and a.get("type") == "InternalIP" and a.get("address")), None)
    if not isinstance(ip, str):
        return None
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    port = endpoint.get("Port") if isinstance(endpoint, dict) else None
    return kubelet_url(ip, port if isinstance(port, int) else 0)


def node_info_kubelet_url(node: NodeInfo) -> str | None:
    """The same URL from a cached (decoded) Node, or None without an InternalIP."""
    ip = node.addresses.get("InternalIP")
    return kubelet_url(ip, node.kubelet_port) if ip else None


async def resolve_kubelet_url(client: KubeClient, node_name: str) -> str:
    """The kubelet URL published in the Node's status: one list of ``metadata.name=<node>``
    (the node agent may list nodes already; a single-object GET would need another grant)."""
    page = await client.request_json("GET", "/api/v1/nodes",
                                     query={"fieldSelector": f"metadata.name={node_name}", "limit": "1"})
    items = page.get("items") if isinstance(page, dict) else None
    node = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else None
    if node is None:
        raise KubeletError("no_address", f"node {node_name!r} not found: cannot find its kubelet (set logs.kubelet.url)")
    url = node_kubelet_url(node)
    if url is None:
        raise KubeletError("no_address", f"node {node_name!r} has no InternalIP address (set logs.kubelet.url)")
    return url


class KubeletClient:
    """``GET /pods`` of one kubelet over HTTPS with a bearer token; open once, reuse the connection."""

    def __init__(self, settings: KubeletSettings, url: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self.url = url.rstrip("/")
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._token_read_at = 0.0

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def pods(self) -> list[dict[str, Any]]:
        """The raw items of the kubelet's PodList; raises ``KubeletError``."""
        body = await self._get("/pods")
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise KubeletError("bad_response", f"{self.url}/pods did not answer a PodList")
        return [item for item in items if isinstance(item, dict)]

    async def _get(self, path: str) -> Any:
        session = self._open()
        headers = {"Authorization": f"Bearer {await self._bearer()}", "Accept": "application/json",
                   "User-Agent": f"kubestream/{kubestream.__version__}"}
        timeout = aiohttp.ClientTimeout(total=self._settings.request_timeout_s)
        try:
            async with session.get(self.url + path, headers=headers, timeout=timeout) as response:
                data = await response.read()
                status = response.status
        except aiohttp.ClientConnectorCertificateError as e:
            raise KubeletError("tls", f"{self.url}: certificate verify failed: {e.certificate_error}") from e
        except (aiohttp.ClientSSLError, ssl.SSLError) as e:
            raise KubeletError("tls", f"{self.url}: TLS handshake failed: {e}") from e
        except TimeoutError as e:
            raise KubeletError("timeout", f"{self.url}{path}: no answer within "
                                          f"{self._settings.request_timeout_s:g}s") from e
        except (aiohttp.ClientError, OSError) as e:
            raise KubeletError("connection", f"{self.url}: {e}") from e
        if status != 200:
            raise _status_error(status, self.url + path, data)
        try:
            return decode_json(data)
        except ValueError as e:
            raise KubeletError("bad_response", f"{self.url}{path}: undecodable JSON ({len(data)} bytes)") from e

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=kubelet_ssl_context(self._settings), limit=2)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def _bearer(self) -> str:
        now = self._clock()
        if self._token is None or now - self._token_read_at >= _TOKEN_REREAD_S:
            self._token = await asyncio.to_thread(_read_token, self._settings.token_file)
            self._token_read_at = now
        return self._token

    async def retarget(self, url: str) -> bool:
        """Send the next requests to ``url``; the pooled connections to the old address are closed
        (their peer may be another host by now). Returns whether the address changed."""
        url = url.rstrip("/")
        if url == self.url:
            return False
        self.url = url
        await self.close()
        return True

    def forget_token(self) -> None:
        """Re-read the token file before the next request (after a 401: it may have rotated)."""
        self._token = None


def _status_error(status: int, url: str, data: bytes) -> KubeletError:
    text = data[:200].decode("utf-8", "replace").strip().splitlines()
    detail = text[0] if text else ""
    reason = {401: "unauthorized", 403: "forbidden"}.get(status)
    if reason is None:
        reason = "server_error" if status >= 500 else "client_error"
    return KubeletError(reason, f"{url}: HTTP {status} {detail}".rstrip())
