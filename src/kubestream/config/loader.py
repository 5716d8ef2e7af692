"""Load the configuration file: parse (YAML or JSON) → interpolate the environment → translate a
k8stream config if it is one → validate with the settings tree → cross-field checks.

Every failure is a ``ConfigError`` whose message is one line naming the dotted key path and the
problem, because that line is all an operator sees in a crash-looping pod's log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from kubestream.config import k8stream
from kubestream.config.durations import parse_duration, parse_since
from kubestream.config.interpolate import format_key_path, interpolate_tree
from kubestream.config.settings import Settings, SinkSettings
from kubestream.config.suggest import closest
from kubestream.errors import ConfigError

__all__ = ["MAX_CONFIG_BYTES", "MAX_DEPTH", "LoadedConfig", "check_depth", "check_settings", "load_config", "load_settings", "parse_duration",
           "settings_from_document"]

_YAML_SUFFIXES: Final = frozenset({".yaml", ".yml"})
_SECTIONS: Final = frozenset(Settings.model_fields)
# Never echo these back in an error message: the line ends up in logs.
_SECRET_OPTIONS: Final = frozenset({"access_key_id", "secret_access_key", "session_token",
                                    "aws_access_key", "aws_secret_access_key",
                                    "access_key", "sas_token", "connection_string"})
_MAX_SHOWN_INPUT: Final = 60
# Hostile-input bounds. A real configuration is a few KiB and a handful of levels deep; these
# are far above that and far below what exhausts memory or Python's recursion limit.
MAX_CONFIG_BYTES: Final = 1024 * 1024
MAX_DEPTH: Final = 32


@dataclass(frozen=True)
class LoadedConfig:
    """The validated settings and where they came from."""

    settings: Settings
    path: Path | None
    k8stream_compat: bool
    """The file was a k8stream config.json, translated (see kubestream.config.k8stream)."""


def load_settings(path: Path, *, environ: Mapping[str, str] | None = None) -> Settings:
    """The validated settings in ``path`` (YAML, or JSON). Raises ``ConfigError``."""
    return load_config(path, environ=environ).settings


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Like ``load_settings``, also telling whether the file was a k8stream config."""
    document = _read_document(Path(path))
    loaded = settings_from_document(document, environ=environ)
    return LoadedConfig(loaded.settings, Path(path), loaded.k8stream_compat)


