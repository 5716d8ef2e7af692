"""Credential sources of the S3 sink: static keys, shared-file profiles (static keys and
credential_process), ``AWS_PROFILE``, and what is left to obstore's own chain. The end-to-end
cases sign real requests against a moto server that checks signatures."""

from __future__ import annotations

import json
import os
import shlex
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import AuthServer, s3_settings
from kubestream.config.settings import S3SinkSettings
from kubestream.errors import ConfigError
from kubestream.sinks.credentials import (
    ProcessCredentials,
    StaticCredentials,
    parse_process_output,
    resolve_credentials,
)
from kubestream.sinks.s3 import S3Sink


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Empty shared AWS files, selected through the environment; no AWS variables leak in."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text("")
    credentials.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    return config, credentials


def _no_keys(server: AuthServer, **overrides: object) -> S3SinkSettings:
    return s3_settings(server.server.endpoint, server.bucket, access_key_id=None, secret_access_key=None,
                       **overrides)


async def test_named_profile_with_static_keys_signs_requests(moto_auth_server: AuthServer,
                                                             aws_files: tuple[Path, Path]) -> None:
    key_id, secret = moto_auth_server.writer
    aws_files[1].write_text(f"[archive]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
    sink = S3Sink(_no_keys(moto_auth_server, profile="archive"))
    assert sink.credentials.description == "static keys of profile 'archive'"
    await sink.check()


async def test_aws_profile_selects_a_credential_process_profile(
    moto_auth_server: AuthServer, aws_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_id, secret = moto_auth_server.writer
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    document = json.dumps({"Version": 1, "AccessKeyId": key_id, "SecretAccessKey": secret, "Expiration": expires})
    script = tmp_path / "creds.py"
    script.write_text(f"print({document!r})\n")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    aws_files[0].write_text(f"[profile vault]\nregion = us-east-1\ncredential_process = {command}\n")
    monkeypatch.setenv("AWS_PROFILE", "vault")
    sink = S3Sink(_no_keys(moto_auth_server, region=None))
    assert isinstance(sink.credentials.provider, ProcessCredentials)
    await sink.check()


def test_precedence_follows_the_aws_sdks(aws_files: tuple[Path, Path]) -> None:
    aws_files[1].write_text("[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = s\n")
    bare = S3SinkSettings(bucket="b")
    from_file = resolve_credentials(bare, {**os.environ})
    assert from_file.provider == StaticCredentials("FILEKEY", "s")
    # Environment keys and web identity beat the shared files; obstore reads those itself.
    assert resolve_credentials(bare, {**os.environ, "AWS_ACCESS_KEY_ID": "ENV"}).provider is None
    assert resolve_credentials(bare, {**os.environ, "AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}).provider is None
    # Keys in the settings beat everything, session token included.
    explicit = s3_settings("http://x", "b", session_token="tok")
    assert resolve_credentials(explicit, {**os.environ, "AWS_ACCESS_KEY_ID": "ENV"}).provider == StaticCredentials(
        "testing", "testing", "tok")


def test_a_default_profile_with_only_a_region_lends_the_region(aws_files: tuple[Path, Path]) -> None:
    aws_files[0].write_text("[default]\nregion = eu-west-3\n")
    resolved = resolve_credentials(S3SinkSettings(bucket="b"), {**os.environ})
    assert resolved.provider is None and resolved.profile_region == "eu-west-3"
    sink = S3Sink(S3SinkSettings(bucket="b"))
    assert sink.endpoint == "https://s3.eu-west-3.amazonaws.com"


@pytest.mark.parametrize(
    ("config", "profile", "message"),
    [
        ("", "missing", "is not defined"),
        ("[profile ops]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\n", "ops",
         "export-credentials --profile ops"),
        ("[profile empty]\nregion = us-east-1\n", "empty", "neither keys nor credential_process"),
    ],
)
def test_unusable_profiles_are_config_errors(aws_files: tuple[Path, Path], config: str, profile: str,
                                            message: str) -> None:
    aws_files[0].write_text(config)
    with pytest.raises(ConfigError, match=message) as caught:
        S3Sink(S3SinkSettings(bucket="b", profile=profile))
    assert caught.value.key == "sink.s3.profile"


def test_process_credentials_expire_before_their_expiration() -> None:
    expiration = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    parsed = parse_process_output(json.dumps({
        "Version": 1, "AccessKeyId": "A", "SecretAccessKey": "S", "SessionToken": "T",
        "Expiration": expiration.isoformat().replace("+00:00", "Z"),
    }), "p")
    assert parsed["token"] == "T"
    assert parsed["expires_at"] is not None and parsed["expires_at"] < expiration
