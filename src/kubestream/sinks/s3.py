"""The S3 sink (AWS S3 and S3-compatible stores: MinIO, Ceph RGW, ...), built on obstore.

Why obstore and not boto3: measured in docs/design-s3.md (about 2x the upload rate and half the
CPU per MB on the batch sizes we produce, native asyncio so a per-attempt timeout really cancels
the request, no CRC32 checksum headers that some S3-compatible servers reject). Its gaps are
filled here: shared-profile credentials (``sinks.credentials``) and error classification from
the HTTP status and S3 error code that obstore only exposes in its message text.

One ``put`` is ONE attempt: obstore's own retries are switched off because the delivery worker
owns the retry loop. Every key is written with a plain PUT or, above the multipart threshold, a
multipart upload; both replace the whole object, so replaying a key after a crash is idempotent.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from kubestream.config.settings import S3SinkSettings
from kubestream.errors import ConfigError, SinkFatalError, SinkRetryableError
from kubestream.obs.metrics import Metrics
from kubestream.sinks.credentials import ResolvedCredentials, resolve_credentials

if TYPE_CHECKING:
    from obstore.store import S3Config

# S3 error codes a later attempt can fix. Credentials from IRSA, credential_process or instance
# metadata are refreshed by obstore, so even ExpiredToken heals by itself.
_RETRYABLE_CODES = frozenset({
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed",
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "TooManyRequestsException",
    "ExpiredToken", "TokenRefreshRequired", "OperationAborted", "NoSuchUpload", "InternalFailure",
})
_THROTTLE_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
    "TooManyRequestsException", "ServiceUnavailable",
})
# obstore does not expose response headers, so a server's Retry-After is invisible here. For
# throttling, waiting at least this long (AWS's own guidance for SlowDown) replaces the hint.
THROTTLE_RETRY_AFTER_S = 1.0
_CLOSE_GRACE_S = 0.05
# Human causes for the fatal codes operators meet most; any other code is shown as sent.
_FATAL_HINTS = {
    "InvalidAccessKeyId": "the access key id is unknown to the server (bad credentials)",
    "SignatureDoesNotMatch": "the secret key does not match the access key id (bad credentials)",
    "AccessDenied": "access denied: the credentials lack s3:PutObject/s3:DeleteObject on this bucket",
    "NoSuchBucket": "the bucket does not exist",
    "AllAccessDisabled": "all access to this bucket is disabled",
    "PermanentRedirect": "the bucket is in another region: set sink.s3.region",
    "AuthorizationHeaderMalformed": "wrong region for this bucket: set sink.s3.region",
    "InvalidStorageClass": "the storage class is not supported by the server",
}
_STATUS_RE = re.compile(r"status code: (\d{3})")
_CODE_RE = re.compile(r"<Code>([^<]+)</Code>")
_MESSAGE_RE = re.compile(r"<Message>([^<]*)</Message>")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe_transport_failure(text: str) -> str:
    """The first line of an obstore error without a status: connect/IO/timeout failures."""
    head = text.split("\n\nDebug source", 1)[0]
    head = head.split(" - ", 1)[-1] if " - " in head else head
    return _one_line(head)[:200] or "transport error"


def classify(exc: BaseException, where: str) -> SinkRetryableError | SinkFatalError:
    """The sink error for a failed obstore call, from the HTTP status and the S3 error code.

    obstore gives only coarse classes (PermissionDenied, NotFound, Generic), so the status and
    the ``<Code>`` of the S3 error document are read from its message. No status at all means
    the request never got an answer (refused, reset, timed out): always retryable.
    """
    text = str(exc)
    status_match = _STATUS_RE.search(text)
    code_match = _CODE_RE.search(text)
    code = code_match.group(1) if code_match else None
    if status_match is None:
        return SinkRetryableError(f"{where}: no answer from the server ({_describe_transport_failure(text)})")
    status = int(status_match.group(1))
    message_match = _MESSAGE_RE.search(text)
    detail = _FATAL_HINTS.get(code or "") or (message_match.group(1) if message_match else "")
    label = f"{code} (HTTP {status})" if code else f"HTTP {status}"
    line = _one_line(f"{where}: {label}: {detail}".rstrip(": "))
    retryable = code in _RETRYABLE_CODES or status >= 500 or status in (408, 429)
    if not retryable:
        return SinkFatalError(line)
    throttled = code in _THROTTLE_CODES or status in (429, 503)
    return SinkRetryableError(line, retry_after=THROTTLE_RETRY_AFTER_S if throttled else None)


def _validated_endpoint(settings: S3SinkSettings) -> str | None:
    if not settings.endpoint_url:
        return None
    parts = urlsplit(settings.endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{settings.endpoint_url!r} is not an http(s) URL", key="sink.s3.endpoint_url")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ConfigError(f"{settings.endpoint_url!r}: {exc}", key="sink.s3.endpoint_url") from exc
    return settings.endpoint_url.rstrip("/")


def store_config(settings: S3SinkSettings, region: str) -> S3Config:
    """obstore's S3 configuration for ``settings`` (region already resolved)."""
    # We only ever delete the one write-check probe: a plain DELETE works on every S3-compatible
    # server, the bulk DeleteObjects API does not (and needs Content-MD5 on some).
    config: S3Config = {"region": region, "disable_bulk_delete": True}
    endpoint = _validated_endpoint(settings)
    if endpoint is not None:
        # S3-compatible servers all serve path-style; virtual hosts would need DNS per bucket.
        config["endpoint"] = endpoint
        config["virtual_hosted_style_request"] = False
    else:
        # AWS prefers virtual-hosted requests; path style stays available as an escape hatch.
        config["virtual_hosted_style_request"] = not settings.force_path_style
    if settings.sse is not None:
        config["server_side_encryption"] = settings.sse
        if settings.sse_kms_key_id:
            config["sse_kms_key_id"] = settings.sse_kms_key_id
    elif settings.sse_kms_key_id:
        raise ConfigError("sse_kms_key_id needs sse: aws:kms", key="sink.s3.sse_kms_key_id")
    return config