def settings_from_document(document: object, *, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Validate an already parsed document (a mapping, or None for "all defaults")."""
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"the top level must be a mapping of sections (got {type(document).__name__})")
    check_depth(document, "the configuration")
    mixed = k8stream.mixed_format_error(document, _SECTIONS)
    if mixed is not None:
        raise mixed
    compat = k8stream.looks_like_k8stream(document, _SECTIONS)
    interpolated = interpolate_tree(document, os.environ if environ is None else environ)
    assert isinstance(interpolated, Mapping)
    tree = k8stream.translate(interpolated) if compat else interpolated
    try:
        settings = Settings.model_validate(tree)
        check_settings(settings)
    except ValidationError as exc:
        raise _relabel(_from_validation_error(exc), compat) from None
    except ConfigError as exc:
        raise _relabel(exc, compat) from None
    return LoadedConfig(settings, None, compat)


def check_depth(document: object, where: str) -> None:
    """Refuse a document nested deeper than ``MAX_DEPTH`` (interpolation and validation recurse).

    Iterative on purpose: the check must not itself hit the recursion limit it guards against.
    """
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where}: nested deeper than {MAX_DEPTH} levels; a kubestream configuration "
                              "is only a few levels deep")
        if isinstance(node, Mapping):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def check_settings(settings: Settings) -> None:
    """Rules that span options or need parsing; raises ``ConfigError`` with the key path."""
    try:
        parse_since(settings.events.since)
    except ConfigError as exc:
        raise ConfigError(str(exc), key="events.since") from None
    kube, sink = settings.kube, settings.sink
    low, high = kube.watch_timeout_s
    if not 0 < low <= high:
        raise ConfigError(f"expected 0 < min <= max (got [{low}, {high}])", key="kube.watch_timeout_s")
    if kube.backoff_initial_s > kube.backoff_max_s:
        raise ConfigError(f"must not exceed kube.backoff_max_s ({kube.backoff_max_s})", key="kube.backoff_initial_s")
    if sink.retry_initial_s > sink.retry_max_s:
        raise ConfigError(f"must not exceed sink.retry_max_s ({sink.retry_max_s})", key="sink.retry_initial_s")
    election = settings.leader_election
    if election.renew_deadline_s >= election.lease_duration_s:
        # A holder that may go on exporting as long as a standby waits before taking over would
        # let both export at once.
        raise ConfigError(f"must be below leader_election.lease_duration_s ({election.lease_duration_s:g})",
                          key="leader_election.renew_deadline_s")
    _check_s3(settings.sink, "sink")
    _check_gcs(settings.sink, "sink")
    _check_azure(settings.sink, "sink")
    _check_destinations(settings)


def _check_destinations(settings: Settings) -> None:
    """``sinks:``: names unique, every destination takes a stream, its filter fits its streams,
    and each one's own sink section passes the checks a single ``sink:`` does."""
    if settings.sinks and "sink" in settings.model_fields_set:
        raise ConfigError("set sink (one destination) or sinks (several), not both", key="sinks")
    seen: set[str] = set()
    for index, destination in enumerate(settings.sinks):
        at = f"sinks[{index}]"
        if destination.name in seen:
            raise ConfigError(f"duplicate destination name {destination.name!r}", key=f"{at}.name")
        seen.add(destination.name)
        if not destination.streams:
            raise ConfigError("the destination takes no stream: list events, logs or both", key=f"{at}.streams")
        if destination.retry_initial_s > destination.retry_max_s:
            raise ConfigError(f"must not exceed {at}.retry_max_s ({destination.retry_max_s})",
                              key=f"{at}.retry_initial_s")
        if "logs" in destination.streams:
            for option in destination.filter.events_only_fields():
                raise ConfigError("applies to event records only, and this destination takes logs "
                                  "(set streams: [events])", key=f"{at}.filter.{option}")
        if destination.encoding is not None and not destination.is_archive_type:
            raise ConfigError(f"only for file and object-store destinations (type is {destination.type!r})",
                              key=f"{at}.encoding")
        _check_s3(destination, at)
        _check_gcs(destination, at)
        _check_azure(destination, at)


def _check_s3(sink: SinkSettings, at: str) -> None:
    s3 = sink.s3
    if sink.type == "s3" and not s3.bucket:
        raise ConfigError(f'required when {at}.type is "s3"', key=f"{at}.s3.bucket")
    if (s3.access_key_id is None) != (s3.secret_access_key is None):
        missing = f"{at}.s3.secret_access_key" if s3.secret_access_key is None else f"{at}.s3.access_key_id"
        raise ConfigError("set both access_key_id and secret_access_key, or neither", key=missing)
    if s3.sse_kms_key_id is not None and s3.sse != "aws:kms":
        raise ConfigError(f'only valid with {at}.s3.sse: "aws:kms"', key=f"{at}.s3.sse_kms_key_id")


def _check_gcs(sink: SinkSettings, at: str) -> None:
    gcs = sink.gcs
    if sink.type == "gcs" and not gcs.bucket:
        raise ConfigError(f'required when {at}.type is "gcs"', key=f"{at}.gcs.bucket")
    if gcs.service_account_path is not None and gcs.application_credentials_path is not None:
        raise ConfigError("set service_account_path or application_credentials_path, not both",
                          key=f"{at}.gcs.application_credentials_path")


def _check_azure(sink: SinkSettings, at: str) -> None:
    azure = sink.azure
    if sink.type != "azure":
        return
    if not azure.container:
        raise ConfigError(f'required when {at}.type is "azure"', key=f"{at}.azure.container")
    # The connection string may hold the account; the sink checks what it actually supplies.
    if not azure.account and azure.connection_string is None and not azure.use_emulator:
        raise ConfigError(f'required when {at}.type is "azure" (or set connection_string or use_emulator)',
                          key=f"{at}.azure.account")
    if azure.access_key is not None and azure.sas_token is not None:
        raise ConfigError("set access_key or sas_token, not both", key=f"{at}.azure.sas_token")


# --- reading and parsing ---------------------------------------------------------------------


def _read_document(path: Path) -> object:
    document = _parse_document(_read_text(path), path)
    check_depth(document, str(path))
    return document


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; a kubestream configuration "
                              "is a few KiB")
        return data.decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _parse_document(text: str, path: Path) -> object:
    suffix = path.suffix.lower()
    if suffix in _YAML_SUFFIXES:
        return _parse_yaml(text, path)
    if suffix == ".json":
        return _parse_json(text, path)
    # No telling suffix: a document opening with '{' is JSON unless it only parses as YAML
    # (a YAML flow mapping); anything else is YAML.
    if text.lstrip().startswith("{"):
        try:
            return _parse_json(text, path)
        except ConfigError as json_error:
            try:
                return _parse_yaml(text, path)
            except ConfigError:
                raise json_error from None
    return _parse_yaml(text, path)


