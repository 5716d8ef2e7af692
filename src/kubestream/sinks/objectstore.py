"""The object-store sink shared by S3, Google Cloud Storage and Azure Blob, built on obstore.

obstore gives the three stores one API (``put_async``, ``list``, ``get_async``, ``delete_async``),
so upload, write check, read-back and error classification live here once; a provider only
builds its store and names its fatal error codes (``s3.S3Sink``, ``GCSSink``, ``AzureSink``).

One ``put`` is ONE attempt: obstore's own retries are switched off because the delivery worker
owns the retry loop. Every key is written with a plain PUT or, above the multipart threshold, a
multipart upload (S3/GCS multipart, Azure block list); each replaces the whole object, so
replaying a key after a crash is idempotent.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import AzureStore, GCSStore

from kubestream.config.settings import AzureSinkSettings, GCSSinkSettings
from kubestream.errors import (
    ConfigError,
    SinkFatalError,
    SinkRejectedError,
    SinkRetryableError,
    SinkUnreachableError,
)
from kubestream.obs.metrics import Metrics

if TYPE_CHECKING:
    from obstore.store import AzureConfig, GCSConfig, ObjectStore

# Error codes (S3 and GCS XML API, Azure Blob, GCS JSON API reasons) a later attempt can fix.
# Credentials from IRSA, credential_process or instance metadata are refreshed by obstore, so
# even ExpiredToken heals by itself.
RETRYABLE_CODES = frozenset({
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed",
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "TooManyRequestsException",
    "ExpiredToken", "TokenRefreshRequired", "OperationAborted", "NoSuchUpload", "InternalFailure",
    "ServerBusy", "OperationTimedOut", "rateLimitExceeded", "userRateLimitExceeded", "backendError",
})
# Codes that refuse one object for good (its size, its name, its metadata) while others go
# through: that batch becomes a dead letter (pipeline.delivery), the agent goes on.
REJECTED_CODES = frozenset({
    "EntityTooLarge", "KeyTooLongError", "MetadataTooLarge", "InvalidObjectName", "RequestBodyTooLarge",
    "BlobTooLarge", "BlockCountExceedsLimit", "InvalidBlobOrBlock", "InvalidDigest", "BadDigest",
})
REJECTED_STATUSES = frozenset({413, 414})
THROTTLE_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
    "TooManyRequestsException", "ServiceUnavailable", "ServerBusy", "rateLimitExceeded",
    "userRateLimitExceeded",
})
# obstore exposes no response headers and its own retries ignore Retry-After (measured, see
# docs/design-s3.md), so a server's hint is invisible. For throttling, waiting at least this
# long (AWS's guidance for SlowDown) replaces the hint.
THROTTLE_RETRY_AFTER_S = 1.0
_CLOSE_GRACE_S = 0.05
_STATUS_RE = re.compile(r"status code: (\d{3})")
# XML error documents (S3, the GCS XML API, Azure) carry <Code>; GCS's JSON API a "reason".
_CODE_RE = re.compile(r"<Code>([^<]+)</Code>|\"reason\"\s*:\s*\"([^\"]+)\"")
_MESSAGE_RE = re.compile(r"<Message>([^<]*)</Message>|\"message\"\s*:\s*\"([^\"]*)\"")
_DEBUG_SOURCE = "\n\nDebug source"
_T = TypeVar("_T")


def one_line(text: str) -> str:
    """``text`` with all whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def _describe_transport_failure(head: str) -> str:
    """The first part of an obstore error without a status: connect/IO/timeout failures."""
    head = head.split(" - ", 1)[-1] if " - " in head else head
    return one_line(head)[:200] or "transport error"


