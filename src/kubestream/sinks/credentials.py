"""Where the S3 sink's credentials come from: the AWS order of precedence, on top of obstore.

obstore (Rust ``object_store``) already resolves environment keys, web identity (IRSA:
``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``), EKS/ECS container credentials and EC2
instance metadata on its own. What it lacks is the shared configuration files
(``~/.aws/credentials``, ``~/.aws/config``) selected by ``profile`` / ``AWS_PROFILE``, which
k8stream users rely on (``aws_profile``). This module fills that gap and decides, like the AWS
SDKs, which source wins:

1. keys in the settings (``access_key_id`` / ``secret_access_key`` / ``session_token``);
2. the profile named in the settings (an error if it does not exist);
3. ``AWS_ACCESS_KEY_ID`` in the environment, then web identity: left to obstore;
4. ``AWS_PROFILE`` (or ``default``) if the shared files define it;
5. anything else (container credentials, instance metadata): left to obstore.

Profiles may hold static keys or a ``credential_process`` (which also covers SSO and vault
tools through ``aws configure export-credentials --format process``). Assume-role and SSO
profiles are refused with a one-line hint instead of being half-supported.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kubestream.config.settings import S3SinkSettings
from kubestream.errors import ConfigError, SinkFatalError, SinkRetryableError

if TYPE_CHECKING:
    from obstore.store import S3Credential

# Refresh process credentials this long before they expire, so no request signs with a stale key.
_EXPIRY_MARGIN = timedelta(minutes=5)
_UNSUPPORTED_PROFILE_KEYS = ("role_arn", "sso_session", "sso_start_url", "web_identity_token_file")


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """Keys that do not expire on their own (settings or a profile's static keys)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __call__(self) -> S3Credential:
        """obstore credential-provider protocol: called once, cached forever (no expiry)."""
        return {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "token": self.session_token,
            "expires_at": None,
        }


@dataclass(frozen=True, slots=True)
class ProcessCredentials:
    """A profile's ``credential_process``: a command printing the AWS "process" JSON."""

    command: str
    profile: str

    def __call__(self) -> S3Credential:
        """Run the command; obstore calls this again shortly before ``expires_at``."""
        try:
            done = subprocess.run(self.command, shell=True, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SinkRetryableError(f"s3 sink: credential_process of profile {self.profile!r} failed: {exc}") from exc
        if done.returncode != 0:
            detail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            raise SinkRetryableError(f"s3 sink: credential_process of profile {self.profile!r} failed: {detail[0]}")
        return parse_process_output(done.stdout, self.profile)


CredentialSource = StaticCredentials | ProcessCredentials


@dataclass(frozen=True, slots=True)
class ResolvedCredentials:
    """The chosen source (None: let obstore's own chain decide) and a region from the profile."""

    provider: CredentialSource | None
    profile_region: str | None = None
    description: str = "default chain (environment, web identity, container, instance metadata)"


def parse_process_output(stdout: str, profile: str) -> S3Credential:
    """Decode the JSON a ``credential_process`` prints (Version 1 format)."""
    try:
        doc = json.loads(stdout)
        expiration = doc.get("Expiration")
        expires_at = datetime.fromisoformat(expiration.replace("Z", "+00:00")) if expiration else None
        return {
            "access_key_id": str(doc["AccessKeyId"]),
            "secret_access_key": str(doc["SecretAccessKey"]),
            "token": doc.get("SessionToken"),
            "expires_at": expires_at - _EXPIRY_MARGIN if expires_at else None,
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SinkFatalError(f"s3 sink: credential_process of profile {profile!r} printed no valid credentials") from exc


def _shared_file(env: Mapping[str, str], variable: str, default_name: str) -> Path:
    configured = env.get(variable)
    return Path(configured).expanduser() if configured else Path("~/.aws").expanduser() / default_name


def load_profile(name: str, env: Mapping[str, str]) -> dict[str, str] | None:
    """The merged settings of profile ``name`` from the shared files, or None if undefined.

    ``credentials`` uses ``[name]`` sections, ``config`` uses ``[profile name]`` (except
    ``[default]``); on conflicts the credentials file wins, as in the AWS CLI.
    """
    found: dict[str, str] = {}
    defined = False
    config_section = name if name == "default" else f"profile {name}"
    for path, section in (
        (_shared_file(env, "AWS_CONFIG_FILE", "config"), config_section),
        (_shared_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"), name),
    ):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise ConfigError(f"cannot parse {path}: {exc}", key="sink.s3.profile") from exc
        if parser.has_section(section):
            defined = True
            found.update({k: v.strip() for k, v in parser.items(section)})
    return found if defined else None


def _from_profile(name: str, values: dict[str, str], *, explicit: bool) -> ResolvedCredentials:
    """Credentials of a defined profile; an implicit profile without keys only lends its region."""
    region = values.get("region")
    for key in _UNSUPPORTED_PROFILE_KEYS:
        if key in values:
            raise ConfigError(
                f"profile {name!r} uses {key}, which the S3 sink does not resolve; set "
                f"credential_process = aws configure export-credentials --profile {name} --format process",
                key="sink.s3.profile",
            )
    if "credential_process" in values:
        return ResolvedCredentials(ProcessCredentials(values["credential_process"], name), region,
                                   f"credential_process of profile {name!r}")
    if "aws_access_key_id" in values and "aws_secret_access_key" in values:
        static = StaticCredentials(values["aws_access_key_id"], values["aws_secret_access_key"],
                                   values.get("aws_session_token") or None)
        return ResolvedCredentials(static, region, f"static keys of profile {name!r}")
    if not explicit:
        # A [default] section holding only a region is common on nodes whose keys come from
        # instance metadata or IRSA: keep the region, leave the keys to obstore's chain.
        return ResolvedCredentials(None, region)
    raise ConfigError(f"profile {name!r} has neither keys nor credential_process", key="sink.s3.profile")


def resolve_credentials(settings: S3SinkSettings, env: Mapping[str, str] | None = None) -> ResolvedCredentials:
    """Pick the credential source following the AWS SDKs' precedence (see the module doc)."""
    env = os.environ if env is None else env
    if settings.access_key_id is not None or settings.secret_access_key is not None:
        if settings.access_key_id is None or settings.secret_access_key is None:
            raise ConfigError("access_key_id and secret_access_key must be set together", key="sink.s3")
        token = settings.session_token.get_secret_value() if settings.session_token else None
        static = StaticCredentials(settings.access_key_id.get_secret_value(),
                                   settings.secret_access_key.get_secret_value(), token)
        return ResolvedCredentials(static, None, "static keys from the settings")
    if settings.profile:
        values = load_profile(settings.profile, env)
        if values is None:
            raise ConfigError(f"profile {settings.profile!r} is not defined in the shared AWS files",
                              key="sink.s3.profile")
        return _from_profile(settings.profile, values, explicit=True)
    if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return ResolvedCredentials(None)
    profile_name = env.get("AWS_PROFILE") or "default"
    values = load_profile(profile_name, env)
    if values is not None:
        return _from_profile(profile_name, values, explicit=bool(env.get("AWS_PROFILE")))
    return ResolvedCredentials(None)
