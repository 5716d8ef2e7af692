"""The gcs sink: construction, credentials errors, and classification of GCS answers served by a
real HTTP server on 127.0.0.1 (the fault proxy, answering every request itself).

NOT covered: a successful upload. No GCS emulator installable here speaks the XML API obstore
writes with (fake-gcs-server lacks XML PUT; gcp-storage-emulator answers PUT without ETag and
501 to DELETE, list and multipart), so the success path is untested: see docs/design-s3.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import Fault, FaultProxy
from kubestream.config.settings import GCSSinkSettings, Settings, SinkSettings
from kubestream.errors import ConfigError, SinkFatalError, SinkRetryableError, SinkUnreachableError
from kubestream.sinks.base import Sink, SinkReader
from kubestream.sinks.factory import make_sink
from kubestream.sinks.objectstore import THROTTLE_RETRY_AFTER_S, GCSSink


@pytest.fixture
def spool_file(tmp_path: Path) -> Path:
    path = tmp_path / "batch"
    path.write_bytes(os.urandom(4096))
    return path


@pytest.fixture
def emulator_account(tmp_path: Path) -> Path:
    """A service-account file in the form obstore documents for emulators: no OAuth at all."""
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"disable_oauth": True, "client_email": "", "private_key": "", "private_key_id": ""}))
    return path


def gcs_settings(endpoint: str, account: Path, **overrides: Any) -> GCSSinkSettings:
    values: dict[str, Any] = {"bucket": "ks-bucket", "endpoint_url": endpoint, "service_account_path": account,
                              "attempt_timeout_s": 5.0}
    values.update(overrides)
    return GCSSinkSettings(**values)


def test_factory_builds_the_gcs_sink(emulator_account: Path) -> None:
    settings = Settings(sink=SinkSettings(type="gcs", gcs=gcs_settings("http://127.0.0.1:9", emulator_account)))
    sink = make_sink(settings)
    assert isinstance(sink, GCSSink) and sink.name == "gcs"
    assert isinstance(sink, Sink) and isinstance(sink, SinkReader)
    assert sink.where == "gcs sink: bucket 'ks-bucket' at http://127.0.0.1:9"
    assert GCSSink(GCSSinkSettings(bucket="b", service_account_path=emulator_account)).endpoint == (
        "https://storage.googleapis.com")


def test_unusable_credentials_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^sink\.gcs: .*Unable to open service account file"):
        GCSSink(GCSSinkSettings(bucket="b", service_account_path=tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"^sink\.gcs: .*Unable to decode service account file"):
        GCSSink(GCSSinkSettings(bucket="b", service_account_path=broken))
    with pytest.raises(ConfigError, match=r"sink\.gcs\.bucket"):
        GCSSink(GCSSinkSettings())


async def test_check_says_unreachable_in_one_line_when_nothing_listens(emulator_account: Path) -> None:
    # Not fatal: an outage at start is waited out (the agent retries the check).
    sink = GCSSink(gcs_settings("http://127.0.0.1:9", emulator_account, attempt_timeout_s=2.0))
    with pytest.raises(SinkUnreachableError) as caught:
        await sink.check()
    line = str(caught.value)
    assert "\n" not in line and "'ks-bucket'" in line and "http://127.0.0.1:9" in line


@pytest.mark.parametrize(
    ("status", "code", "json_body", "retry_after"),
    [
        (503, "SlowDown", False, THROTTLE_RETRY_AFTER_S),
        (429, "rateLimitExceeded", True, THROTTLE_RETRY_AFTER_S),
        (500, "backendError", True, None),
        (502, "BadGateway", False, None),
    ],
)
async def test_server_errors_are_retryable(
    fault_only_proxy: FaultProxy, emulator_account: Path, spool_file: Path,
    status: int, code: str, json_body: bool, retry_after: float | None,
) -> None:
    sink = GCSSink(gcs_settings(fault_only_proxy.endpoint, emulator_account))
    fault_only_proxy.fault = Fault(status, code, json_body=json_body)
    with pytest.raises(SinkRetryableError) as caught:
        await sink.put("dir/k", spool_file, 4096)
    assert f"{code} (HTTP {status})" in str(caught.value) and "'ks-bucket'" in str(caught.value)
    assert caught.value.retry_after == retry_after
    # The request reached the server as obstore's XML-API upload of that object (path-style,
    # every character but letters and digits percent-encoded).
    [(method, path)] = fault_only_proxy.log.requests
    assert method == "PUT" and path.endswith("/dir%2Fk")


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (403, "AccessDenied", "storage.objects.create"),
        (404, "NoSuchBucket", "the bucket does not exist"),
        (401, "AuthenticationRequired", "no usable credentials"),
    ],
)
async def test_permission_and_missing_bucket_answers_are_fatal(
    fault_only_proxy: FaultProxy, emulator_account: Path, spool_file: Path, status: int, code: str, hint: str,
) -> None:
    sink = GCSSink(gcs_settings(fault_only_proxy.endpoint, emulator_account))
    fault_only_proxy.fault = Fault(status, code)
    for attempt in (sink.put("k", spool_file, 4096), sink.check()):
        with pytest.raises(SinkFatalError) as caught:
            await attempt
        line = str(caught.value)
        assert "\n" not in line and f"{code} (HTTP {status}): " in line and hint in line


async def test_read_back_failures_are_classified(fault_only_proxy: FaultProxy, emulator_account: Path) -> None:
    sink = GCSSink(gcs_settings(fault_only_proxy.endpoint, emulator_account))
    fault_only_proxy.fault = Fault(503, "SlowDown")
    with pytest.raises(SinkRetryableError, match="listing 'a/'"):
        await sink.list_keys("a/")
    fault_only_proxy.fault = Fault(403, "AccessDenied")
    with pytest.raises(SinkFatalError, match="reading a/k: AccessDenied"):
        await sink.get("a/k")
