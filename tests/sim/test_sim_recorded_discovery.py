"""Hold the simulator's /apis (and /api) against real recorded discovery responses.

The replays (tests/fixtures/recorded/k8s-openapi-replays/*/api_versions-list.json) were
recorded against real kube-apiservers 1.32 and 1.34; they contain the /apis APIGroupList.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubestream.sim.apiserver import discovery_docs as discovery

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "k8s-openapi-replays"
REPLAYS = sorted(RECORDED.glob("*/api_versions-list.json"))


def _recorded(path: Path, url: str) -> dict[str, Any]:
    for exchange in json.loads(path.read_text()):
        if exchange["request_url"] == url:
            body: dict[str, Any] = json.loads(exchange["response_body"])
            return body
    pytest.skip(f"{path} has no {url} exchange")


def _key_tree(value: Any) -> Any:
    """The structure of a JSON value: keys of objects, recursively; lists by their first item."""
    if isinstance(value, dict):
        return {k: _key_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_key_tree(value[0])] if value else []
    return type(value).__name__


def _all_groups_key_tree(groups: list[dict[str, Any]]) -> set[str]:
    return {json.dumps(_key_tree(g), sort_keys=True) for g in groups}


pytestmark = pytest.mark.skipif(not REPLAYS, reason=f"no recorded replays under {RECORDED}")


@pytest.mark.parametrize("replay", REPLAYS, ids=lambda p: p.parent.name)
def test_apis_has_the_recorded_structure_and_keys(replay: Path) -> None:
    real = _recorded(replay, "/apis")
    ours = discovery.group_list()
    assert set(ours) == set(real)
    assert (ours["kind"], ours["apiVersion"]) == (real["kind"], real["apiVersion"])
    # Every group entry has exactly the key structure of real ones (single-version groups).
    real_single = [g for g in real["groups"] if len(g["versions"]) == 1]
    assert _all_groups_key_tree(ours["groups"]) == _all_groups_key_tree(real_single)


@pytest.mark.parametrize("replay", REPLAYS, ids=lambda p: p.parent.name)
def test_apis_groups_match_the_recorded_entries_and_order(replay: Path) -> None:
    real = _recorded(replay, "/apis")
    real_by_name = {g["name"]: g for g in real["groups"]}
    ours = discovery.group_list()["groups"]
    for group in ours:
        assert group == real_by_name[group["name"]], group["name"]
    real_order = [g["name"] for g in real["groups"]]
    ours_order = [g["name"] for g in ours]
    assert ours_order == sorted(ours_order, key=real_order.index)


def test_api_matches_the_apimachinery_api_versions_shape() -> None:
    # No /api exchange was recorded; APIVersions keys per apimachinery meta/v1 types.go.
    doc = discovery.core_versions("10.0.0.1:443")
    assert set(doc) == {"kind", "versions", "serverAddressByClientCIDRs"}
    assert set(doc["serverAddressByClientCIDRs"][0]) == {"clientCIDR", "serverAddress"}