class S3Sink:
    """Uploads spool files to ``s3://<bucket>/<key>`` (implements ``sinks.base.Sink``)."""

    name = "s3"

    def __init__(
        self,
        settings: S3SinkSettings,
        *,
        prefix: str = "",
        metrics: Metrics | None = None,
    ) -> None:
        if not settings.bucket:
            raise ConfigError("the bucket name is required", key="sink.s3.bucket")
        self.settings = settings
        self._prefix = prefix.strip("/")
        # Delivery counts batches, bytes and errors per sink; nothing S3-specific to add yet.
        self._metrics = metrics
        # obstore reads the same process environment for the sources it resolves itself.
        self.credentials: ResolvedCredentials = resolve_credentials(settings, os.environ)
        region = (settings.region or self.credentials.profile_region or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        self.endpoint = _validated_endpoint(settings) or f"https://s3.{region}.amazonaws.com"
        self.where = f"s3 sink: bucket {settings.bucket!r} at {self.endpoint}"
        self._attributes: dict[str, str] = {}
        if settings.storage_class:
            self._attributes["Storage-Class"] = settings.storage_class
        self._store = self._make_store(settings, region)

    def _make_store(self, settings: S3SinkSettings, region: str) -> S3Store:
        timeout = timedelta(seconds=settings.attempt_timeout_s)
        client_options: dict[str, Any] = {
            # A backstop for each HTTP request; the whole attempt is bounded in put().
            "timeout": timeout,
            "connect_timeout": min(timedelta(seconds=10), timeout),
            "allow_http": self.endpoint.startswith("http://"),
        }
        try:
            return S3Store(
                settings.bucket,
                config=store_config(settings, region),
                client_options=client_options,  # type: ignore[arg-type]
                # One attempt per put(): the delivery worker owns backoff and Retry-After.
                retry_config={"max_retries": 0, "retry_timeout": timedelta(0)},
                # Always a callback for our sources, never config keys: obstore would merge
                # an AWS_SESSION_TOKEN from the environment into keys given as configuration.
                credential_provider=self.credentials.provider,
            )
        except (ObstoreError, ValueError) as exc:
            raise ConfigError(_one_line(str(exc)), key="sink.s3") from exc

    def _probe_key(self) -> str:
        name = f".kubestream-write-check-{uuid.uuid4().hex}"
        return f"{self._prefix}/{name}" if self._prefix else name

    async def check(self) -> None:
        """Write and delete a probe object under the prefix; ``SinkFatalError`` names the cause.

        The probe carries the configured storage class and encryption, so a wrong KMS key or an
        unsupported storage class is found at start, not at the first batch.
        """
        key = self._probe_key()
        try:
            async with asyncio.timeout(self.settings.attempt_timeout_s):
                await obstore.put_async(self._store, key, b"kubestream write check\n",
                                        attributes=self._attributes or None, use_multipart=False)
                await obstore.delete_async(self._store, key)
        except TimeoutError as exc:
            raise SinkFatalError(f"{self.where}: no answer within {self.settings.attempt_timeout_s:g}s") from exc
        except (ObstoreError, OSError) as exc:
            # At start nothing is queued yet: any failure, even a transient one, is reported
            # as unusable so the operator sees the cause at once.
            raise SinkFatalError(str(classify(exc, f"{self.where}: write check failed"))) from exc

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
        where = f"{self.where}: uploading {key}"
        try:
            async with asyncio.timeout(self.settings.attempt_timeout_s):
                await self._upload(key, source, size)
        except TimeoutError as exc:
            raise SinkRetryableError(f"{where}: no answer within {self.settings.attempt_timeout_s:g}s") from exc
        except (ObstoreError, OSError) as exc:
            raise classify(exc, where) from exc

    async def _upload(self, key: str, source: Path, size: int) -> None:
        multipart = size > self.settings.multipart_threshold_bytes
        # obstore reads the file itself (in Rust, chunk by chunk), never the whole file in Python.
        await obstore.put_async(
            self._store,
            key,
            source,
            attributes=self._attributes or None,
            use_multipart=multipart,
            chunk_size=self.settings.multipart_chunk_bytes,
            # Parts of one object in parallel; a few are enough to fill a node's uplink.
            max_concurrency=4,
        )

    async def close(self) -> None:
        """Let obstore's runtime threads finish their last call into Python.

        obstore completes an awaitable from a Rust worker thread through the event loop's
        self-pipe; that thread still re-takes the GIL *after* waking the loop. If the
        interpreter finalizes in that instant the thread is killed inside Rust and the process
        aborts (exit 134, seen after ``validate --check-sinks``). An idle pass of the loop
        releases the GIL so the thread can leave Python first.
        """
        await asyncio.sleep(_CLOSE_GRACE_S)
