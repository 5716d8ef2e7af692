"""Raw JSON access to the Kubernetes API through the official ``kubernetes.aio`` client.

The official client owns configuration, authentication and transport: kubeconfig (including exec
credential plugins), in-cluster service-account tokens that rotate, TLS, proxies. Its generated
models and informer are not used (see docs/design-kube-access.md for the measurements): requests
go through ``ApiClient.param_serialize`` + ``call_api`` without preloading, and bodies are
decoded with orjson by the caller.

Every failure is mapped onto the ``kubestream.errors`` tree so callers decide retries by class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
from kubernetes.aio import config as _kube_config
from kubernetes.aio.client import ApiClient, Configuration

from kubestream.config.settings import KubeSettings
from kubestream.errors import (
    ApiStatusError,
    ConfigError,
    ExpiredError,
    ForbiddenError,
    KubeConnectionError,
    KubeTlsError,
    TooLargeResourceVersionError,
    TooManyRequestsError,
    UnauthorizedError,
    WatchStreamError,
)
from kubestream.obs.metrics import Metrics
from kubestream.util.gcpause import gc_paused

log = logging.getLogger(__name__)

# The loaders are untyped; one Any-typed handle keeps mypy --strict quiet without ignores.
kube_config: Any = _kube_config

_TOKEN_FILE_REREAD_S = 60.0
"""client-go re-reads a kubeconfig ``tokenFile`` about once a minute; so do we."""

_IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class WatchInactivityError(WatchStreamError):
    """The stream delivered nothing for longer than the inactivity timeout."""


class WatchFrameError(WatchStreamError):
    """The stream carried a frame that is not one whole JSON object (cut or garbage)."""


# -- error mapping ------------------------------------------------------------------------------


def status_error(code: int, status: Mapping[str, Any] | None = None, *,
                 retry_after_header: str | None = None, text: str = "") -> ApiStatusError:
    """The ``kubestream.errors`` class for an error status (HTTP or an in-stream ERROR event).

    ``status`` is the decoded ``Status`` body when there is one; flow-control 429s are plain text.
    """
    status = status or {}
    code = int(status.get("code") or code)
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or text or "")
    raw_details = status.get("details")
    details: Mapping[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    retry_after = _retry_after(retry_after_header, details)
    kwargs: dict[str, Any] = {"retry_after": retry_after, "body": status or text or None}
    if code == 401:
        return UnauthorizedError(code, reason, message, **kwargs)
    if code == 403:
        return ForbiddenError(code, reason, message, **kwargs)
    if code == 410 or reason in ("Expired", "Gone"):
        return ExpiredError(code, reason, message, **kwargs)
    if code == 429:
        return TooManyRequestsError(code, reason, message, **kwargs)
    causes = details.get("causes") or []
    too_large = any(isinstance(c, dict) and c.get("reason") == "ResourceVersionTooLarge" for c in causes)
    if code == 504 and (too_large or "Too large resource version" in message):
        return TooLargeResourceVersionError(code, reason, message, **kwargs)
    return ApiStatusError(code, reason, message, **kwargs)


def _retry_after(header: str | None, details: Mapping[str, Any]) -> float | None:
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass  # an HTTP-date: the API server never sends one; fall back to the body
    seconds = details.get("retryAfterSeconds") if details else None
    return float(seconds) if isinstance(seconds, int | float) and seconds > 0 else None


_GC_PAUSE_BYTES = 64 * 1024


def decode_json(data: bytes) -> Any:
    """orjson.loads, with the cyclic GC paused for large bodies (list pages; see util/gcpause.py).

    Measured 2-3x faster on 2 MB pages and ~3x on a 94 MB unpaged list.
    """
    if not data:
        return None
    if len(data) < _GC_PAUSE_BYTES:
        return orjson.loads(data)
    with gc_paused():
        return orjson.loads(data)


def _decode_status(data: bytes) -> dict[str, Any] | None:
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


# -- failures without an HTTP answer ------------------------------------------------------------


def _tls_reason(error: BaseException) -> str | None:
    """The verifier's reason when ``error`` is a failed TLS handshake, else None."""
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        cert_error: Any = error.certificate_error
        detail = getattr(cert_error, "verify_message", "") or getattr(cert_error, "reason", "") or cert_error
        return f"certificate verify failed: {detail}"
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        inner: Any = error.os_error if isinstance(error, aiohttp.ClientConnectorError) else error
        return str(getattr(inner, "reason", "") or inner)
    return None


