"""The S3 sink (AWS S3 and S3-compatible stores: MinIO, Ceph RGW, ...), built on obstore.

Why obstore and not boto3: measured in docs/design-s3.md (about 2x the upload rate and half the
CPU per MB on the batch sizes we produce, native asyncio so a per-attempt timeout really cancels
the request, no CRC32 checksum headers that some S3-compatible servers reject). Upload, write
check, read-back and classification are shared with GCS and Azure (``sinks.objectstore``); the
S3 specifics are here: addressing, encryption, storage class, and shared-profile credentials
(``sinks.credentials``), which obstore does not read itself.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from kubestream.config.settings import S3SinkSettings
from kubestream.errors import ConfigError
from kubestream.obs.metrics import Metrics
from kubestream.sinks.credentials import ResolvedCredentials, resolve_credentials
from kubestream.sinks.objectstore import (
    NO_RETRIES,
    THROTTLE_RETRY_AFTER_S,
    ObjectStoreSink,
    SinkFailure,
    UploadOptions,
    client_options,
    one_line,
    validated_endpoint,
)
from kubestream.sinks.objectstore import classify as classify_store_error

if TYPE_CHECKING:
    from obstore.store import S3Config

__all__ = ["THROTTLE_RETRY_AFTER_S", "S3Sink", "classify", "store_config"]

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


def classify(exc: BaseException, where: str) -> SinkFailure:
    """The sink error for a failed obstore S3 call (see ``objectstore.classify``)."""
    return classify_store_error(exc, where, _FATAL_HINTS)


def _validated_endpoint(settings: S3SinkSettings) -> str | None:
    return validated_endpoint(settings.endpoint_url, "sink.s3.endpoint_url")


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



class S3Sink(ObjectStoreSink):
    """Uploads spool files to ``s3://<bucket>/<key>`` (``sinks.base.Sink`` and ``SinkReader``)."""

    name = "s3"
    fatal_hints = _FATAL_HINTS

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
        # obstore reads the same process environment for the sources it resolves itself.
        self.credentials: ResolvedCredentials = resolve_credentials(settings, os.environ)
        region = (settings.region or self.credentials.profile_region or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        self.endpoint = _validated_endpoint(settings) or f"https://s3.{region}.amazonaws.com"
        attributes = {"Storage-Class": settings.storage_class} if settings.storage_class else {}
        options = UploadOptions(settings.attempt_timeout_s, settings.multipart_threshold_bytes,
                                settings.multipart_chunk_bytes, attributes)
        self._setup(self._make_store(settings, region), f"s3 sink: bucket {settings.bucket!r} at {self.endpoint}",
                    options, prefix=prefix, metrics=metrics)

    def _make_store(self, settings: S3SinkSettings, region: str) -> S3Store:
        try:
            return S3Store(
                settings.bucket,
                config=store_config(settings, region),
                client_options=client_options(self.endpoint, settings.attempt_timeout_s),  # type: ignore[arg-type]
                retry_config=NO_RETRIES,  # type: ignore[arg-type]
                # Always a callback for our sources, never config keys: obstore would merge
                # an AWS_SESSION_TOKEN from the environment into keys given as configuration.
                credential_provider=self.credentials.provider,
            )
        except (ObstoreError, ValueError) as exc:
            raise ConfigError(one_line(str(exc)), key="sink.s3") from exc
