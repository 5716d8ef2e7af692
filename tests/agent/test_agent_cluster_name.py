"""``cluster.name`` as the shared preflight (``run`` and ``validate``) settles it: the kubeconfig
context's cluster by default, required in a pod, never a name that cannot be a key folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestream.agent.preflight import preflight
from kubestream.config.settings import Settings
from kubestream.errors import ConfigError

KUBECONFIG = """\
clusters:
- {name: kind-dev, cluster: {server: "https://127.0.0.1:1"}}
- {name: "arn:aws:eks:eu-west-1:123456789012:cluster/prod", cluster: {server: "https://127.0.0.1:2"}}
users: [{name: u, user: {token: t}}]
contexts:
- {name: dev, context: {cluster: kind-dev, user: u}}
- {name: eks, context: {cluster: "arn:aws:eks:eu-west-1:123456789012:cluster/prod", user: u}}
current-context: dev
"""


def _settings(tmp_path: Path, **sections: object) -> Settings:
    return Settings.model_validate({"state": {"dir": str(tmp_path / "state")},
                                    "sink": {"file": {"dir": str(tmp_path / "archive")}}, **sections})


def _kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return str(path)


async def test_the_default_is_the_cluster_of_the_context_in_use(tmp_path: Path) -> None:
    settings = _settings(tmp_path, kube={"kubeconfig": _kubeconfig(tmp_path)})
    assert settings.cluster.name is None
    await preflight(settings, environ={})
    assert settings.cluster.name == "kind-dev"


async def test_a_configured_name_wins_over_the_context(tmp_path: Path) -> None:
    settings = _settings(tmp_path, kube={"kubeconfig": _kubeconfig(tmp_path)}, cluster={"name": "prod-eu-1"})
    await preflight(settings, environ={})
    assert settings.cluster.name == "prod-eu-1"


async def test_in_a_pod_the_name_is_required(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    in_pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    with pytest.raises(ConfigError) as refused:
        await preflight(_settings(tmp_path), environ=in_pod, token_path=str(token))
    assert refused.value.key == "cluster.name"
    assert str(refused.value).startswith("cluster.name: required when running in a pod (in-cluster)")
    assert "\n" not in str(refused.value)

    named = _settings(tmp_path, cluster={"name": "prod-eu-1"})
    assert await preflight(named, environ=in_pod, token_path=str(token)) == []
    assert named.cluster.name == "prod-eu-1"


async def test_a_context_cluster_that_cannot_be_a_folder_asks_for_a_name(tmp_path: Path) -> None:
    settings = _settings(tmp_path, kube={"kubeconfig": _kubeconfig(tmp_path), "context": "eks"})
    with pytest.raises(ConfigError) as refused:
        await preflight(settings, environ={})
    assert refused.value.key == "cluster.name"
    assert "set cluster.name" in str(refused.value) and "'/'" in str(refused.value)


@pytest.mark.parametrize("name", ["", "a/b", "..", "with space", "tab\there", "x" * 254])
def test_a_configured_name_must_be_one_key_folder(name: str) -> None:
    with pytest.raises(ValueError, match=r"cluster\.name"):
        Settings.model_validate({"cluster": {"name": name}})
