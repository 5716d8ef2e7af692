"""Environment interpolation: the forms, the escape, and errors naming the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestream.config.interpolate import InterpolationError, interpolate_string, interpolate_tree
from kubestream.config.loader import load_settings
from kubestream.errors import ConfigError

ENV = {"BUCKET": "archive", "EMPTY": "", "N": "250", "REGION": "eu-west-1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${BUCKET}", "archive"),
        ("s3://${BUCKET}/${REGION}", "s3://archive/eu-west-1"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),  # ":-" also replaces an empty value
        ("${EMPTY-fallback}", ""),  # "-" replaces only an unset one
        ("${MISSING-fallback}", "fallback"),
        ("${BUCKET:-fallback}", "archive"),
        ("${BUCKET:?needed}", "archive"),
        ("${EMPTY}", ""),
        ("${MISSING:-${BUCKET}-x}", "archive-x"),  # references inside a default
        ("${MISSING:-${ALSO_MISSING:-deep}}", "deep"),
        ("$${BUCKET}", "${BUCKET}"),  # the escape gives a literal "${"
        ("price: $5 and $$", "price: $5 and $$"),  # other dollars are left alone
        ("pre $${X} ${BUCKET}", "pre ${X} archive"),
        ("${MISSING:-}", ""),
    ],
)
def test_config_interpolate_forms(text: str, expected: str) -> None:
    assert interpolate_string(text, ENV) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${MISSING}", "${MISSING} — MISSING is not set"),
        ("${MISSING:?set MISSING to the bucket}", "${MISSING:?set MISSING to the bucket} — MISSING is not set: set MISSING to the bucket"),
        ("${EMPTY:?must not be empty}", "${EMPTY:?must not be empty} — EMPTY is empty: must not be empty"),
        ("${MISSING?}", "${MISSING?} — MISSING is not set"),
        ("x ${BUCKET", "${BUCKET — unclosed reference: missing '}'"),
        ("${1ABC}", "${1ABC} — invalid reference: expected ${NAME}, ${NAME:-default} or ${NAME:?message}"),
        ("${A:x}", "${A:x} — invalid reference: expected ${NAME}, ${NAME:-default} or ${NAME:?message}"),
    ],
)
def test_config_interpolate_errors(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate_string(text, ENV)
    assert str(caught.value) == message


def test_config_interpolate_walks_lists_and_dicts_but_not_keys_or_non_strings() -> None:
    tree = {"sink": {"${BUCKET}": "${BUCKET}", "n": 5, "flags": [True, "${REGION}", {"deep": "${N}"}]}}
    assert interpolate_tree(tree, ENV) == {
        "sink": {"${BUCKET}": "archive", "n": 5, "flags": [True, "eu-west-1", {"deep": "250"}]}}


def test_config_interpolate_error_names_list_index_path() -> None:
    tree = {"events": {"types": ["Warning", "${TYPE}"]}}
    with pytest.raises(ConfigError) as caught:
        interpolate_tree(tree, ENV)
    assert str(caught.value) == "events.types[1]: ${TYPE} — TYPE is not set"
    assert caught.value.key == "events.types[1]"


def test_config_interpolate_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "kubestream.yaml"
    path.write_text(
        "batch:\n  max_records: ${N}\n"  # a string "250" validated into an int
        "sink:\n  type: s3\n  prefix: '$${literal}/${REGION}'\n  s3:\n    bucket: ${BUCKET}\n"
        "    region: ${AWS_REGION:-us-east-1}\n"
        "events:\n  namespaces_include: [default, '${EXTRA_NS:-kube-system}']\n"
    )
    settings = load_settings(path, environ=ENV)
    assert settings.batch.max_records == 250
    assert settings.sink.prefix == "${literal}/eu-west-1"
    assert settings.sink.s3.bucket == "archive"
    assert settings.sink.s3.region == "us-east-1"
    assert settings.events.namespaces_include == ["default", "kube-system"]


def test_config_interpolate_json_file(tmp_path: Path) -> None:
    path = tmp_path / "kubestream.json"
    path.write_text('{"sink": {"type": "s3", "s3": {"bucket": "${BUCKET}"}}, "events": {"since": "${SINCE:-2h}"}}')
    settings = load_settings(path, environ=ENV)
    assert settings.sink.s3.bucket == "archive"
    assert settings.events.since == "2h"


def test_config_interpolate_missing_variable_in_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "kubestream.yaml"
    path.write_text("events:\n  since: ${SINCE:?set SINCE}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == "events.since: ${SINCE:?set SINCE} — SINCE is not set: set SINCE"


def test_config_interpolate_value_cannot_inject_structure(tmp_path: Path) -> None:
    # The value is substituted after parsing, so YAML syntax in it stays a plain string.
    path = tmp_path / "kubestream.yaml"
    path.write_text("sink:\n  prefix: ${P}\n")
    settings = load_settings(path, environ={"P": "a\nsink:\n  type: s3"})
    assert settings.sink.prefix == "a\nsink:\n  type: s3"
    assert settings.sink.type == "file"


def test_config_interpolate_defaults_to_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the process environment is patched (not our code): environ=None must read os.environ.
    monkeypatch.setenv("KUBESTREAM_TEST_UID", "from-env")
    path = tmp_path / "kubestream.yaml"
    path.write_text("sink:\n  stream_uid: ${KUBESTREAM_TEST_UID}\n")
    assert load_settings(path).sink.stream_uid == "from-env"