def _first_group(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    return next((group for group in match.groups() if group is not None), None)


SinkFailure = SinkRetryableError | SinkRejectedError | SinkFatalError


def classify(exc: BaseException, where: str, hints: Mapping[str, str]) -> SinkFailure:
    """The sink error for a failed obstore call, from the HTTP status and the store's error code.

    obstore gives only coarse classes (PermissionDenied, NotFound, Generic), so the status and
    the error code of the response body are read from its message. No status at all means the
    request never got an answer (refused, reset, timed out): unreachable, always retryable.
    A code or status that refuses this one object (``REJECTED_CODES``, 413, 414) is a rejection;
    other 4xx are fatal. ``hints`` maps fatal codes to the cause an operator should fix.
    """
    # The "Debug source" tail repeats the body with escaped quotes: read the summary only.
    head = str(exc).split(_DEBUG_SOURCE, 1)[0]
    status_match = _STATUS_RE.search(head)
    if status_match is None:
        return SinkUnreachableError(f"{where}: no answer from the server ({_describe_transport_failure(head)})")
    status = int(status_match.group(1))
    code = _first_group(_CODE_RE.search(head))
    # Azure appends "RequestId:… Time:…" lines to its message: keep the sentence only.
    message = (_first_group(_MESSAGE_RE.search(head)) or "").strip().split("\n", 1)[0]
    detail = hints.get(code or "") or message
    label = f"{code} (HTTP {status})" if code else f"HTTP {status}"
    line = one_line(f"{where}: {label}: {detail}".rstrip(": "))
    retryable = code in RETRYABLE_CODES or status >= 500 or status in (408, 429)
    if not retryable and (code in REJECTED_CODES or status in REJECTED_STATUSES):
        return SinkRejectedError(line)
    if not retryable:
        return SinkFatalError(line)
    throttled = code in THROTTLE_CODES or status in (429, 503)
    return SinkRetryableError(line, retry_after=THROTTLE_RETRY_AFTER_S if throttled else None)


def validated_endpoint(url: str | None, key: str) -> str | None:
    """``url`` without a trailing slash, or ``ConfigError`` (naming ``key``) if it is no http(s) URL."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not an http(s) URL", key=key)
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ConfigError(f"{url!r}: {exc}", key=key) from exc
    return url.rstrip("/")


def client_options(endpoint: str, attempt_timeout_s: float) -> dict[str, Any]:
    """obstore's HTTP client options: per-request timeouts as a backstop, http only if asked."""
    timeout = timedelta(seconds=attempt_timeout_s)
    return {
        # A backstop for each HTTP request; the whole attempt is bounded in put().
        "timeout": timeout,
        "connect_timeout": min(timedelta(seconds=10), timeout),
        "allow_http": endpoint.startswith("http://"),
    }


# One attempt per put(): the delivery worker owns backoff and Retry-After.
NO_RETRIES: dict[str, Any] = {"max_retries": 0, "retry_timeout": timedelta(0)}


@dataclass(frozen=True)
class UploadOptions:
    """How objects are written: bounds of one attempt, multipart sizes, object attributes."""

    attempt_timeout_s: float
    multipart_threshold_bytes: int
    multipart_chunk_bytes: int
    attributes: dict[str, str] = field(default_factory=dict)


class ObjectStoreSink:
    """Uploads spool files to an obstore store (implements ``Sink`` and ``SinkReader``).

    Subclasses set ``name``, ``where`` (the bucket/container and endpoint, the start of every
    error line), ``fatal_hints`` and the store, then call ``_setup``.
    """

    name = "objectstore"
    fatal_hints: Mapping[str, str] = {}

    def _setup(self, store: ObjectStore, where: str, options: UploadOptions, *, prefix: str,
               metrics: Metrics | None) -> None:
        self._store = store
        self.where = where
        self._options = options
        self._prefix = prefix.strip("/")
        # Delivery counts batches, bytes and errors per sink; nothing store-specific to add yet.
        self._metrics = metrics

    def _classify(self, exc: BaseException, where: str) -> SinkFailure:
        return classify(exc, where, self.fatal_hints)

    def _probe_key(self) -> str:
        name = f".kubestream-write-check-{uuid.uuid4().hex}"
        return f"{self._prefix}/{name}" if self._prefix else name

    async def check(self) -> None:
        """Write and delete a probe object under the prefix; the error names the cause.

        The probe carries the configured attributes (S3 storage class, encryption), so a wrong
        KMS key or an unsupported storage class is found at start, not at the first batch.
        ``SinkFatalError`` when no wait can help (credentials, bucket, a refused probe);
        ``SinkRetryableError`` (``SinkUnreachableError`` without an answer) when one may.
        """
        key = self._probe_key()
        timeout = self._options.attempt_timeout_s
        try:
            async with asyncio.timeout(timeout):
                await obstore.put_async(self._store, key, b"kubestream write check\n",
                                        attributes=self._options.attributes or None, use_multipart=False)
                await obstore.delete_async(self._store, key)
        except TimeoutError as exc:
            raise SinkUnreachableError(f"{self.where}: write check failed: no answer within {timeout:g}s") from exc
        except (ObstoreError, OSError) as exc:
            error = self._classify(exc, f"{self.where}: write check failed")
            if isinstance(error, SinkRetryableError):
                raise error from exc
            # A refused probe (a few bytes, our own name) is a setting no wait will change.
            raise SinkFatalError(str(error)) from exc

    async def put(self, key: str, source: Path, size: int) -> None:
        """Upload ``source`` as ``key`` in one attempt bounded by ``attempt_timeout_s``."""
        if not key or key.startswith("/"):
            raise SinkFatalError(f"{self.where}: refusing object key {key!r}")
        try:
            # One stat of a local, already fsynced file: not worth a thread hop.
            actual = os.stat(source).st_size
        except OSError as exc:
            raise SinkFatalError(f"{self.where}: spool file {source} unreadable: {exc.strerror or exc}") from exc
        if actual != size:
            raise SinkFatalError(f"{self.where}: spool file {source} has {actual} bytes, expected {size}")
        await self._bounded(self._upload(key, source, size), f"{self.where}: uploading {key}")

    async def _upload(self, key: str, source: Path, size: int) -> None:
        options = self._options
        # obstore reads the file itself (in Rust, chunk by chunk), never the whole file in Python.
        await obstore.put_async(
            self._store,
            key,
            source,
            attributes=options.attributes or None,
            use_multipart=size > options.multipart_threshold_bytes,
            chunk_size=options.multipart_chunk_bytes,
            # Parts of one object in parallel; a few are enough to fill a node's uplink.
            max_concurrency=4,
        )

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys of the objects under ``prefix`` (a "folder"; path-segment semantics, all pages)."""
        folder = prefix.strip("/") or None
        metas = await self._bounded(obstore.list(self._store, prefix=folder, chunk_size=1000).collect_async(),
                                    f"{self.where}: listing {prefix!r}")
        return [str(meta["path"]) for meta in metas]

    async def get(self, key: str) -> bytes:
        """The bytes of one object (one attempt, bounded like an upload)."""
        async def read() -> bytes:
            answer = await obstore.get_async(self._store, key)
            return bytes(await answer.bytes_async())

        return await self._bounded(read(), f"{self.where}: reading {key}")

    async def _bounded(self, call: Awaitable[_T], where: str) -> _T:
        """Await ``call`` within ``attempt_timeout_s``, turning failures into sink errors."""
        timeout = self._options.attempt_timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await call
        except TimeoutError as exc:
            raise SinkUnreachableError(f"{where}: no answer within {timeout:g}s") from exc
        except (ObstoreError, OSError) as exc:
            raise self._classify(exc, where) from exc

    async def close(self) -> None:
        """Let obstore's runtime threads finish their last call into Python.

        obstore completes an awaitable from a Rust worker thread through the event loop's
        self-pipe; that thread still re-takes the GIL *after* waking the loop. If the
        interpreter finalizes in that instant the thread is killed inside Rust and the process
        aborts (exit 134, seen after ``validate --check-sinks``). An idle pass of the loop
        releases the GIL so the thread can leave Python first.
        """
        await asyncio.sleep(_CLOSE_GRACE_S)


# --- Google Cloud Storage --------------------------------------------------------------------

GCS_DEFAULT_ENDPOINT = "https://storage.googleapis.com"
# obstore writes through the GCS XML API, whose error codes are S3's.
_GCS_FATAL_HINTS = {
    "AccessDenied": "access denied: the credentials lack storage.objects.create/delete on this bucket",
    "InvalidSecurity": "the credentials were rejected (bad or expired service-account key)",
    "AuthenticationRequired": "the request carried no usable credentials",
    "NoSuchBucket": "the bucket does not exist",
    "UserProjectAccountProblem": "the project that pays for this bucket has a billing problem",
}


class GCSSink(ObjectStoreSink):
    """Uploads spool files to ``gs://<bucket>/<key>`` (``sinks.base.Sink`` and ``SinkReader``)."""

    name = "gcs"
    fatal_hints = _GCS_FATAL_HINTS

    def __init__(self, settings: GCSSinkSettings, *, prefix: str = "", metrics: Metrics | None = None) -> None:
        if not settings.bucket:
            raise ConfigError("the bucket name is required", key="sink.gcs.bucket")
        self.settings = settings
        endpoint = validated_endpoint(settings.endpoint_url, "sink.gcs.endpoint_url")
        self.endpoint = endpoint or GCS_DEFAULT_ENDPOINT
        config: GCSConfig = {}
        if endpoint is not None:
            config["base_url"] = endpoint
        if settings.service_account_path is not None:
            config["service_account"] = str(settings.service_account_path)
        if settings.application_credentials_path is not None:
            config["application_credentials"] = str(settings.application_credentials_path)
        try:
            store = GCSStore(settings.bucket, config=config,
                             client_options=client_options(self.endpoint, settings.attempt_timeout_s),  # type: ignore[arg-type]
                             retry_config=NO_RETRIES)  # type: ignore[arg-type]
        except (ObstoreError, ValueError, OSError) as exc:
            raise ConfigError(one_line(str(exc).split(_DEBUG_SOURCE, 1)[0]), key="sink.gcs") from exc
        options = UploadOptions(settings.attempt_timeout_s, settings.multipart_threshold_bytes,
                                settings.multipart_chunk_bytes)
        self._setup(store, f"gcs sink: bucket {settings.bucket!r} at {self.endpoint}", options,
                    prefix=prefix, metrics=metrics)


# --- Azure Blob Storage ----------------------------------------------------------------------

# Azurite's fixed development account, published by Microsoft for the emulator.
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
EMULATOR_BLOB_URL = "http://127.0.0.1:10000"
_AZURE_FATAL_HINTS = {
    "AuthenticationFailed": "the account key or SAS token was rejected (bad or expired credentials)",
    "AuthorizationFailure": "not authorized: the credentials or SAS lack write/delete on this container, "
                            "or a network rule blocks this client",
    "AuthorizationPermissionMismatch": "the credentials lack write/delete permission on this container",
    "InvalidAuthenticationInfo": "the credentials are malformed",
    "ContainerNotFound": "the container does not exist",
    "AccountIsDisabled": "the storage account is disabled",
    "OutOfRangeInput": "the container or blob name is invalid (container names: 3-63 characters)",
    "InvalidResourceName": "the container or blob name is invalid",
}


@dataclass(frozen=True)
class AzureTarget:
    """The account, container, endpoint and credentials an Azure sink uses, all sources merged."""

    account: str
    container: str
    endpoint: str | None
    access_key: str | None
    sas_token: str | None


def parse_connection_string(text: str) -> dict[str, str]:
    """``Name=value;...`` pairs of an Azure Storage connection string (values may contain '=')."""
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            pairs[name.strip()] = value.strip()
    return pairs


def resolve_azure(settings: AzureSinkSettings) -> AzureTarget:
    """Merge explicit options, the connection string and the emulator defaults (in that order)."""
    conn = parse_connection_string(settings.connection_string.get_secret_value()) if settings.connection_string else {}
    emulator = settings.use_emulator or conn.get("UseDevelopmentStorage", "").lower() == "true"
    account = settings.account or conn.get("AccountName") or (EMULATOR_ACCOUNT if emulator else None)
    if not account:
        raise ConfigError("required unless connection_string or use_emulator supplies it", key="sink.azure.account")
    key = settings.access_key.get_secret_value() if settings.access_key else None
    sas = settings.sas_token.get_secret_value() if settings.sas_token else None
    if key is None and sas is None:
        # Credentials come from one place: never a key from the string beside an explicit SAS.
        key, sas = conn.get("AccountKey"), conn.get("SharedAccessSignature")
    if emulator and key is None and sas is None:
        key = EMULATOR_ACCOUNT_KEY
    endpoint = validated_endpoint(settings.endpoint_url or conn.get("BlobEndpoint"), "sink.azure.endpoint_url")
    if endpoint is None and emulator:
        endpoint = f"{EMULATOR_BLOB_URL}/{account}"
    elif endpoint is None and conn.get("EndpointSuffix"):
        # Sovereign clouds (e.g. core.chinacloudapi.cn) differ only in the suffix.
        protocol = conn.get("DefaultEndpointsProtocol", "https")
        endpoint = f"{protocol}://{account}.blob.{conn['EndpointSuffix']}"
    # The portal shows SAS tokens with or without the leading '?'; obstore wants the query only.
    return AzureTarget(account, settings.container, endpoint, key, sas.lstrip("?") if sas else None)


class AzureSink(ObjectStoreSink):
    """Uploads spool files as block blobs to ``<container>/<key>`` (``Sink`` and ``SinkReader``)."""

    name = "azure"
    fatal_hints = _AZURE_FATAL_HINTS

    def __init__(self, settings: AzureSinkSettings, *, prefix: str = "", metrics: Metrics | None = None) -> None:
        if not settings.container:
            raise ConfigError("the container name is required", key="sink.azure.container")
        self.settings = settings
        target = resolve_azure(settings)
        self.endpoint = target.endpoint or f"https://{target.account}.blob.core.windows.net"
        config: AzureConfig = {"account_name": target.account}
        if target.endpoint is not None:
            config["endpoint"] = target.endpoint
        if target.access_key is not None:
            config["account_key"] = target.access_key
        if target.sas_token is not None:
            config["sas_key"] = target.sas_token
        try:
            store = AzureStore(target.container, config=config,
                               client_options=client_options(self.endpoint, settings.attempt_timeout_s),  # type: ignore[arg-type]
                               retry_config=NO_RETRIES)  # type: ignore[arg-type]
        except (ObstoreError, ValueError) as exc:
            raise ConfigError(one_line(str(exc).split(_DEBUG_SOURCE, 1)[0]), key="sink.azure") from exc
        options = UploadOptions(settings.attempt_timeout_s, settings.multipart_threshold_bytes,
                                settings.multipart_chunk_bytes)
        self._setup(store, f"azure sink: container {target.container!r} at {self.endpoint}", options,
                    prefix=prefix, metrics=metrics)
