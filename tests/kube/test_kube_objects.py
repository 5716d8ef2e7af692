"""Slim decoders: the fields kept, the filters applied at decode time, interning."""

from __future__ import annotations

import sys

from kube_factories import owner, raw_pod

from kubestream.config.settings import EnrichSettings
from kubestream.kube.objects import Decoders, KeyFilter


def test_pod_keeps_enrichment_fields_and_joins_container_status() -> None:
    raw = raw_pod("web-1", "shop", labels={"app": "web"}, containers=("app", "sidecar"), init_containers=("setup",),
                  owners=[owner("ReplicaSet", "web-abc", "rs-uid")], rv=42)
    pod = Decoders().pod(raw)
    assert pod is not None
    assert (pod.name, pod.namespace, pod.node_name, pod.pod_ip, pod.phase, pod.rv) == (
        "web-1", "shop", "node-1", "10.0.0.7", "Running", 42)
    assert pod.labels == {"app": "web"}
    assert [(o.kind, o.name, o.uid, o.controller) for o in pod.owners] == [("ReplicaSet", "web-abc", "rs-uid", True)]
    assert [(c.name, c.kind) for c in pod.containers] == [("app", "regular"), ("sidecar", "regular"), ("setup", "init")]
    side = pod.container("sidecar")
    assert side is not None and side.container_id == "containerd://sidecar-web-1"
    assert side.image == "registry.example/sidecar:1.0" and side.image_id == "registry.example/sidecar@sha256:ab"
    assert pod.container("setup", "regular") is None
    assert pod.container("setup", "init") is not None


def test_last_applied_configuration_is_dropped_by_default_and_globs_apply() -> None:
    annotations = {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "team": "a", "ci/build": "7"}
    labels = {"app": "web", "pod-template-hash": "abc", "internal.example/x": "y"}
    default = Decoders().pod(raw_pod("p", labels=labels, annotations=annotations))
    assert default is not None and set(default.annotations) == {"team", "ci/build"}
    settings = EnrichSettings(labels_exclude=["pod-template-hash", "internal.example/*"],
                              annotations_include=["ci/*"])
    filtered = Decoders(settings).pod(raw_pod("p", labels=labels, annotations=annotations))
    assert filtered is not None
    assert filtered.labels == {"app": "web"} and filtered.annotations == {"ci/build": "7"}


def test_repeated_strings_are_interned() -> None:
    d = Decoders()
    a = d.pod(raw_pod("a", "team-" + "x" * 3, labels={"app": "web" + "z" * 2}))
    b = d.pod(raw_pod("b", "team-" + "x" * 3, labels={"app": "web" + "z" * 2}))
    assert a is not None and b is not None
    assert a.namespace is b.namespace and a.namespace is sys.intern("team-xxx")
    assert a.labels["app"] is b.labels["app"]
    assert a.containers[0].image is b.containers[0].image


def test_objects_without_uid_are_skipped() -> None:
    assert Decoders().pod({"metadata": {"name": "x"}}) is None
    assert Decoders().node({"metadata": {}}) is None


def test_node_service_namespace_workload() -> None:
    d = Decoders()
    node = d.node({"metadata": {"name": "n1", "uid": "u", "labels": {"zone": "a"}},
                   "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.5"},
                                            {"type": "InternalIP", "address": "fd00::5"},
                                            {"type": "Hostname", "address": "n1"}]}})
    assert node is not None and node.addresses == {"InternalIP": "192.168.1.5", "Hostname": "n1"}
    svc = d.service({"metadata": {"name": "web", "namespace": "shop", "uid": "s"}, "spec": {"selector": {"app": "web"}}})
    assert svc is not None and svc.selects({"app": "web", "x": "y"}) and not svc.selects({"app": "db"})
    headless = d.service({"metadata": {"name": "ext", "namespace": "shop", "uid": "s2"}, "spec": {}})
    assert headless is not None and not headless.selects({"app": "web"})
    rs = d.workload("ReplicaSet")({"metadata": {"name": "web-1", "namespace": "shop", "uid": "r",
                                                "ownerReferences": [owner("Deployment", "web", "d")]}})
    assert rs is not None and rs.kind == "ReplicaSet" and rs.owners[0].kind == "Deployment"
    ns = d.namespace({"metadata": {"name": "shop", "uid": "n", "labels": {"team": "a"}}})
    assert ns is not None and ns.labels == {"team": "a"} and ns.namespace == ""


def test_controller_owner_comes_first() -> None:
    pod = Decoders().pod(raw_pod("p", owners=[owner("Thing", "t", "1", controller=False),
                                              owner("Job", "j", "2", controller=True)]))
    assert pod is not None and pod.owners[0].kind == "Job"


def test_key_filter_memo_stays_bounded() -> None:
    f = KeyFilter(exclude=["x*"], max_cached=4)
    kept = [f.keeps(f"k{i}") for i in range(10)] + [f.keeps("xy")]
    assert kept == [True] * 10 + [False]
    assert len(f._verdicts) <= 4
