"""How the S3 sink classifies real HTTP failures: injected by a reverse proxy in front of moto
(5xx, SlowDown, refused connections, a hanging server) or produced by moto itself with IAM
authentication on (bad keys, wrong secret, access denied) and for a missing bucket."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from conftest import AuthServer, Fault, FaultProxy, MotoServer, s3_settings
from kubestream.errors import SinkFatalError, SinkRetryableError, SinkUnreachableError
from kubestream.sinks.s3 import THROTTLE_RETRY_AFTER_S, S3Sink

MiB = 1024 * 1024


@pytest.fixture
def spool_file(tmp_path: Path) -> Path:
    path = tmp_path / "batch"
    path.write_bytes(os.urandom(4096))
    return path


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [
        (500, "InternalError", None),
        (503, "SlowDown", THROTTLE_RETRY_AFTER_S),
        (503, "ServiceUnavailable", THROTTLE_RETRY_AFTER_S),
        (502, "BadGateway", None),
        (429, "TooManyRequests", THROTTLE_RETRY_AFTER_S),
        (400, "RequestTimeout", None),
    ],
)
async def test_server_errors_are_retryable_and_the_retry_succeeds(
    fault_proxy: FaultProxy, moto_server: MotoServer, bucket: str, spool_file: Path,
    status: int, code: str, retry_after: float | None,
) -> None:
    sink = S3Sink(s3_settings(fault_proxy.endpoint, bucket))
    payload = spool_file.read_bytes()  # noqa: ASYNC240 - a 4 KiB test fixture
    fault_proxy.fault = Fault(status, code, remaining=1, retry_after="3")
    with pytest.raises(SinkRetryableError) as caught:
        await sink.put("k", spool_file, 4096)
    line = _one_line(caught.value)
    assert code in line and str(status) in line and bucket in line
    # obstore hides response headers, so throttling gets our floor instead of the server's "3".
    assert caught.value.retry_after == retry_after
    await sink.put("k", spool_file, 4096)  # the proxy forwards again
    assert moto_server.read(bucket, "k") == payload


async def test_a_failing_part_of_a_multipart_upload_is_retryable(
    fault_proxy: FaultProxy, moto_server: MotoServer, bucket: str, tmp_path: Path,
) -> None:
    payload = os.urandom(6 * MiB)
    source = tmp_path / "big"
    source.write_bytes(payload)
    sink = S3Sink(s3_settings(fault_proxy.endpoint, bucket, multipart_threshold_bytes=5 * MiB,
                              multipart_chunk_bytes=5 * MiB))
    fault_proxy.fault = Fault(503, "SlowDown", remaining=1, only_part_uploads=True)
    with pytest.raises(SinkRetryableError):
        await sink.put("big", source, len(payload))
    assert fault_proxy.log.faults_served == 1
    await sink.put("big", source, len(payload))
    assert moto_server.read(bucket, "big") == payload


async def test_refused_connections_are_retryable(fault_proxy: FaultProxy, bucket: str, spool_file: Path) -> None:
    sink = S3Sink(s3_settings(fault_proxy.endpoint, bucket))
    await fault_proxy.go_down()
    with pytest.raises(SinkRetryableError) as caught:
        await sink.put("k", spool_file, 4096)
    assert "no answer from the server" in _one_line(caught.value)
    await fault_proxy.start()
    await sink.put("k", spool_file, 4096)


async def test_an_attempt_is_bounded_by_the_attempt_timeout(fault_proxy: FaultProxy, bucket: str,
                                                            spool_file: Path) -> None:
    sink = S3Sink(s3_settings(fault_proxy.endpoint, bucket, attempt_timeout_s=0.3))
    fault_proxy.hang_s = 5.0
    started = time.monotonic()
    with pytest.raises(SinkRetryableError) as caught:
        await sink.put("k", spool_file, 4096)
    assert time.monotonic() - started < 2.0
    assert bucket in _one_line(caught.value)


async def test_missing_bucket_is_fatal_for_put_and_check(moto_server: MotoServer, spool_file: Path) -> None:
    sink = S3Sink(s3_settings(moto_server.endpoint, "no-such-bucket-here"))
    with pytest.raises(SinkFatalError) as caught:
        await sink.put("k", spool_file, 4096)
    assert "'no-such-bucket-here'" in _one_line(caught.value)
    assert "NoSuchBucket" in str(caught.value) and "does not exist" in str(caught.value)
    with pytest.raises(SinkFatalError) as checked:
        await sink.check()
    assert "NoSuchBucket" in _one_line(checked.value) and moto_server.endpoint in str(checked.value)


async def test_check_says_unreachable_in_one_line_when_nothing_listens(spool_file: Path) -> None:
    # Not fatal: an outage at start is waited out (the agent retries the check).
    sink = S3Sink(s3_settings("http://127.0.0.1:9", "bkt", attempt_timeout_s=2.0))
    with pytest.raises(SinkUnreachableError) as caught:
        await sink.check()
    assert "http://127.0.0.1:9" in _one_line(caught.value)


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        (("AKIAUNKNOWNKEY000000", "whatever"), "InvalidAccessKeyId"),
        (None, "SignatureDoesNotMatch"),  # the writer's key id with a wrong secret
        ("reader", "AccessDenied"),
    ],
)
async def test_credential_problems_are_fatal_with_one_clear_line(
    moto_auth_server: AuthServer, spool_file: Path, credentials: tuple[str, str] | str | None, code: str,
) -> None:
    if credentials is None:
        key_id, secret = moto_auth_server.writer[0], "wrong-secret"
    elif credentials == "reader":
        key_id, secret = moto_auth_server.reader
    else:
        assert isinstance(credentials, tuple)
        key_id, secret = credentials
    settings = s3_settings(moto_auth_server.server.endpoint, moto_auth_server.bucket,
                           access_key_id=SecretStr(key_id), secret_access_key=SecretStr(secret))
    sink = S3Sink(settings)
    for attempt in (sink.put("k", spool_file, 4096), sink.check()):
        with pytest.raises(SinkFatalError) as caught:
            await attempt
        line = _one_line(caught.value)
        assert code in line and "HTTP 403" in line and moto_auth_server.bucket in line


async def test_good_credentials_pass_the_authenticating_server(moto_auth_server: AuthServer,
                                                               spool_file: Path) -> None:
    key_id, secret = moto_auth_server.writer
    sink = S3Sink(s3_settings(moto_auth_server.server.endpoint, moto_auth_server.bucket,
                              access_key_id=SecretStr(key_id), secret_access_key=SecretStr(secret)))
    await sink.check()
    await sink.put("signed", spool_file, 4096)


async def test_a_spool_file_of_the_wrong_size_is_fatal(moto_server: MotoServer, bucket: str,
                                                       spool_file: Path) -> None:
    sink = S3Sink(s3_settings(moto_server.endpoint, bucket))
    with pytest.raises(SinkFatalError, match="expected 5000"):
        await sink.put("k", spool_file, 5000)
