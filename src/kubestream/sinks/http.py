"""The HTTP webhook sink, and the HTTP client both live outputs (webhook, OTLP) share.

A live output cannot be read back and has no idempotent key: ``put`` POSTs the payload, and a
failed attempt is retried whole by the delivery worker, so a receiver sees every record at least
once; each record carries a stable id (``record_uid``, ``log.record.uid``) to drop duplicates by.

A payload larger than ``max_request_bytes`` (uncompressed) is sent as several requests, split
between records, always at the same places for the same payload; a failure of any request fails
the attempt, and the retry sends every part again.

Failures, by exception class (the delivery worker never parses messages):

* no answer (refused, reset, timed out, DNS) → ``SinkUnreachableError``;
* the server's certificate is not trusted, or a token/password file cannot be read →
  ``SinkFatalError`` (retrying cannot help);
* 401/403 → ``SinkFatalError``; a redirect (3xx) → ``SinkFatalError`` (configure the final URL);
* webhook: 408, 429 and 5xx → ``SinkRetryableError`` honouring ``Retry-After``; any other 4xx →
  ``SinkRejectedError`` (this payload is refused for good: a dead letter).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from isal import isal_zlib

from kubestream import __version__
from kubestream.config.outputs import HttpSinkSettings
from kubestream.errors import (
    ConfigError,
    SinkError,
    SinkFatalError,
    SinkRejectedError,
    SinkRetryableError,
    SinkUnreachableError,
)
from kubestream.obs.metrics import Metrics

if TYPE_CHECKING:
    from kubestream.config.outputs import OtlpSinkSettings

log = logging.getLogger(__name__)

USER_AGENT = f"kubestream/{__version__}"
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + 15
_GZIP_LEVEL = 1
_DETAIL_BYTES = 300
_HTTPS_PORT = 443
_HTTP_PORT = 80


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date; None if absent
    or unreadable (a date in the past gives 0)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def gzip_bytes(data: bytes) -> bytes:
    """One gzip member (no file name, mtime 0: the same bytes for the same data)."""
    compressor = isal_zlib.compressobj(_GZIP_LEVEL, isal_zlib.DEFLATED, _GZIP_WBITS)
    return compressor.compress(data) + compressor.flush()


def gunzip_bytes(data: bytes) -> bytes:
    """The data of a gzip payload."""
    return isal_zlib.decompress(data, _GZIP_WBITS)


def _read_secret(path: Path, key: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise SinkFatalError(f"{key}: cannot read {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Answer:
    """A server's answer to one request."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpClient:
    """POSTs payloads with the headers, credentials and TLS of a live output's settings.

    The ``aiohttp`` session is made on first use (in the running loop) and closed by ``close``.
    Token and password files are read again for every request, so rotated credentials apply at once.
    """

    def __init__(self, settings: HttpSinkSettings | OtlpSinkSettings, *, url: str, name: str, key: str) -> None:
        if not url:
            raise ConfigError("a URL is required", key=key)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"expected an absolute http:// or https:// URL (got {url!r})", key=key)
        self.settings = settings
        self.url = url
        self.name = name
        self.host = parts.hostname
        self.port = parts.port or (_HTTPS_PORT if parts.scheme == "https" else _HTTP_PORT)
        self.tls = parts.scheme == "https"
        self._ssl = self._ssl_context() if self.tls else None
        if self.tls and settings.insecure_skip_tls_verify:
            log.warning("%s: insecure_skip_tls_verify is set: the certificate of %s is not verified", name, self.host)
        self._session: aiohttp.ClientSession | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        s = self.settings
        try:
            context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
            if s.client_cert_file is not None and s.client_key_file is not None:
                context.load_cert_chain(str(s.client_cert_file), str(s.client_key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the TLS files: {exc}", key=f"{self.name}.ca_file") from exc
        if s.insecure_skip_tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def headers(self, content_type: str, *, compressed: bool) -> dict[str, str]:
        """The request headers (credentials read now)."""
        s = self.settings
        headers = {"User-Agent": USER_AGENT}
        headers.update({k: v.get_secret_value() for k, v in s.headers.items()})
        headers["Content-Type"] = content_type
        if compressed:
            headers["Content-Encoding"] = "gzip"
        if s.bearer_token_file is not None:
            headers["Authorization"] = "Bearer " + _read_secret(s.bearer_token_file, f"{self.name}.bearer_token_file")
        username = getattr(s, "username", None)
        password_file: Path | None = getattr(s, "password_file", None)
        if username is not None and password_file is not None:
            password = _read_secret(password_file, f"{self.name}.password_file")
            token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        return headers

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False)
            self._session = aiohttp.ClientSession(connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s))
        return self._session

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """One POST; ``SinkUnreachableError`` without an answer, ``SinkFatalError`` for an untrusted server."""
        try:
            async with self._session_now().post(self.url, data=body, headers=dict(headers),
                                                allow_redirects=False) as response:
                answer = await response.read()
                return Answer(response.status, dict(response.headers), answer)
        except aiohttp.ClientConnectorCertificateError as exc:
            raise SinkFatalError(f"{self.name}: the TLS certificate of {self.host} is not trusted: "
                                 f"{exc.certificate_error}") from exc
        except aiohttp.ClientSSLError as exc:
            raise SinkFatalError(f"{self.name}: TLS handshake with {self.host}:{self.port} failed: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SinkUnreachableError(f"{self.name}: no answer from {self.url}: {_describe(exc)}") from exc

    async def check_connection(self) -> None:
        """Open a connection (and the TLS handshake, with the client certificate) and close it: no request."""
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self._ssl,
                                        server_hostname=self.host if self._ssl is not None else None),
                timeout=self.settings.timeout_s)
        except ssl.SSLCertVerificationError as exc:
            raise SinkFatalError(f"{self.name}: the TLS certificate of {self.host} is not trusted: "
                                 f"{exc.verify_message}") from exc
        except ssl.SSLError as exc:
            raise SinkFatalError(f"{self.name}: TLS handshake with {self.host}:{self.port} failed: {exc}") from exc
        except (TimeoutError, OSError) as exc:
            raise SinkUnreachableError(f"{self.name}: cannot connect to {self.host}:{self.port}: "
                                       f"{_describe(exc)}") from exc
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass

    async def post_all(self, bodies: list[bytes], content_type: str, *, compressed: bool, key: str,
                       classify: Callable[[Answer, str], SinkError | None],
                       accepted: Callable[[Answer, str], None] | None = None) -> None:
        """POST ``bodies`` in order; the first refused one raises its ``classify`` error (a retry
        of the payload sends every body again: at least once). ``accepted`` sees each 2xx."""
        for part, body in enumerate(bodies, 1):
            answer = await self.post(body, self.headers(content_type, compressed=compressed))
            where = f"{self.name}: POST {self.url} ({key}, part {part}/{len(bodies)})"
            error = classify(answer, where)
            if error is not None:
                raise error
            if accepted is not None:
                accepted(answer, where)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def split_payload(payload: bytes, limit: int,
                  split: Callable[[bytes, int], Iterable[bytes]]) -> tuple[list[bytes], bool]:
    """The request bodies of one payload, each at most ``limit`` bytes before compression and
    compressed as the payload is (gzip or not), and whether they are compressed."""
    compressed = payload.startswith(_GZIP_MAGIC)
    data = gunzip_bytes(payload) if compressed else payload
    if len(data) <= limit:
        return [payload], compressed
    return [gzip_bytes(piece) if compressed else piece for piece in split(data, limit)], compressed


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


