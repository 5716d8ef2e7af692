"""``sinks:``: every mistake is one line from ``kubestream validate`` naming the option; a valid
list of destinations loads, and the single ``sink:`` means one destination named ``archive``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubestream.config.loader import settings_from_document

KUBECONFIG = ("clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
              "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
              "current-context: c\n")


def _file(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "file", "file": {"dir": f"./{name}"}, **extra}


def _validate(tmp_path: Path, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    config = tmp_path / "kubestream.yaml"
    config.write_text(yaml.safe_dump({"state": {"dir": "./state"}, **document}))
    return subprocess.run([sys.executable, "-m", "kubestream.cli.main", "validate", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "kubeconfig"),
                               "NODE_NAME": "n1"})


@pytest.mark.parametrize(("sinks", "extra", "line"), [
    ([_file("a"), _file("a")], {}, "sinks[1].name: duplicate destination name 'a'"),
    ([_file("a", streams=["metrics"])], {},
     "sinks[0].streams[0]: Input should be 'events' or 'logs' (got 'metrics')"),
    ([_file("a", filter={"pod_selector": "app in (a"})], {},
     "sinks[0].filter.pod_selector: cannot parse the label selector near 'app in (a'"),
    ([_file("a", filter={"types": ["Warning"]})], {},
     "sinks[0].filter.types: applies to event records only, and this destination takes logs "
     "(set streams: [events])"),
    ([_file("a", streams=[])], {}, "sinks[0].streams: the destination takes no stream: list events, logs or both"),
    ([_file("a", streams=["logs"])], {},
     "sinks: events are enabled but no destination takes them (add events to a destination's streams)"),
    ([_file("Bad_Name")], {}, "sinks[0].name: String should match pattern '^[a-z0-9-]+$' (got 'Bad_Name')"),
    ([_file("a")], {"sink": {"type": "file"}}, "sinks: set sink (one destination) or sinks (several), not both"),
    ([{"name": "b", "type": "s3"}], {}, 'sinks[0].s3.bucket: required when sinks[0].type is "s3"'),
])
def test_config_destination_mistakes_are_one_line_from_validate(tmp_path: Path, sinks: list[dict[str, Any]],
                                                               extra: dict[str, Any], line: str) -> None:
    result = _validate(tmp_path, {"sinks": sinks, **extra})
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [text for text in result.stderr.splitlines() if text.strip()]
    assert len(lines) == 1, result.stderr
    assert line in lines[0], lines[0]


def test_config_destinations_valid_list_passes_validate(tmp_path: Path) -> None:
    sinks = [_file("archive"), _file("warnings", streams=["events"],
                                     filter={"namespaces_include": ["pay*"], "types": ["Warning"],
                                             "pod_selector": "app=web,tier!=db"},
                                     max_records=100, on_full="drop", max_pending_bytes=1 << 20)]
    result = _validate(tmp_path, {"sinks": sinks})
    assert result.returncode == 0, result.stderr


def test_config_single_sink_is_one_destination_named_archive() -> None:
    settings = settings_from_document({"sink": {"type": "file", "prefix": "p"}}).settings
    [destination] = settings.destinations()
    assert (destination.name, destination.prefix, destination.streams) == ("archive", "p", ["events", "logs"])
    assert settings.archive_destination() == destination


def test_config_the_archive_is_the_first_file_or_object_store_destination() -> None:
    document = {"sinks": [{"name": "live", "type": "http", "http": {"url": "http://127.0.0.1:9/x"}},
                          _file("files"), _file("more")]}
    settings = settings_from_document(document).settings
    archive = settings.archive_destination()
    assert archive is not None and archive.name == "files"