def _failure_kind(error: BaseException) -> str:
    """The ``kubestream_api_errors_total{kind}`` label: tls, timeout or connection."""
    if _tls_reason(error) is not None:
        return "tls"
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    return "connection"


# -- credentials --------------------------------------------------------------------------------


class _CredentialRefresher:
    """Keeps the bearer token fresh for kubeconfig users with an exec plugin or a tokenFile.

    The aio kubeconfig loader runs an exec plugin once and reads ``tokenFile`` once; client-go
    re-runs the plugin when its token expires (or on a 401) and re-reads the file every minute.
    This refresher is installed as the configuration's ``refresh_api_key_hook``, which the
    ApiClient awaits before every request, so tokens change without new connections.
    """

    def __init__(self, loader: Any, configuration: Configuration) -> None:
        self._loader = loader
        self._configuration = configuration
        user: Any = loader._user  # a ConfigNode (or None): the user section of the context
        self._exec = user is not None and "exec" in user
        self._token_file: str | None = None
        if user is not None and not self._exec and "tokenFile" in user:
            base = os.path.dirname(os.path.abspath(user.path)) if getattr(user, "path", None) else ""
            self._token_file = os.path.join(base, user["tokenFile"])
        self._file_read_at = time.monotonic()

    @property
    def active(self) -> bool:
        return self._exec or self._token_file is not None

    async def hook(self, configuration: Configuration) -> None:
        await self.refresh(force=False)

    async def refresh(self, *, force: bool) -> None:
        if self._exec:
            if force and hasattr(self._loader, "exec_plugin_expiry"):
                del self._loader.exec_plugin_expiry
            # A no-op while the plugin's token is unexpired (the loader checks its expiry).
            await self._loader.load_from_exec_plugin()
            self._set(self._loader.token)
        elif self._token_file is not None:
            now = time.monotonic()
            if force or now - self._file_read_at >= _TOKEN_FILE_REREAD_S:
                self._file_read_at = now
                token = await asyncio.to_thread(_read_text, self._token_file)
                if token:
                    self._set(f"Bearer {token}")

    def _set(self, token: str | None) -> None:
        if token:
            self._configuration.api_key["BearerToken"] = token


class _InClusterRefresher:
    """Forces a re-read of the rotating service-account token after a 401."""

    def __init__(self, configuration: Configuration) -> None:
        self._configuration = configuration

    async def refresh(self, *, force: bool) -> None:
        token = await asyncio.to_thread(_read_text, _IN_CLUSTER_TOKEN)
        if token:
            self._configuration.api_key["BearerToken"] = f"bearer {token}"


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


