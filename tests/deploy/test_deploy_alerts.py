"""Alert rules and dashboard: valid structure, and every PromQL expression selects only metrics
kubestream exports (names taken from a live kubestream.obs.metrics.Metrics registry). When
promtool is installed (Debian's `prometheus` package has it), the rules are also checked and
unit-tested by Prometheus itself (deploy/prometheus/alerts_test.yaml)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from tests.deploy.deploy_support import DEPLOY, exported_metric_names, promql_metric_names

ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DASHBOARD = DEPLOY / "grafana" / "kubestream-dashboard.json"
PROMTOOL = shutil.which("promtool")
EXPORTED = exported_metric_names()


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    assert set(doc) == {"groups"}
    rules: list[dict[str, Any]] = []
    for group in doc["groups"]:
        assert set(group) <= {"name", "rules", "interval"} and group["rules"]
        rules.extend(group["rules"])
    return rules


def test_promql_metric_name_extraction() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, pod) (rate(a_bucket{job=~"x|y", le!="1"}[5m]))) > on(pod) b offset 5m'
    assert promql_metric_names(expr) == {"a_bucket", "b"}


def test_alert_rules_structure() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    covered = " ".join(r["expr"] for r in rules)
    for metric in ("kubestream_sink_errors_total", "kubestream_sink_retries_total", "kubestream_spool_bytes",
                   "kubestream_backpressure_seconds_total", "kubestream_watch_restarts_total",
                   "kubestream_relists_total", "kubestream_leader", "kubestream_end_to_end_lag_seconds_bucket",
                   "kubestream_records_dropped_total"):
        assert metric in covered, f"no alert on {metric}"


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_alert_uses_only_exported_metrics(rule: dict[str, Any]) -> None:
    used = promql_metric_names(rule["expr"])
    assert used and used <= EXPORTED, used - EXPORTED


def test_dashboard_uses_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    for expr in exprs:
        used = promql_metric_names(expr)
        assert used and used <= EXPORTED, (expr, used - EXPORTED)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "job"}


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    assert PROMTOOL is not None
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts_test.yaml"]):
        done = subprocess.run([PROMTOOL, *args], cwd=ALERTS.parent, capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
