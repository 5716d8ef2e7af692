"""``--kube-version``: the version-specific shapes, each held against that version's recorded
replay (tests/fixtures/recorded/k8s-openapi-replays/v1-32, v1-34, v1-35)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubestream.sim import cli
from kubestream.sim.config import SimConfig
from kubestream.sim.testing import WatchReader, http, running_sim
from kubestream.sim.versions import DEFAULT_KUBE_VERSION, VERSIONS

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "k8s-openapi-replays"
STREAMING = "watch_event-watch_pods_without_initial_events.json"


def _recorded_exchange(version: str, name: str) -> dict[str, Any]:
    exchange: dict[str, Any] = json.loads((RECORDED / f"v{version.replace('.', '-')}" / name).read_text())[0]
    return exchange


def _recorded_lines(version: str, name: str) -> list[dict[str, Any]]:
    body = _recorded_exchange(version, name)["response_body"]
    return [json.loads(line) for line in body.split("\n") if line]


def _without_rv(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


def test_every_offered_version_has_a_recording_and_the_newest_is_the_default() -> None:
    assert {p.name for p in RECORDED.iterdir()} == {f"v{v.replace('.', '-')}" for v in VERSIONS}
    assert DEFAULT_KUBE_VERSION == max(VERSIONS, key=lambda v: int(v.split(".")[1])) == SimConfig().kube_version
    with pytest.raises(ValueError, match="unsupported kube version"):
        SimConfig(kube_version="1.33")
    assert cli.build_parser().parse_args([]).kube_version == DEFAULT_KUBE_VERSION
    assert cli.build_parser().parse_args(["--kube-version", "1.32"]).kube_version == "1.32"


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_initial_events_end_bookmark_is_the_recorded_one(version: str) -> None:
    recorded = _recorded_lines(version, STREAMING)[-1]
    with running_sim(kube_version=version) as server:
        reader = WatchReader(server, "/api/v1/namespaces/kube-system/pods?" + _recorded_exchange(
            version, STREAMING)["request_url"].split("?", 1)[1])
        end = reader.next_event()
        reader.close()
    assert end is not None and end["type"] == "BOOKMARK"
    # Everything but the RV number is the same, down to the blueprint's bytes (1.32 only).
    assert _without_rv(end["object"]) == _without_rv(recorded["object"])


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_periodic_bookmark_has_the_version_shape(version: str) -> None:
    recorded = _without_rv(_recorded_lines(version, STREAMING)[-1]["object"])
    expected = {**recorded, "metadata": {k: v for k, v in recorded["metadata"].items() if k != "annotations"}}
    with running_sim(kube_version=version, bookmark_interval_s=0.2) as server:
        rv = server.cluster.resource_version
        reader = WatchReader(server, f"/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion={rv}"
                                     "&timeoutSeconds=5")
        bookmark = reader.next_event()
        reader.close()
    assert bookmark is not None and bookmark["type"] == "BOOKMARK"
    assert _without_rv(bookmark["object"]) == expected


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_pod_generation_and_version_document_follow_the_version(version: str) -> None:
    recorded_pod = json.loads(_recorded_exchange(version, "pod-list.json")["response_body"])["items"][0]
    with running_sim(kube_version=version) as server:
        created = server.cluster.create("pods", {"metadata": {"name": "p", "namespace": "default"},
                                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        info = http(server, "GET", "/version").json
    assert ("generation" in created["metadata"]) == ("generation" in recorded_pod["metadata"])
    assert info["minor"] == version.split(".")[1]
