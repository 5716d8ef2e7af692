"""The Helm chart, rendered and linted by Helm's own engine: helm-python-sdk (a dev dependency)
bundles libhelm_c, a C ABI over Helm's official Go SDK (v4), so this is real Helm templating,
`helm lint` and values.schema.json validation, not an imitation."""

from __future__ import annotations

import importlib.util
import json
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

from kubestream.config.loader import load_config, settings_from_document
from kubestream.config.settings import Settings
from kubestream.errors import ConfigError

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (dev extra) not installed")

NAMESPACE = "observability"
SCHEMA_GENERATOR = CHART.parent / "schema" / "generate.py"
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


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_values_schema", SCHEMA_GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_values_schema_is_generated_from_the_settings_model() -> None:
    committed = (CHART / "values.schema.json").read_text()
    assert committed == _generator().render(), "run: .venv/bin/python deploy/helm/schema/generate.py"
    # Every section of the settings tree is in it, so a new option cannot be missed.
    definitions = json.loads(committed)["definitions"]
    assert set(definitions["kubestreamConfig"]["properties"]) == set(Settings.model_fields)


# (values, the readable line Helm must print). Each is also refused by kubestream itself.
REFUSED = [
    ({"config": {"sink": {"tpye": "s3"}}}, "- at '/config/sink': additional properties 'tpye' not allowed"),
    ({"events": {"config": {"batch": {"max_recrods": 5}}}},
     "- at '/events/config/batch': additional properties 'max_recrods' not allowed"),
    ({"logs": {"config": {"encoding": {"format": "csv"}}}},
     "- at '/logs/config/encoding/format': value must be one of 'ndjson', 'protobuf', 'parquet'"),
    ({"config": {"batch": {"max_records": 0}}}, "- at '/config/batch/max_records': minimum: got 0, want 1"),
    ({"config": {"server": {"port": "http"}}}, "- at '/config/server/port': 'http' does not match pattern"),
    ({"config": {"kube": {"request_timeout_s": -1}}},
     "- at '/config/kube/request_timeout_s': exclusiveMinimum: got -1, want 0"),
]


@pytest.mark.parametrize(("values", "line"), REFUSED, ids=[line.split("'")[1] for _, line in REFUSED])
def test_chart_refuses_what_kubestream_refuses_with_one_readable_line(values: dict[str, Any], line: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        render_chart(values)
    problems = [p for p in str(caught.value).splitlines() if p.startswith("- ")]
    assert len(problems) == 1 and problems[0].startswith(line), str(caught.value)
    config = values.get("config") or next(v["config"] for v in values.values())
    with pytest.raises(ConfigError):
        settings_from_document(config, environ={})


def test_image_tag_latest_is_refused_with_a_message_that_says_what_to_do() -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        render_chart({"image": {"tag": "latest"}})
    message = str(caught.value)
    assert "- at '/image/tag': value must be 'a pinned version such as 0.1.0 (latest is refused;" in message
    assert "'not' failed" not in message
    pinned = render_chart({"image": {"tag": "0.1.0"}})
    assert one(pinned, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0")


def test_chart_accepts_what_kubestream_accepts_in_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment references and the textual forms pydantic accepts are not refused by the chart."""
    values = {"config": {"batch": {"max_records": "${BATCH:-250}", "max_age_s": "2.5"},
                         "encoding": {"format": "${FORMAT:-ndjson}"}, "server": {"enabled": "true"},
                         "kube": {"context": None, "watch_timeout_s": [60, 120]}}}
    monkeypatch.setenv("KUBESTREAM_CLUSTER_NAME", "c")
    monkeypatch.setenv("KUBESTREAM_S3_BUCKET", "b")
    path = tmp_path / "events.yaml"
    path.write_text(one(render_chart(values), "ConfigMap", "ks-kubestream-events")["data"]["kubestream.yaml"])
    settings = load_config(path).settings
    assert (settings.batch.max_records, settings.batch.max_age_s) == (250, 2.5)


def test_chart_binds_the_pod_address_its_probes_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"KUBESTREAM_CLUSTER_NAME": "c", "KUBESTREAM_S3_BUCKET": "b", "NODE_NAME": "n1"}.items():
        monkeypatch.setenv(key, value)
    docs = render_chart(None, namespace=NAMESPACE)
    for workload in (one(docs, "Deployment"), one(docs, "DaemonSet")):
        pod = workload["spec"]["template"]["spec"]
        container = pod["containers"][0]
        config_map = next(v["configMap"]["name"] for v in pod["volumes"] if v["name"] == "config")
        path = tmp_path / f"{config_map}.yaml"
        path.write_text(one(docs, "ConfigMap", config_map)["data"]["kubestream.yaml"])
        server = load_config(path).settings.server
        assert server.host == "0.0.0.0", "kubestream's own default is loopback, unreachable for probes"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[container["readinessProbe"]["httpGet"]["port"]] == server.port
