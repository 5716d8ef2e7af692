"""Compatibility with k8stream's ``config.json``: such a file is accepted unchanged and
translated into the kubestream settings tree so that it means what it meant to k8stream.

Beyond the key renames, "the same thing" covers k8stream's implicit behaviour:

- output: k8stream wrote gzip-compressed protobuf → ``encoding.format=protobuf``,
  ``encoding.protobuf_message=k8stream``, ``encoding.compression=gzip``;
- first start: k8stream's informer exported every event the API still retained →
  ``events.since=retained`` (later starts resume from kubestream's saved state instead of
  exporting everything again, which is the point of switching);
- ``prefix`` was only used by the S3 sink ("Prefix for S3 Upload"); with ``sink: file`` it is
  ignored, so files land directly in ``file_sink_dir`` as before;
- Go zero values mean "unset": ``batch_size``/``batch_interval`` of 0 and empty strings keep
  kubestream's defaults (``kubeconfig: ""`` → in-cluster config, else ~/.kube/config).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from kubestream.config.suggest import closest
from kubestream.errors import ConfigError

# k8stream key → dotted kubestream option (documented in docs/configuration.md).
KEY_MAP: Final[Mapping[str, str]] = {
    "batch_size": "batch.max_records",
    "batch_interval": "batch.max_age_s",
    "uid": "sink.stream_uid",
    "file_sink_dir": "sink.file.dir",
    "prefix": "sink.prefix",
    "aws_region": "sink.s3.region",
    "aws_bucket": "sink.s3.bucket",
    "aws_profile": "sink.s3.profile",
    "aws_access_key": "sink.s3.access_key_id",
    "aws_secret_access_key": "sink.s3.secret_access_key",
    "sink": "sink.type",
    "kubeconfig": "kube.kubeconfig",
}
K8STREAM_KEYS: Final = frozenset(KEY_MAP)

# What k8stream did without being told (see the module docstring).
IMPLIED: Final[Mapping[str, object]] = {
    "encoding.format": "protobuf",
    "encoding.protobuf_message": "k8stream",
    "encoding.compression": "gzip",
    "events.since": "retained",
}


def looks_like_k8stream(document: Mapping[str, object], sections: frozenset[str]) -> bool:
    """True for a k8stream config: some k8stream key and none of kubestream's ``sections``.

    ``sink`` is both a k8stream key (a string) and a kubestream section (a mapping), so it
    decides by its type. Keys outside both sets do not prevent detection: ``translate`` then
    reports them as unknown k8stream options, which is the message such a user needs.
    """
    if isinstance(document.get("sink"), Mapping):
        return False
    keys = set(document)
    return bool(keys & K8STREAM_KEYS) and not keys & (sections - {"sink"})


def mixed_format_error(document: Mapping[str, object], sections: frozenset[str]) -> ConfigError | None:
    """An error if ``document`` mixes k8stream keys with kubestream sections, else None."""
    theirs = sorted(set(document) & (K8STREAM_KEYS - {"sink"}))
    ours = sorted(key for key in set(document) & sections
                  if key != "sink" or isinstance(document["sink"], Mapping))
    if not theirs or not ours:
        return None
    return ConfigError(
        f"mixes k8stream keys ({', '.join(theirs)}) with kubestream sections ({', '.join(ours)}); "
        "use one format (docs/configuration.md has the mapping)"
    )


def translate(document: Mapping[str, object]) -> dict[str, object]:
    """The kubestream settings document (nested, unvalidated) a k8stream config stands for."""
    tree: dict[str, object] = {}
    for dotted, value in IMPLIED.items():
        _put(tree, dotted, value)
    sink = document.get("sink")
    sink_type = sink.strip().lower() if isinstance(sink, str) else sink
    for key, value in document.items():
        if key not in KEY_MAP:
            raise ConfigError(_unknown_key_message(key), key=key)
        if _is_go_zero(value) or (key == "prefix" and sink_type == "file"):
            continue
        _put(tree, KEY_MAP[key], sink_type if key == "sink" else value)
    return tree


def original_key(dotted: str) -> str | None:
    """The k8stream key that maps to a kubestream option, for error messages."""
    return next((key for key, target in KEY_MAP.items() if target == dotted), None)


def _unknown_key_message(key: str) -> str:
    guess = closest(key, KEY_MAP)
    if guess is not None:
        return f'unknown k8stream option (did you mean "{guess}"?)'
    return f"unknown k8stream option (kubestream understands: {', '.join(KEY_MAP)})"


def _is_go_zero(value: object) -> bool:
    # bool is an int subclass; False is not a Go zero for these (numeric or string) keys.
    return value is None or value == "" or (type(value) in (int, float) and value == 0)


def _put(tree: dict[str, object], dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        assert isinstance(child, dict)
        node = child
    node[leaf] = value
