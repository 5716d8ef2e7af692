"""The gcs and azure sink sections of the configuration: required options and cross-field rules
reported as one line naming the key, secrets never echoed."""

from __future__ import annotations

from typing import Any

import pytest

from kubestream.config.loader import settings_from_document
from kubestream.errors import ConfigError


def _sink(**sink: Any) -> dict[str, Any]:
    return {"sink": sink}


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ({"type": "gcs"}, 'sink.gcs.bucket: required when sink.type is "gcs"'),
        ({"type": "gcs", "gcs": {"bucket": "b", "service_account_path": "/a.json",
                                 "application_credentials_path": "/b.json"}},
         "sink.gcs.application_credentials_path: set service_account_path or application_credentials_path"),
        ({"type": "azure", "azure": {"account": "a"}}, 'sink.azure.container: required when sink.type is "azure"'),
        ({"type": "azure", "azure": {"container": "ctr"}}, "sink.azure.account: required"),
        ({"type": "azure", "azure": {"account": "a", "container": "ctr", "access_key": "k", "sas_token": "s"}},
         "sink.azure.sas_token: set access_key or sas_token, not both"),
        ({"type": "azure", "azure": {"container": "ctr", "use_emulatr": True}},
         'sink.azure.use_emulatr: unknown option (did you mean "use_emulator"?)'),
    ],
)
def test_invalid_cloud_sink_settings_name_the_key(sink: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_document(_sink(**sink))
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    "sink",
    [
        {"type": "gcs", "gcs": {"bucket": "b"}},
        {"type": "azure", "azure": {"container": "ctr", "use_emulator": True}},
        {"type": "azure", "azure": {"container": "ctr", "connection_string": "AccountName=a;AccountKey=k"}},
        {"type": "azure", "azure": {"account": "a", "container": "ctr", "sas_token": "?sv=1&sig=x"}},
        # The sections may be filled while another sink is chosen.
        {"type": "file", "azure": {"account": "a"}, "gcs": {"service_account_path": "/x.json"}},
    ],
)
def test_valid_cloud_sink_settings_load(sink: dict[str, Any]) -> None:
    settings = settings_from_document(_sink(**sink)).settings
    assert settings.sink.type == sink["type"]


def test_azure_secrets_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_document(_sink(type="azure", azure={"container": "c", "access_key": 12345678}))
    assert "sink.azure.access_key" in str(caught.value) and "12345678" not in str(caught.value)
