"""Helpers shared by the deploy tests: loading manifests, rendering the chart, PromQL metric
names and RBAC rule evaluation (the subset of the RBAC authorizer the agent's requests need)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MANIFESTS = DEPLOY / "kubernetes"
COMPAT = MANIFESTS / "k8stream-compat"
CHART = DEPLOY / "helm" / "kubestream"
KUBE_VERSION = "1.32.0"


def load_docs(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifest_files(root: Path = MANIFESTS, recursive: bool = True) -> list[Path]:
    """The manifest files under ``root`` (kubectl's order: sorted by name)."""
    pattern = "**/*.yaml" if recursive else "*.yaml"
    return sorted(root.glob(pattern))


def objects(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Documents of one kind (and name)."""
    return [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single document of a kind (and name)."""
    found = objects(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def render_chart(values: dict[str, Any] | None = None, *, release: str = "ks",
                 namespace: str = "observability") -> list[dict[str, Any]]:
    """The chart rendered by Helm's own engine (helm-python-sdk binds Helm's Go SDK)."""
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


# -- PromQL ----------------------------------------------------------------------------------------

_PROMQL_KEYWORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                              "group_right", "bool", "offset", "inf", "nan"})
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords,
    label names (in matchers or grouping clauses), durations or string contents."""
    text = _STRINGS.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        ident, call = match.group(1), match.group(2)
        if call or ident.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(ident)
    return names


def exported_metric_names() -> set[str]:
    """Every series name kubestream exports, from a live Metrics instance's registry."""
    from kubestream.obs.metrics import Metrics

    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "gauge":
            names.add(family.name)
    return names


# -- RBAC ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Access:
    """One authorization question: may ``verb`` be done on ``group``/``resource`` (named ``name``)
    in ``namespace``?"""

    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.verb, self.group, self.resource)


@dataclass(frozen=True, slots=True)
class Rule:
    """One PolicyRule, bound cluster-wide (ClusterRole) or in one namespace (Role)."""

    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]
    names: frozenset[str]
    namespace: str | None

    def allows(self, access: Access) -> bool:
        """RBAC's ``RuleAllows`` for resource requests (no wildcards are used in our roles)."""
        if self.namespace is not None and access.namespace != self.namespace:
            return False
        if access.verb not in self.verbs or access.group not in self.groups:
            return False
        if access.resource not in self.resources:
            return False
        return not self.names or (access.name is not None and access.name in self.names)

    def grants(self) -> Iterator[tuple[str, str, str]]:
        """Every (verb, group, resource) this rule grants."""
        for verb in self.verbs:
            for group in self.groups:
                for resource in self.resources:
                    yield (verb, group, resource)


def rules_of(role: dict[str, Any]) -> list[Rule]:
    """The rules of a ClusterRole (cluster-wide) or Role (its namespace)."""
    for rule in role.get("rules") or []:
        assert "*" not in rule.get("verbs", []) and "*" not in rule.get("resources", []), "wildcard in a role"
    namespace = role["metadata"].get("namespace") if role["kind"] == "Role" else None
    return [Rule(frozenset(r.get("apiGroups", [])), frozenset(r.get("resources", [])), frozenset(r["verbs"]),
                 frozenset(r.get("resourceNames", [])), namespace) for r in role.get("rules") or []]


def access_of(record: Any) -> Access | None:
    """The RBAC question one simulator request record asked; None for non-resource requests."""
    if not record.resource:
        return None
    resource, _, group = record.resource.partition(".")
    if record.subresource:
        resource = f"{resource}/{record.subresource}"
    name: str | None = None
    if record.verb in ("list", "watch"):
        selector = record.field_selector or ""
        match = re.fullmatch(r"metadata\.name=([^,]+)", selector)
        name = match.group(1) if match else None
    elif record.verb != "create":
        name = record.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    return Access(record.verb, group, resource, record.namespace, name)


MAIN_MANIFEST_DOCS = [d for f in manifest_files(MANIFESTS, recursive=False) for d in load_docs(f)]
"""The documents of deploy/kubernetes/*.yaml (not the k8stream-compat example)."""


def populate_node(server: Any, node: str, namespace: str = "shop") -> None:
    """Pods on ``node`` owned by a Deployment's ReplicaSet and a CronJob's Job, and a Service of
    theirs, in ``namespace``: what makes a node agent use each of its grants (owner and namespace
    GETs, the namespace's service list+watch). ``server`` is a ``SimServer``."""
    from tests.enrich.enrich_support import controller_spec, job_spec, make_pod, owner_ref

    c = server.cluster
    if not any(n["metadata"]["name"] == namespace for n in c.list("namespaces")):
        c.create("namespaces", {"metadata": {"name": namespace, "labels": {"team": "payments"}}})
    deploy = c.create("deployments", {"metadata": {"name": "web", "namespace": namespace},
                                      "spec": controller_spec("web")}, group="apps")
    rs = c.create("replicasets", {"metadata": {"name": "web-7d9f", "namespace": namespace, "labels": {"app": "web"},
                                               "ownerReferences": [owner_ref(deploy, "Deployment")]},
                                  "spec": controller_spec("web")}, group="apps")
    make_pod(server, "web-7d9f-x1", namespace, owner=owner_ref(rs, "ReplicaSet"), node=node, labels={"app": "web"})
    cron = c.create("cronjobs", {"metadata": {"name": "nightly", "namespace": namespace}, "spec": {
        "schedule": "0 2 * * *", "jobTemplate": {"spec": job_spec("nightly")}}}, group="batch")
    job = c.create("jobs", {"metadata": {"name": "nightly-2900", "namespace": namespace,
                                         "ownerReferences": [owner_ref(cron, "CronJob")]},
                            "spec": job_spec("nightly")}, group="batch")
    make_pod(server, "nightly-2900-q", namespace, owner=owner_ref(job, "Job"), node=node)
    c.create("services", {"metadata": {"name": "web", "namespace": namespace}, "spec": {"selector": {"app": "web"}}})