def _parse_json(text: str, path: Path) -> object:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_json_keys)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: JSON syntax error: {exc.msg}") from None
    except RecursionError:
        # The C decoder stops cleanly at the recursion limit; check_depth words the same bound.
        raise ConfigError(f"{path}: nested deeper than {MAX_DEPTH} levels; a kubestream configuration "
                          "is only a few levels deep") from None
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: JSON error: duplicate key {exc.key!r}") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _reject_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


class _RefusedYaml(yaml.MarkedYAMLError):
    """Valid YAML that a configuration does not accept (anchors, aliases, excessive nesting)."""


class _StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (YAML's "last one wins" silently drops options),
    anchors and aliases, and nesting deeper than ``MAX_DEPTH``.

    Aliases are refused outright rather than budgeted: nine nested anchors of ten aliases each
    (a "billion laughs") are 90 aliases that expand to 10^9 values once the tree is copied, so
    no alias count is both useful and safe, and a configuration never needs them.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _RefusedYaml(problem="anchors and aliases (&name, *name, <<: *name) are not accepted in a "
                                       "kubestream configuration; write the values out",
                               problem_mark=event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _RefusedYaml(problem=f"nested deeper than {MAX_DEPTH} levels; a kubestream configuration "
                                           "is only a few levels deep", problem_mark=event.start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, path: Path) -> object:
    try:
        return yaml.load(text, Loader=_StrictYamlLoader)  # a SafeLoader subclass: no arbitrary objects
    except _RefusedYaml as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: {exc.problem}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {' '.join(str(exc).split())}") from None


# --- turning pydantic's errors into one line -------------------------------------------------


def _from_validation_error(exc: ValidationError) -> ConfigError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    key = format_key_path(first["loc"])
    if first["type"] == "extra_forbidden":
        message = _unknown_option(first["loc"])
    else:
        message = f"{first['msg']}{_shown_input(first)}"
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" (and {more} more {'problem' if more == 1 else 'problems'})"
    return ConfigError(message, key=key or None)


def _unknown_option(loc: tuple[int | str, ...]) -> str:
    model = _model_at(loc[:-1])
    known = sorted(model.model_fields) if model is not None else []
    guess = closest(str(loc[-1]), known)
    if guess is not None:
        return f'unknown option (did you mean "{guess}"?)'
    return f"unknown option (expected one of: {', '.join(known)})" if known else "unknown option"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings section a key path points into (None if it is not a section)."""
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _shown_input(error: ErrorDetails) -> str:
    if any(part in _SECRET_OPTIONS for part in error["loc"]):
        return ""
    value = error.get("input")
    shown = repr(value)
    if len(shown) > _MAX_SHOWN_INPUT:
        shown = shown[: _MAX_SHOWN_INPUT - 3] + "..."
    hint = ""
    if error["type"] == "string_type" and isinstance(value, int | float | bool):
        hint = "; quote it to make it a string"
    return f" (got {shown}{hint})"


def _relabel(error: ConfigError, compat: bool) -> ConfigError:
    """In k8stream mode, name the key the user actually wrote next to ours."""
    if not compat or error.key is None:
        return error
    original = k8stream.original_key(error.key)
    if original is None:
        return error
    message = str(error).removeprefix(f"{error.key}: ")
    return ConfigError(message, key=f"{original} ({error.key})")
