"""Loading and validation: formats, and one clear line naming the key for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestream.config import Settings, load_config, load_settings
from kubestream.config.durations import parse_duration, parse_since
from kubestream.errors import ConfigError


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error_line(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_config_loader_yaml_and_json_mean_the_same(tmp_path: Path) -> None:
    yaml_path = _write(tmp_path, "a.yml", "batch:\n  max_records: 7\nsink:\n  type: s3\n  s3: {bucket: b}\n")
    json_path = _write(tmp_path, "a.json", '{"batch": {"max_records": 7}, "sink": {"type": "s3", "s3": {"bucket": "b"}}}')
    assert load_settings(yaml_path, environ={}) == load_settings(json_path, environ={})


@pytest.mark.parametrize(("name", "text"), [
    ("config", '{"batch": {"max_records": 7}}'),  # sniffed JSON
    ("config", "batch:\n  max_records: 7\n"),  # sniffed YAML
    ("config.conf", "{batch: {max_records: 7}}"),  # a YAML flow mapping that is not JSON
])
def test_config_loader_sniffs_format_without_suffix(tmp_path: Path, name: str, text: str) -> None:
    assert load_settings(_write(tmp_path, name, text), environ={}).batch.max_records == 7


def test_config_loader_empty_file_means_defaults(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, "empty.yaml", "# nothing set\n"), environ={})
    assert loaded.settings == Settings()
    assert not loaded.k8stream_compat


@pytest.mark.parametrize(("text", "line"), [
    ("batch:\n  max_records: 0\n", "batch.max_records: Input should be greater than or equal to 1 (got 0)"),
    ("sink:\n  tpye: s3\n", 'sink.tpye: unknown option (did you mean "type"?)'),
    ("sinkz:\n  type: file\n", 'sinkz: unknown option (did you mean "sink"?)'),
    ("sinks:\n  type: file\n", "sinks: Input should be a valid list (got {'type': 'file'})"),
    ("batch:\n  max_record: 5\n", 'batch.max_record: unknown option (did you mean "max_records"?)'),
    ("log:\n  colour: true\n", "log.colour: unknown option (expected one of: format, level)"),
    ("batch:\n  max_records: lots\n",
     "batch.max_records: Input should be a valid integer, unable to parse string as an integer (got 'lots')"),
    ("sink:\n  type: ftp\n", "sink.type: Input should be 'file', 's3', 'gcs', 'azure', 'otlp' or 'http' (got 'ftp')"),
    ("sink:\n  prefix: 2024\n", "sink.prefix: Input should be a valid string (got 2024; quote it to make it a string)"),
    ("encoding:\n  gzip_level: 10\n", "encoding.gzip_level: Input should be less than or equal to 9 (got 10)"),
    ("server:\n  port: 70000\n", "server.port: Input should be less than or equal to 65535 (got 70000)"),
    ("events:\n  types: Warning\n", "events.types: Input should be a valid list (got 'Warning')"),
    ("events:\n  types: [Warning, 3]\n", "events.types[1]: Input should be a valid string (got 3; quote it to make it a string)"),
    ("batch: 5\n", "batch: Input should be a valid dictionary or instance of BatchSettings (got 5)"),
    ("batch:\n  max_records: 0\n  max_age_s: 0\n",
     "batch.max_records: Input should be greater than or equal to 1 (got 0) (and 1 more problem)"),
])
def test_config_loader_validation_errors_are_one_exact_line(tmp_path: Path, text: str, line: str) -> None:
    assert _error_line(_write(tmp_path, "c.yaml", text)) == line


def test_config_loader_error_carries_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, "c.yaml", "batch:\n  max_records: 0\n"), environ={})
    assert caught.value.key == "batch.max_records"


def test_config_loader_never_echoes_secrets(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.yaml", "sink:\n  s3:\n    secret_access_key: [hunter2]\n")
    line = _error_line(path)
    assert line == "sink.s3.secret_access_key: Input should be a valid string"
    assert "hunter2" not in line


@pytest.mark.parametrize(("text", "line"), [
    ("sink:\n  type: s3\n", 'sink.s3.bucket: required when sink.type is "s3"'),
    ("sink:\n  s3:\n    access_key_id: AKIA\n",
     "sink.s3.secret_access_key: set both access_key_id and secret_access_key, or neither"),
    ("sink:\n  s3:\n    sse_kms_key_id: k\n", 'sink.s3.sse_kms_key_id: only valid with sink.s3.sse: "aws:kms"'),
    ("kube:\n  watch_timeout_s: [600, 300]\n", "kube.watch_timeout_s: expected 0 < min <= max (got [600.0, 300.0])"),
    ("kube:\n  backoff_initial_s: 40\n", "kube.backoff_initial_s: must not exceed kube.backoff_max_s (30.0)"),
    ("sink:\n  retry_initial_s: 90\n", "sink.retry_initial_s: must not exceed sink.retry_max_s (60.0)"),
    ("events:\n  since: yesterday\n",
     "events.since: expected \"now\", \"retained\" or a duration like 90s, 15m, 2h, 1d or 1h30m (got 'yesterday')"),
    ("events:\n  since: '15'\n",
     "events.since: expected \"now\", \"retained\" or a duration like 90s, 15m, 2h, 1d or 1h30m (got '15')"),
])
def test_config_loader_cross_field_checks(tmp_path: Path, text: str, line: str) -> None:
    assert _error_line(_write(tmp_path, "c.yaml", text)) == line


def test_config_loader_file_errors(tmp_path: Path) -> None:
    assert _error_line(tmp_path / "absent.yaml") == f"{tmp_path / 'absent.yaml'}: file not found"
    assert _error_line(tmp_path) == f"{tmp_path}: is a directory, not a configuration file"
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"batch:\n  max_records: \xff\n")
    assert _error_line(binary) == f"{binary}: not UTF-8 text (byte 22)"


def test_config_loader_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.yaml", "batch:\n  max_records: 5\n   max_age_s: 3\n")
    assert _error_line(path) == f"{path}:3:13: YAML syntax error: mapping values are not allowed here"


def test_config_loader_yaml_duplicate_key_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.yaml", "batch:\n  max_records: 5\n  max_records: 6\n")
    assert _error_line(path) == f"{path}:3:3: YAML syntax error: duplicate key 'max_records'"


def test_config_loader_json_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.json", '{\n  "batch": {"max_records": 5,}\n}')
    assert _error_line(path) == f"{path}:2:30: JSON syntax error: Expecting property name enclosed in double quotes"
    dup = _write(tmp_path, "d.json", '{"batch": {}, "batch": {}}')
    assert _error_line(dup) == f"{dup}: JSON error: duplicate key 'batch'"


def test_config_loader_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert _error_line(_write(tmp_path, "c.yaml", "- batch\n")) == (
        "the top level must be a mapping of sections (got list)")


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0), ("1w", 604800.0),
    ("1h30m", 5400.0), ("500ms", 0.5), ("1.5h", 5400.0), (" 2H ", 7200.0), ("0s", 0.0),
])
def test_config_loader_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "-5m", "5 m", "5y", "1h 30m", "now"])
def test_config_loader_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_config_loader_parse_since() -> None:
    assert parse_since("now") == "now"
    assert parse_since("Retained") == "retained"
    assert parse_since("15m") == 900.0