def answer_detail(answer: Answer) -> str:
    """The start of a server's answer, one line, for error messages."""
    text = answer.body[:_DETAIL_BYTES].decode("utf-8", "replace")
    return " ".join(text.split())


def classify_common(answer: Answer, where: str) -> SinkError | None:
    """What both outputs decide alike: credentials refused, redirects."""
    status = answer.status
    if status in (401, 403):
        return SinkFatalError(f"{where}: {status}: the credentials were refused: {answer_detail(answer)}")
    if 300 <= status < 400:
        location = answer.headers.get("Location", "")
        return SinkFatalError(f"{where}: {status} redirect to {location!r}: configure the final URL")
    return None


def classify_webhook(answer: Answer, where: str) -> SinkError | None:
    """None for a 2xx answer, else the error to raise."""
    status = answer.status
    if 200 <= status < 300:
        return None
    common = classify_common(answer, where)
    if common is not None:
        return common
    detail = f"{where}: {status}: {answer_detail(answer)}"
    if status in (408, 429) or status >= 500:
        return SinkRetryableError(detail, retry_after=parse_retry_after(answer.headers.get("Retry-After")))
    return SinkRejectedError(detail)


def split_lines(data: bytes, limit: int) -> Iterator[bytes]:
    """``data`` (lines ending in ``\\n``) in pieces of at most ``limit`` bytes, cut after a newline
    (a single longer line is a piece of its own)."""
    start, size = 0, len(data)
    while start < size:
        if size - start <= limit:
            yield data[start:]
            return
        cut = data.rfind(b"\n", start, start + limit)
        if cut < 0:
            cut = data.find(b"\n", start + limit)
            if cut < 0:
                yield data[start:]
                return
        yield data[start:cut + 1]
        start = cut + 1


