"""The plain manifests (deploy/kubernetes/, k8stream-compat/ included): valid against the
Kubernetes 1.32 schemas, and saying what the deployment needs (replicas, tolerations, probes,
read-only root filesystem, configs kubestream accepts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.deploy.deploy_support import COMPAT, KUBE_VERSION, MANIFESTS, load_docs, manifest_files, one

from kubestream.cli.main import build_parser
from kubestream.config import Settings
from kubestream.config.loader import load_config

ALL_FILES = manifest_files()
MAIN_DOCS = [d for f in manifest_files(MANIFESTS, recursive=False) for d in load_docs(f)]
COMPAT_DOCS = [d for f in manifest_files(COMPAT) for d in load_docs(f)]
ENV = {"KUBESTREAM_CLUSTER_NAME": "prod-eu", "KUBESTREAM_S3_BUCKET": "archive", "NODE_NAME": "node-1",
       "POD_NAME": "kubestream-events-abc", "POD_NAMESPACE": "kubestream"}


def test_manifest_files_are_found() -> None:
    assert len(ALL_FILES) >= 8
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
            "ConfigMap", "Deployment", "DaemonSet", "Service", "PodDisruptionBudget"} <= {d["kind"] for d in MAIN_DOCS}


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_manifest_validates_against_kubernetes_schema(path: Path) -> None:
    for doc in load_docs(path):
        # strict: unknown fields are errors too (a typo'd field would be silently dropped).
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_a_broken_manifest_is_rejected() -> None:
    deployment = yaml.safe_load(yaml.safe_dump(one(MAIN_DOCS, "Deployment")))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_every_object_carries_the_recommended_labels() -> None:
    for doc in MAIN_DOCS:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "kubestream", doc["metadata"]["name"]
        assert labels.get("app.kubernetes.io/part-of") == "kubestream"


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _check_workload_hardening(workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    container = _container(workload)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    # The only writable places: the state dir and /tmp (both volumes).
    assert {"/tmp", "/var/lib/kubestream", "/etc/kubestream"} <= mounts
    assert ":latest" not in container["image"] and ":" in container["image"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 9102


def test_events_collector_is_two_non_root_replicas() -> None:
    deployment = one(MAIN_DOCS, "Deployment", "kubestream-events")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    env = {e["name"]: e for e in _container(deployment)["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    _check_workload_hardening(deployment)
    pdb = one(MAIN_DOCS, "PodDisruptionBudget")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_logs_agent_reads_node_logs_read_only_and_tolerates_every_taint() -> None:
    daemonset = one(MAIN_DOCS, "DaemonSet", "kubestream-logs")
    pod = daemonset["spec"]["template"]["spec"]
    assert {"operator": "Exists"} in pod["tolerations"]
    container = _container(daemonset)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/log/pods"]["readOnly"] is True
    assert mounts["/var/log/containers"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/var/lib/kubestream"]["name"]]["hostPath"]["path"] == "/var/lib/kubestream"
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    _check_workload_hardening(daemonset)


def _config(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / f"{name}.yaml"
    path.write_text(one(MAIN_DOCS, "ConfigMap", name)["data"]["kubestream.yaml"])
    return load_config(path)


def test_events_config_is_accepted_and_matches_the_lease_role(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _config("kubestream-events", tmp_path, monkeypatch).settings
    assert settings.events.enabled and not settings.logs.enabled
    assert settings.leader_election.enabled
    assert str(settings.state.dir) == "/var/lib/kubestream"
    assert settings.sink.type == "s3" and settings.sink.s3.bucket == "archive"
    assert settings.shutdown.timeout_s < one(MAIN_DOCS, "Deployment")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]
    lease_role = one(MAIN_DOCS, "Role", "kubestream-events-lease")
    named = [r for r in lease_role["rules"] if r.get("resourceNames")]
    assert named and all(r["resourceNames"] == [settings.leader_election.lease_name] for r in named)
    assert lease_role["metadata"]["namespace"] == ENV["POD_NAMESPACE"]


def test_logs_config_is_accepted_with_one_stream_per_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _config("kubestream-logs", tmp_path, monkeypatch).settings
    assert settings.logs.enabled and not settings.events.enabled
    assert settings.sink.stream_uid == "prod-eu-node-1"


def test_k8stream_compat_config_json_is_accepted_unchanged(tmp_path: Path) -> None:
    config_map = one(COMPAT_DOCS, "ConfigMap", "k8stream-config")
    path = tmp_path / "config.json"
    path.write_text(config_map["data"]["config.json"])
    loaded = load_config(path)
    settings = loaded.settings
    assert settings.sink.type == "file" and str(settings.sink.file.dir) == "/tmp/l9k8stream"
    assert settings.encoding.format == "protobuf" and settings.encoding.protobuf_message == "k8stream"
    assert settings.batch.max_records == 5
    deployment = one(COMPAT_DOCS, "Deployment", "k8stream")
    container = _container(deployment)
    assert container["command"] == ["kubestream"] and container["args"][:3] == ["run", "--config", "/data/config.json"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    # file_sink_dir is under /tmp; the relative state dir under the image's WORKDIR.
    assert {"/data", "/tmp", "/var/lib/kubestream"} <= mounts
    assert all(d["metadata"].get("namespace", "last9") == "last9" for d in COMPAT_DOCS)


def _listen_address(container: dict[str, Any], config_text: str, tmp_path: Path) -> tuple[str, int]:
    """Where the agent in ``container`` listens: its config's server section, overridden by the
    command line exactly as ``kubestream run`` parses it."""
    path = tmp_path / ("config.json" if config_text.lstrip().startswith("{") else "kubestream.yaml")
    path.write_text(config_text)
    server = load_config(path).settings.server
    args = build_parser().parse_args(container["args"])
    return (args.server_host or server.host), server.port


def _probed_port(container: dict[str, Any]) -> int:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probe_ports = {container[probe]["httpGet"]["port"] for probe in ("livenessProbe", "readinessProbe")}
    assert len(probe_ports) == 1
    (port,) = probe_ports
    return int(ports[port]) if isinstance(port, str) else int(port)


@pytest.mark.parametrize(("docs", "workload", "config_map", "key"), [
    (MAIN_DOCS, "kubestream-events", "kubestream-events", "kubestream.yaml"),
    (MAIN_DOCS, "kubestream-logs", "kubestream-logs", "kubestream.yaml"),
    (COMPAT_DOCS, "k8stream", "k8stream-config", "config.json"),
])
def test_every_workload_binds_the_pod_address_its_probes_use(
        docs: list[dict[str, Any]], workload: str, config_map: str, key: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """kubestream listens on loopback by default (a laptop run exposes nothing); the kubelet's
    probes and Prometheus reach the pod IP, so every manifest must bind the pod's address."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert Settings().server.host == "127.0.0.1"
    container = _container(next(d for d in docs if d["kind"] in ("Deployment", "DaemonSet")
                                and d["metadata"]["name"] == workload))
    host, port = _listen_address(container, one(docs, "ConfigMap", config_map)["data"][key], tmp_path)
    assert host == "0.0.0.0"
    assert port == _probed_port(container) == 9102
