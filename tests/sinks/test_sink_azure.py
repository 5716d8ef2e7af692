"""The azure sink against Azurite (Microsoft's emulator, a real HTTP server on 127.0.0.1): uploads
single and in blocks, read-back for takeovers, the write check, the ways of giving credentials,
and how real and injected failures are classified."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from _azurite import AzuriteServer
from pydantic import SecretStr

from conftest import Fault, FaultProxy
from kubestream.config.settings import AzureSinkSettings, Settings, SinkSettings
from kubestream.errors import ConfigError, SinkFatalError, SinkRetryableError
from kubestream.sinks.base import Sink, SinkReader
from kubestream.sinks.factory import make_sink
from kubestream.sinks.objectstore import (
    EMULATOR_ACCOUNT,
    EMULATOR_ACCOUNT_KEY,
    THROTTLE_RETRY_AFTER_S,
    AzureSink,
    resolve_azure,
)

MiB = 1024 * 1024


def azure_settings(endpoint: str, container: str, **overrides: Any) -> AzureSinkSettings:
    values: dict[str, Any] = {"account": EMULATOR_ACCOUNT, "container": container, "endpoint_url": endpoint,
                              "access_key": SecretStr(EMULATOR_ACCOUNT_KEY), "attempt_timeout_s": 10.0}
    values.update(overrides)
    return AzureSinkSettings(**values)


@pytest.fixture
def spool_file(tmp_path: Path) -> Path:
    path = tmp_path / "batch"
    path.write_bytes(os.urandom(4096))
    return path


async def test_put_list_and_get_round_trip(azurite: AzuriteServer, container: str, tmp_path: Path) -> None:
    sink = AzureSink(azure_settings(azurite.endpoint, container), prefix="archive")
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"one batch\n")
    big.write_bytes(os.urandom(11 * MiB))
    sink_settings = {"multipart_threshold_bytes": 5 * MiB, "multipart_chunk_bytes": 5 * MiB}
    blocks = AzureSink(azure_settings(azurite.endpoint, container, **sink_settings))
    await sink.put("archive/s/dt=2026-01-01/hour=00/a.ndjson", small, 10)
    await blocks.put("archive/s/dt=2026-01-01/hour=00/big.ndjson", big, 11 * MiB)  # three blocks
    await sink.put("archive/other/x.ndjson", small, 10)
    assert azurite.read(container, "archive/s/dt=2026-01-01/hour=00/big.ndjson") == big.read_bytes()
    listed = await sink.list_keys("archive/s/dt=2026-01-01/")
    assert sorted(listed) == ["archive/s/dt=2026-01-01/hour=00/a.ndjson", "archive/s/dt=2026-01-01/hour=00/big.ndjson"]
    assert await sink.list_keys("archive/none/") == []
    assert await sink.get("archive/s/dt=2026-01-01/hour=00/a.ndjson") == b"one batch\n"
    assert isinstance(sink, Sink) and isinstance(sink, SinkReader)
    await sink.close()


async def test_replaying_a_key_overwrites(azurite: AzuriteServer, container: str, tmp_path: Path) -> None:
    sink = AzureSink(azure_settings(azurite.endpoint, container))
    first, second = tmp_path / "1", tmp_path / "2"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    await sink.put("k", first, 5)
    await sink.put("k", second, 6)
    assert azurite.keys(container) == ["k"]
    assert azurite.read(container, "k") == b"second"


async def test_check_writes_and_removes_a_probe(azurite: AzuriteServer, container: str) -> None:
    sink = AzureSink(azure_settings(azurite.endpoint, container), prefix="p")
    await sink.check()
    assert azurite.keys(container) == []


@pytest.mark.parametrize("how", ["connection_string", "use_emulator"])
async def test_credentials_from_a_connection_string_or_the_emulator_defaults(
    azurite: AzuriteServer, container: str, spool_file: Path, how: str,
) -> None:
    if how == "use_emulator":
        settings = AzureSinkSettings(container=container, use_emulator=True, endpoint_url=azurite.endpoint)
    else:
        # The connection string Azurite's documentation gives, pointed at this port.
        conn = (f"DefaultEndpointsProtocol=http;AccountName={EMULATOR_ACCOUNT};AccountKey={EMULATOR_ACCOUNT_KEY};"
                f"BlobEndpoint={azurite.endpoint};")
        settings = AzureSinkSettings(container=container, connection_string=SecretStr(conn))
    sink = AzureSink(settings)
    assert sink.endpoint == azurite.endpoint
    await sink.check()
    await sink.put("k", spool_file, 4096)
    assert azurite.read(container, "k") == spool_file.read_bytes()  # noqa: ASYNC240


async def test_factory_builds_the_azure_sink(azurite: AzuriteServer, container: str, spool_file: Path) -> None:
    settings = Settings(sink=SinkSettings(type="azure", prefix="pre", azure=azure_settings(azurite.endpoint, container)))
    sink = make_sink(settings)
    assert isinstance(sink, AzureSink) and sink.name == "azure"
    await sink.check()
    await sink.put("pre/k", spool_file, 4096)
    assert azurite.keys(container) == ["pre/k"]


async def test_missing_container_is_fatal_with_one_clear_line(azurite: AzuriteServer, spool_file: Path) -> None:
    sink = AzureSink(azure_settings(azurite.endpoint, "no-such-container"))
    for attempt in (sink.put("k", spool_file, 4096), sink.check()):
        with pytest.raises(SinkFatalError) as caught:
            await attempt
        line = str(caught.value)
        assert "\n" not in line
        assert "ContainerNotFound (HTTP 404)" in line and "does not exist" in line
        assert "'no-such-container'" in line and azurite.endpoint in line


async def test_a_wrong_account_key_is_fatal(azurite: AzuriteServer, container: str, spool_file: Path) -> None:
    wrong = SecretStr("d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25n")
    sink = AzureSink(azure_settings(azurite.endpoint, container, access_key=wrong))
    with pytest.raises(SinkFatalError) as caught:
        await sink.put("k", spool_file, 4096)
    line = str(caught.value)
    assert "\n" not in line and "HTTP 403" in line and "AuthorizationFailure" in line, line
    assert azurite.keys(container) == []


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [
        (503, "ServerBusy", THROTTLE_RETRY_AFTER_S),
        (500, "OperationTimedOut", None),
        (500, "InternalError", None),
        (429, "TooManyRequests", THROTTLE_RETRY_AFTER_S),
    ],
)
async def test_server_errors_are_retryable_and_the_retry_succeeds(
    azure_proxy: FaultProxy, azurite: AzuriteServer, container: str, spool_file: Path,
    status: int, code: str, retry_after: float | None,
) -> None:
    sink = AzureSink(azure_settings(f"{azure_proxy.endpoint}/{EMULATOR_ACCOUNT}", container))
    azure_proxy.fault = Fault(status, code, remaining=1)
    with pytest.raises(SinkRetryableError) as caught:
        await sink.put("k", spool_file, 4096)
    assert f"{code} (HTTP {status})" in str(caught.value) and container in str(caught.value)
    assert caught.value.retry_after == retry_after
    await sink.put("k", spool_file, 4096)
    assert azurite.read(container, "k") == spool_file.read_bytes()  # noqa: ASYNC240


@pytest.mark.parametrize(("status", "code"), [(403, "AuthorizationPermissionMismatch"), (403, "AuthenticationFailed")])
async def test_injected_authorization_failures_are_fatal(
    azure_proxy: FaultProxy, container: str, spool_file: Path, status: int, code: str,
) -> None:
    sink = AzureSink(azure_settings(f"{azure_proxy.endpoint}/{EMULATOR_ACCOUNT}", container))
    azure_proxy.fault = Fault(status, code)
    with pytest.raises(SinkFatalError, match=f"{code} \\(HTTP 403\\): .*credentials"):
        await sink.put("k", spool_file, 4096)


async def test_refused_connections_are_retryable(azure_proxy: FaultProxy, container: str, spool_file: Path) -> None:
    sink = AzureSink(azure_settings(f"{azure_proxy.endpoint}/{EMULATOR_ACCOUNT}", container))
    await azure_proxy.go_down()
    with pytest.raises(SinkRetryableError, match="no answer from the server"):
        await sink.put("k", spool_file, 4096)
    with pytest.raises(SinkRetryableError, match="listing"):
        await sink.list_keys("x/")
    await azure_proxy.start()
    await sink.put("k", spool_file, 4096)


def test_settings_that_cannot_work_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"sink\.azure\.container"):
        AzureSink(AzureSinkSettings(account="a"))
    with pytest.raises(ConfigError, match=r"sink\.azure\.account"):
        AzureSink(AzureSinkSettings(container="ctr"))
    with pytest.raises(ConfigError, match=r"sink\.azure\.endpoint_url"):
        AzureSink(AzureSinkSettings(container="ctr", account="a", endpoint_url="ftp://x"))


def test_connection_strings_and_emulator_defaults_resolve_to_one_target() -> None:
    sovereign = resolve_azure(AzureSinkSettings(container="ctr", connection_string=SecretStr(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5==;EndpointSuffix=core.chinacloudapi.cn")))
    assert (sovereign.account, sovereign.access_key, sovereign.endpoint) == (
        "acct", "a2V5==", "https://acct.blob.core.chinacloudapi.cn")
    development = resolve_azure(AzureSinkSettings(container="ctr", connection_string=SecretStr(
        "UseDevelopmentStorage=true")))
    assert (development.account, development.access_key, development.endpoint) == (
        EMULATOR_ACCOUNT, EMULATOR_ACCOUNT_KEY, f"http://127.0.0.1:10000/{EMULATOR_ACCOUNT}")
    # Explicit options win over the connection string, credentials as a whole; a SAS loses its '?'.
    explicit = resolve_azure(AzureSinkSettings(container="ctr", account="mine", sas_token=SecretStr("?sv=1&sig=x"),
                                               connection_string=SecretStr("AccountName=theirs;AccountKey=k")))
    assert (explicit.account, explicit.access_key, explicit.sas_token, explicit.endpoint) == (
        "mine", None, "sv=1&sig=x", None)
