"""The Helm chart, rendered and linted by Helm's own engine: helm-python-sdk (a dev dependency)
bundles libhelm_c, a C ABI over Helm's official Go SDK (v4), so this is real Helm templating,
`helm lint` and values.schema.json validation, not an imitation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.deploy.deploy_support import (
    CHART,
    KUBE_VERSION,
    MAIN_MANIFEST_DOCS,
    objects,
    one,
    render_chart,
    rules_of,
)

from kubestream.config.loader import load_config

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (dev extra) not installed")

NAMESPACE = "observability"
SWITCHES = {
    "default": None,
    "events-only": {"logs": {"enabled": False}},
    "logs-only": {"events": {"enabled": False}},
    "nothing": {"events": {"enabled": False}, "logs": {"enabled": False}},
}


def _kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)


def test_helm_lint_strict_passes() -> None:
    report = helm.lint(CHART, strict=True, kube_version=f"v{KUBE_VERSION}", namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("case", SWITCHES)
def test_rendered_chart_validates_against_kubernetes_schema(case: str) -> None:
    docs = render_chart(SWITCHES[case], namespace=NAMESPACE)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        labels = doc["metadata"]["labels"]
        for key in ("name", "instance", "component", "version", "managed-by", "part-of"):
            assert f"app.kubernetes.io/{key}" in labels, (doc["kind"], key)
        # No hard-coded namespace: every namespaced object lands in the release's.
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == NAMESPACE
        for subject in doc.get("subjects", []):
            assert subject["namespace"] == NAMESPACE


def test_component_switches_remove_exactly_their_component() -> None:
    components = {case: {d["metadata"]["labels"]["app.kubernetes.io/component"]
                         for d in render_chart(values, namespace=NAMESPACE)} for case, values in SWITCHES.items()}
    assert components == {"default": {"events-collector", "logs-agent"}, "events-only": {"events-collector"},
                          "logs-only": {"logs-agent"}, "nothing": set()}
    default = render_chart(None, namespace=NAMESPACE)
    assert one(default, "Deployment")["spec"]["replicas"] == 2
    assert {"operator": "Exists"} in one(default, "DaemonSet")["spec"]["template"]["spec"]["tolerations"]


def _normalized(roles: list[dict[str, Any]]) -> set[tuple[str, str, str, frozenset[str]]]:
    return {(verb, group, resource, rule.names) for role in roles for rule in rules_of(role)
            for verb, group, resource in rule.grants()}


def test_chart_rbac_equals_the_plain_manifests_rbac() -> None:
    """The manifests' roles are checked against the live agent (test_deploy_rbac.py); the chart
    must grant exactly the same, modulo names."""
    docs = render_chart(None, namespace=NAMESPACE)
    for component in ("events-collector", "logs-agent"):
        def of(source: list[dict[str, Any]], kind: str, component: str = component) -> list[dict[str, Any]]:
            return [d for d in objects(source, kind)
                    if d["metadata"]["labels"]["app.kubernetes.io/component"] == component]
        assert _normalized(of(docs, "ClusterRole")) == _normalized(of(MAIN_MANIFEST_DOCS, "ClusterRole"))
        chart_lease = {(v, g, r) for v, g, r, _ in _normalized(of(docs, "Role"))}
        manifest_lease = {(v, g, r) for v, g, r, _ in _normalized(of(MAIN_MANIFEST_DOCS, "Role"))}
        assert chart_lease == manifest_lease


def test_lease_role_names_the_lease_of_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render_chart(None, release="prod", namespace=NAMESPACE)
    config = one(docs, "ConfigMap", "prod-kubestream-events")["data"]["kubestream.yaml"]
    monkeypatch.setenv("KUBESTREAM_CLUSTER_NAME", "c")
    monkeypatch.setenv("KUBESTREAM_S3_BUCKET", "b")
    path = tmp_path / "events.yaml"
    path.write_text(config)
    settings = load_config(path).settings
    role = one(docs, "Role")
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named[0]["resourceNames"] == [settings.leader_election.lease_name] == ["prod-kubestream-events"]


def test_rendered_configs_are_accepted_by_kubestream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"KUBESTREAM_CLUSTER_NAME": "c", "KUBESTREAM_S3_BUCKET": "b", "NODE_NAME": "n1"}.items():
        monkeypatch.setenv(key, value)
    values = {"config": {"batch": {"max_records": 250}}, "logs": {"config": {"logs": {"exclude_own_pod": False}}}}
    for doc in objects(render_chart(values, namespace=NAMESPACE), "ConfigMap"):
        path = tmp_path / f"{doc['metadata']['name']}.yaml"
        path.write_text(doc["data"]["kubestream.yaml"])
        settings = load_config(path).settings
        assert settings.batch.max_records == 250
        assert settings.server.port == 9102 and str(settings.state.dir) == "/var/lib/kubestream"
        assert settings.logs.enabled != settings.events.enabled


def test_rbac_follows_the_configuration() -> None:
    docs = render_chart({"config": {"events": {"api": "events.k8s.io/v1"}, "enrich": {"owners": False}},
                         "logs": {"config": {"enrich": {"enabled": False}}}}, namespace=NAMESPACE)
    events_role, logs_role = (d for d in sorted(objects(docs, "ClusterRole"), key=lambda d: d["metadata"]["name"]))
    grants = {(g, r) for rule in rules_of(events_role) for _, g, r in rule.grants()}
    assert ("events.k8s.io", "events") in grants and ("", "events") not in grants
    assert ("apps", "replicasets") not in grants and ("", "pods") in grants
    assert rules_of(logs_role) == []


def test_values_schema_rejects_mistakes() -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(None)
        for bad in ({"image": {"tag": "latest"}}, {"events": {"enabled": "yes"}}, {"logs": {"enabeld": True}},
                    {"events": {"replicas": -1}}):
            with pytest.raises(helm.HelmValuesError):
                chart.validate_schema(bad)


def test_several_replicas_without_leader_election_is_refused() -> None:
    with pytest.raises(helm.HelmError, match="leaderElection"):
        render_chart({"events": {"leaderElection": {"enabled": False}}})
    single = render_chart({"events": {"replicas": 1, "leaderElection": {"enabled": False}}})
    assert not objects(single, "Role") and not objects(single, "PodDisruptionBudget")
    assert yaml.safe_load(one(single, "ConfigMap", "ks-kubestream-events")["data"]["kubestream.yaml"])[
        "leader_election"]["enabled"] is False
