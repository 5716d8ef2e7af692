"""The pod annotation ``kubestream.io/multiline-start``: one start pattern for every container of
the pod, or ``<container>=<pattern>;...`` per container."""

from __future__ import annotations

import pytest

from kubestream.sources.logs.container_rules import annotation_pattern as _annotation_pattern


@pytest.mark.parametrize(("value", "container", "expected"), [
    (r"^\d{4}-\d\d-\d\d", "app", r"^\d{4}-\d\d-\d\d"),          # one pattern for all containers
    (r"^\d{4}-\d\d-\d\d", "sidecar", r"^\d{4}-\d\d-\d\d"),
    (r"app=^\[;sidecar=^ERROR", "app", r"^\["),                 # per container
    (r"app=^\[;sidecar=^ERROR", "sidecar", r"^ERROR"),
    (r"app=^\[;sidecar=^ERROR", "other", None),                  # containers not listed: no joining
    (r"^key=value", "app", r"^key=value"),                       # '=' inside a pattern is not a list
    (r"^(INFO|WARN);", "app", r"^(INFO|WARN);"),                 # nor is ';'
    ("", "app", None),
    (None, "app", None),
])
def test_annotation_pattern(value: str | None, container: str, expected: str | None) -> None:
    assert _annotation_pattern(value, container) == expected
