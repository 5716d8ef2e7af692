"""k8stream's config.json is accepted unchanged and means what it meant to k8stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubestream.config import load_config, load_settings
from kubestream.config.k8stream import looks_like_k8stream
from kubestream.errors import ConfigError

# The example of k8stream's README, as a real file (no comments: JSON has none).
README_CONFIG = (
    '{"batch_size": 5, "batch_interval": 5, "uid": "719395d7-4e91-4817-a6ec-9a8ded29bebc", '
    '"file_sink_dir": "/tmp/l9k8stream/", "prefix": "local/test-upload", "aws_region": "ap-south-1", '
    '"aws_bucket": "last9-trials", "aws_profile": "last9data", "aws_access_key": "1", '
    '"aws_secret_access_key": "2", "sink": "file", "kubeconfig": "./kubeconfig"}'
)


def _write(tmp_path: Path, document: object, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_config_k8stream_readme_config_maps_as_documented(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, README_CONFIG), environ={})
    s = loaded.settings
    assert loaded.k8stream_compat
    assert s.batch.max_records == 5
    assert s.batch.max_age_s == 5.0
    assert s.sink.stream_uid == "719395d7-4e91-4817-a6ec-9a8ded29bebc"
    assert s.sink.type == "file"
    assert s.sink.file.dir == Path("/tmp/l9k8stream/")
    # k8stream used the prefix only for S3 uploads; files went straight into file_sink_dir.
    assert s.sink.prefix == ""
    assert s.sink.s3.region == "ap-south-1"
    assert s.sink.s3.bucket == "last9-trials"
    assert s.sink.s3.profile == "last9data"
    assert s.sink.s3.access_key_id is not None and s.sink.s3.access_key_id.get_secret_value() == "1"
    assert s.sink.s3.secret_access_key is not None and s.sink.s3.secret_access_key.get_secret_value() == "2"
    assert s.kube.kubeconfig == "./kubeconfig"
    # What k8stream did implicitly: gzip-compressed protobuf, and every retained event first.
    assert (s.encoding.format, s.encoding.protobuf_message, s.encoding.compression) == ("protobuf", "k8stream", "gzip")
    assert s.events.since == "retained"


def test_config_k8stream_s3_sink_keeps_prefix(tmp_path: Path) -> None:
    document = json.loads(README_CONFIG) | {"sink": "s3"}
    s = load_settings(_write(tmp_path, document), environ={})
    assert s.sink.type == "s3"
    assert s.sink.prefix == "local/test-upload"


def test_config_k8stream_go_zero_values_keep_defaults(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, {"uid": "u", "sink": "S3", "aws_bucket": "b", "kubeconfig": "",
                                        "batch_size": 0, "batch_interval": 0, "aws_profile": ""}), environ={})
    assert s.kube.kubeconfig is None  # "" → in-cluster config, else ~/.kube/config
    assert s.batch.max_records == 1000
    assert s.batch.max_age_s == 10.0
    assert s.sink.type == "s3"
    assert s.sink.s3.profile is None


def test_config_k8stream_later_minimal_config(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, {"uid": "abc", "batch_size": 1000, "batch_interval": 10, "sink": "file",
                                        "file_sink_dir": "./logs"}), environ={})
    assert (s.sink.stream_uid, s.batch.max_records, s.batch.max_age_s, s.sink.file.dir) == (
        "abc", 1000, 10.0, Path("logs"))


def test_config_k8stream_errors_name_both_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, {"batch_size": -1, "sink": "file"}), environ={})
    assert str(caught.value) == "batch_size (batch.max_records): Input should be greater than or equal to 1 (got -1)"
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, {"sink": "s3", "uid": "u"}), environ={})
    assert str(caught.value) == 'aws_bucket (sink.s3.bucket): required when sink.type is "s3"'
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, {"sink": "kafka"}), environ={})
    assert str(caught.value) == "sink (sink.type): Input should be 'file', 's3', 'gcs', 'azure', 'otlp' or 'http' (got 'kafka')"


def test_config_k8stream_mixed_with_kubestream_sections_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, {"batch_size": 5, "batch": {"max_records": 5}}), environ={})
    assert str(caught.value) == (
        "mixes k8stream keys (batch_size) with kubestream sections (batch); "
        "use one format (docs/configuration.md has the mapping)")


def test_config_k8stream_interpolation_applies(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, {"sink": "s3", "aws_bucket": "${BUCKET}"}), environ={"BUCKET": "from-env"})
    assert s.sink.s3.bucket == "from-env"


def test_config_k8stream_detection() -> None:
    sections = frozenset({"sink", "batch", "kube"})
    assert looks_like_k8stream({"sink": "file"}, sections)
    assert looks_like_k8stream({"uid": "x", "batch_size": 3}, sections)
    assert looks_like_k8stream({"uid": "x", "heartbeat_hook": "http://x"}, sections)
    assert not looks_like_k8stream({}, sections)  # empty: plain kubestream defaults
    assert not looks_like_k8stream({"sink": {"type": "file"}}, sections)  # kubestream's sink section
    assert not looks_like_k8stream({"sink": "file", "kube": {}}, sections)


def test_config_k8stream_unknown_key_is_named_as_k8stream_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, {"sink": "file", "batch_sise": 5}), environ={})
    assert str(caught.value) == 'batch_sise: unknown k8stream option (did you mean "batch_size"?)'
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, {"sink": "file", "resync_interval": 0}), environ={})
    assert str(caught.value) == (
        "resync_interval: unknown k8stream option (kubestream understands: batch_size, batch_interval, uid, "
        "file_sink_dir, prefix, aws_region, aws_bucket, aws_profile, aws_access_key, aws_secret_access_key, "
        "sink, kubeconfig)")