async def _configure(settings: KubeSettings, configuration: Configuration) -> _CredentialRefresher | _InClusterRefresher | None:
    """Fill ``configuration`` from kubeconfig or in-cluster config; return the token refresher."""
    # Blocking stat/expanduser are fine here: once at start-up, before any traffic.
    in_cluster = (not settings.kubeconfig and "KUBERNETES_SERVICE_HOST" in os.environ
                  and os.path.exists(_IN_CLUSTER_TOKEN))  # noqa: ASYNC240
    try:
        if in_cluster:
            # try_refresh_token: the bound token rotates (default hourly); the hook re-reads it.
            kube_config.load_incluster_config(client_configuration=configuration, try_refresh_token=True)
            return _InClusterRefresher(configuration)
        path = settings.kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")  # noqa: ASYNC240
        loader = await kube_config.load_kube_config(
            config_file=path, context=settings.context, client_configuration=configuration,
            persist_config=False)
    except (kube_config.ConfigException, OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot load Kubernetes client configuration: {e}", key="kube.kubeconfig") from e
    token = configuration.api_key.get("BearerToken")
    if isinstance(token, str):
        # The aio loader keeps a tokenFile's trailing newline, which aiohttp refuses in a header.
        configuration.api_key["BearerToken"] = token.strip()
    refresher = _CredentialRefresher(loader, configuration)
    if not refresher.active:
        return None
    hooked: Any = configuration
    hooked.refresh_api_key_hook = refresher.hook
    return refresher


# -- the client ---------------------------------------------------------------------------------


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def kube_verb(method: str, path: str) -> str:
    """The Kubernetes verb of a request (``list`` vs ``get``, ...), the label of
    ``kubestream_api_requests_total`` and what RBAC rules speak of."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # /namespaces/<ns>/<plural>[/<name>]
    named = len(rest) >= 2
    if method in _METHOD_VERBS:
        return _METHOD_VERBS[method]
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return "get" if named else "list"


class KubeClient:
    """Raw JSON requests and watch streams with the official client's auth and transport."""

    def __init__(self, api_client: ApiClient, settings: KubeSettings, *, metrics: Metrics | None = None,
                 refresher: _CredentialRefresher | _InClusterRefresher | None = None) -> None:
        self._api = api_client
        self._settings = settings
        self._metrics = metrics
        self._refresher = refresher
        self._tls_error: str | None = None

    @property
    def tls_error(self) -> str | None:
        """Why the last request failed its TLS handshake; None once any request got an answer.

        The agent's readiness reports it: a wrong CA or server name never fixes itself, but a
        rotated certificate does, so requests keep being retried (slowly) meanwhile."""
        return self._tls_error

    @classmethod
    async def create(cls, settings: KubeSettings, *, metrics: Metrics | None = None) -> KubeClient:
        """Load configuration (kubeconfig or in-cluster) and build a client."""
        configuration = Configuration()
        # No hidden retries: the reflector does its own backoff and must see every failure.
        configuration.retries = None
        refresher = await _configure(settings, configuration)
        return cls(ApiClient(configuration), settings, metrics=metrics, refresher=refresher)

    @property
    def api_client(self) -> ApiClient:
        """The underlying ``kubernetes.aio`` ApiClient (for typed calls such as Leases)."""
        return self._api

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    async def close(self) -> None:
        api: Any = self._api
        await api.close()

    # -- requests --------------------------------------------------------------------------------

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request bound handed to aiohttp
    ) -> Any:
        """Send one request and return its decoded JSON body (None for an empty body).

        Raises an ``ApiStatusError`` subclass for error statuses, ``KubeConnectionError`` when the
        server cannot be reached or the request times out.
        """
        method = method.upper()
        verb = kube_verb(method, path)
        client_timeout = aiohttp.ClientTimeout(total=timeout or self._settings.request_timeout_s)
        for attempt in (1, 2):
            resp = await self._send(verb, method, path, query, body, content_type, client_timeout)
            try:
                data = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as e:
                self._count(verb, "error")
                self._count_failure(_failure_kind(e))
                raise KubeConnectionError(f"{method} {path}: reading the response failed: {e!r}") from e
            finally:
                resp.release()
            self._count(verb, str(resp.status))
            if resp.status < 300:
                return decode_json(data)
            error = status_error(resp.status, _decode_status(data), retry_after_header=resp.headers.get("Retry-After"),
                                 text=data[:512].decode("utf-8", "replace"))
            if isinstance(error, UnauthorizedError) and attempt == 1 and await self._refresh_credentials():
                continue
            raise error
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def stream(self, path: str, query: Mapping[str, str], *,
                     timeout: float | None = None,  # noqa: ASYNC109 - the inactivity bound
                     ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a watch (or any line-delimited stream) and yield an iterator over its lines.

        ``timeout`` is the inactivity bound: when no byte arrives for that long the iterator raises
        ``WatchInactivityError``. A stream that ends in the middle of a line raises
        ``WatchFrameError``; a broken connection raises ``WatchStreamError``. A clean end of the
        stream just ends the iteration. Error statuses raise before the first line.
        """
        connect = self._settings.request_timeout_s
        # No total bound: a watch lives for minutes; liveness is the inactivity timeout's job.
        client_timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)
        for attempt in (1, 2):
            resp = await self._send("watch", "GET", path, query, None, None, client_timeout)
            if resp.status == 200:
                break
            try:
                data = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as e:
                data = repr(e).encode()
            finally:
                resp.release()
            self._count("watch", str(resp.status))
            error = status_error(resp.status, _decode_status(data), retry_after_header=resp.headers.get("Retry-After"),
                                 text=data[:512].decode("utf-8", "replace"))
            if isinstance(error, UnauthorizedError) and attempt == 1 and await self._refresh_credentials():
                continue
            raise error
        self._count("watch", "200")
        try:
            yield _lines(resp.content, timeout)
        finally:
            resp.release()
            resp.close()

    async def _send(self, verb: str, method: str, path: str, query: Mapping[str, str] | None, body: Any,
                    content_type: str | None, client_timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            _, url, header_params, serialized_body, _ = await self._api.param_serialize(
                method=method, resource_path=path, query_params=list((query or {}).items()),
                header_params=headers, body=body, auth_settings=["BearerToken"])
            rest_response = await self._api.call_api(
                method, url, header_params=header_params, body=serialized_body,
                _request_timeout=client_timeout, _preload_content=False)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self._count(verb, "error")
            self._count_failure(_failure_kind(e))
            reason = _tls_reason(e)
            if reason is not None:
                self._tls_error = f"TLS handshake with {self.host} failed: {reason}"
                raise KubeTlsError(
                    f"{self._tls_error} (check the cluster's certificate-authority and server name in "
                    "the kubeconfig; retrying with backoff, as a rotated certificate fixes itself)",
                    host=self.host, reason=reason) from e
            raise KubeConnectionError(f"{method} {path}: {e!r}") from e
        self._tls_error = None  # an answer (any status) means the handshake worked
        response: aiohttp.ClientResponse = rest_response.response
        return response

    async def _refresh_credentials(self) -> bool:
        """Force a token refresh after a 401; True if there was something to refresh."""
        if self._refresher is None:
            return False
        try:
            await self._refresher.refresh(force=True)
        except Exception as e:  # a failing plugin must surface as the 401, not as a crash
            log.warning("refreshing Kubernetes credentials after 401 failed: %r", e)
            return False
        return True

    def _count(self, verb: str, code: str) -> None:
        if self._metrics is not None:
            self._metrics.api_requests.labels(verb=verb, code=code).inc()

    def _count_failure(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.api_errors.labels(kind=kind).inc()


async def _lines(content: aiohttp.StreamReader, inactivity_s: float | None) -> AsyncIterator[bytes]:
    """Split a chunked body on ``\\n`` (the apiserver's json.Encoder frames), with no line limit."""
    buf = bytearray()
    while True:
        try:
            async with asyncio.timeout(inactivity_s):
                chunk = await content.readany()
        except TimeoutError as e:
            raise WatchInactivityError(f"no data for {inactivity_s:.0f}s") from e
        except (aiohttp.ClientError, ConnectionError) as e:
            raise WatchStreamError(f"watch connection broke: {e!r}") from e
        if not chunk:
            if buf.strip():
                raise WatchFrameError(f"stream ended inside a frame ({len(buf)} bytes without newline)")
            return
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            line = bytes(buf[start:end])
            start = end + 1
            if line.strip():
                yield line
        if start:
            del buf[:start]
