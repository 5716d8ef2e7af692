"""Settings of the live outputs: OTLP/HTTP (OpenTelemetry logs) and a generic HTTP webhook.

Unlike the archive sinks these destinations cannot be read back, so they deliver at least once:
every record carries a stable id (``log.record.uid`` / ``record_uid``) so a receiver can drop the
duplicates a retry produces. Header values go through the loader's ``${ENV}`` interpolation like
every other string of the configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from kubestream.config.settings import _Section

OTLP_DEFAULT_ENDPOINT = "http://127.0.0.1:4318/v1/logs"
"""An OpenTelemetry Collector's OTLP/HTTP receiver on the same host, logs signal."""

_DEFAULT_TIMEOUT_S = 30.0
_OTLP_MAX_REQUEST_BYTES = 4 * 1024 * 1024
_HTTP_MAX_REQUEST_BYTES = 1024 * 1024
_MIN_REQUEST_BYTES = 1024


def _http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL, or None (the empty string is "unset")."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"expected an absolute http:// or https:// URL (got {url!r})"
    return None


class _HttpClientSettings(_Section):
    """What the HTTP outputs share: headers, bearer token, TLS, timeout."""

    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Extra request headers, e.g. ``{X-Scope-OrgID: tenant-1}``; values may use ``${ENV}``
    references (default: none). Never logged."""
    bearer_token_file: Path | None = None
    """File holding a token sent as ``Authorization: Bearer <token>``, re-read for every request so
    rotated tokens are picked up (default: unset, no token)."""
    ca_file: Path | None = None
    """PEM bundle of the CAs trusted for an ``https://`` endpoint (default: the system trust store)."""
    client_cert_file: Path | None = None
    """PEM client certificate for mutual TLS (needs ``client_key_file``; default: unset)."""
    client_key_file: Path | None = None
    """PEM private key of ``client_cert_file`` (default: unset)."""
    insecure_skip_tls_verify: bool = False
    """Do not verify the server's certificate (default: false); warned about at start."""
    timeout_s: float = Field(_DEFAULT_TIMEOUT_S, gt=0)
    """Timeout of one request, connecting included (default: 30)."""

    @model_validator(mode="after")
    def _client_certificate_pair(self) -> _HttpClientSettings:
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("client_cert_file and client_key_file go together")
        return self


class OtlpSinkSettings(_HttpClientSettings):
    """OTLP/HTTP logs export (``POST <endpoint>`` of an ExportLogsServiceRequest) to an
    OpenTelemetry Collector, Loki, Elasticsearch or any OTLP/HTTP receiver."""

    endpoint: str = OTLP_DEFAULT_ENDPOINT
    """Full URL of the logs endpoint, path included (default: ``http://127.0.0.1:4318/v1/logs``)."""
    encoding: Literal["protobuf", "json"] = "protobuf"
    """Request body: binary protobuf (``application/x-protobuf``) or its JSON mapping
    (``application/json``) (default: protobuf)."""
    compression: Literal["gzip", "none"] = "gzip"
    """``Content-Encoding`` of the body (default: gzip, which every OTLP/HTTP server accepts)."""
    max_request_bytes: int = Field(_OTLP_MAX_REQUEST_BYTES, ge=_MIN_REQUEST_BYTES)
    """A payload whose uncompressed body is larger is sent as several requests, split between log
    records (default: 4194304, 4 MiB)."""

    @field_validator("endpoint")
    @classmethod
    def _absolute_url(cls, endpoint: str) -> str:
        problem = _http_url_problem(endpoint) if endpoint else "required"
        if problem:
            raise ValueError(problem)
        return endpoint


class HttpSinkSettings(_HttpClientSettings):
    """A generic HTTP webhook: ``POST <url>`` of the records as NDJSON or a JSON array."""

    url: str = ""
    """The URL records are posted to (required when the destination is used; default: unset)."""
    format: Literal["ndjson", "json_array"] = "ndjson"
    """Body: one JSON record per line (``application/x-ndjson``) or one JSON array
    (``application/json``) (default: ndjson)."""
    compression: Literal["gzip", "none"] = "none"
    """``Content-Encoding`` of the body (default: none)."""
    username: str | None = None
    """Basic authentication user (needs ``password_file``; default: unset)."""
    password_file: Path | None = None
    """File holding the basic authentication password, re-read for every request (default: unset)."""
    max_request_bytes: int = Field(_HTTP_MAX_REQUEST_BYTES, ge=_MIN_REQUEST_BYTES)
    """A payload whose uncompressed body is larger is sent as several requests split at record
    boundaries; a retry re-sends every part (default: 1048576, 1 MiB)."""

    @field_validator("url")
    @classmethod
    def _absolute_url(cls, url: str) -> str:
        problem = _http_url_problem(url)
        if problem:
            raise ValueError(problem)
        return url

    @model_validator(mode="after")
    def _one_authentication(self) -> HttpSinkSettings:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("username and password_file go together")
        if self.username is not None and self.bearer_token_file is not None:
            raise ValueError("basic authentication (username) or bearer_token_file, not both")
        return self