def split_array(data: bytes, limit: int) -> Iterator[bytes]:
    """A JSON array written one element per line (``[`` e ``,\\n`` e … ``]``) as several arrays of
    at most ``limit`` bytes each (a single larger element is an array of its own)."""
    inner = data.strip()
    if not (inner.startswith(b"[") and inner.endswith(b"]")):
        yield data
        return
    inner = inner[1:-1]
    if not inner.strip():
        yield data
        return
    # ",\n" only ever separates elements: orjson escapes every newline inside a value.
    lines = b"".join(element + b"\n" for element in inner.split(b",\n"))
    for piece in split_lines(lines, max(1, limit - 2)):
        yield b"[" + piece[:-1].replace(b"\n", b",\n") + b"]\n"


class HttpSink:
    """``Sink`` that POSTs each payload (NDJSON or a JSON array from ``WebhookEncoder``) to a URL."""

    def __init__(self, settings: HttpSinkSettings, *, metrics: Metrics | None = None, name: str = "http") -> None:
        self.settings = settings
        self.name = name
        self._metrics = metrics
        self._client = HttpClient(settings, url=settings.url, name=name, key=f"{name}.url")
        self._array = settings.format == "json_array"
        self._content_type = "application/json" if self._array else "application/x-ndjson"

    async def check(self) -> None:
        """A connection (and TLS handshake) to the URL's host; nothing is sent."""
        if self.settings.bearer_token_file is not None:
            _read_secret(self.settings.bearer_token_file, f"{self.name}.bearer_token_file")
        if self.settings.password_file is not None:
            _read_secret(self.settings.password_file, f"{self.name}.password_file")
        await self._client.check_connection()

    def requests(self, payload: bytes) -> list[bytes]:
        """The request bodies of one payload (compressed as configured), in order."""
        split = split_array if self._array else split_lines
        return split_payload(payload, self.settings.max_request_bytes, split)[0]

    async def put(self, key: str, source: Path, size: int) -> None:
        """POST the payload of ``source`` (several requests if it is over ``max_request_bytes``)."""
        payload = await asyncio.to_thread(source.read_bytes)
        split = split_array if self._array else split_lines
        bodies, compressed = split_payload(payload, self.settings.max_request_bytes, split)
        await self._client.post_all(bodies, self._content_type, compressed=compressed, key=key,
                                    classify=classify_webhook)

    @property
    def url(self) -> str:
        return self._client.url

    async def close(self) -> None:
        await self._client.close()


__all__ = [
    "Answer",
    "HttpClient",
    "HttpSink",
    "answer_detail",
    "classify_common",
    "classify_webhook",
    "gunzip_bytes",
    "gzip_bytes",
    "parse_retry_after",
    "split_array",
    "split_lines",
]
